//! The shared (PostgreSQL) matcher: sockets of users who never queued neither lock
//! nor rewrite its state.

use std::sync::Arc;
use std::time::Duration;

use quicktalk::cluster::SharedMatchEngine;
use quicktalk::domain::matching::{MatchEngine, MatcherConfig, Prefs, State};
use quicktalk::model::UserRef;
use quicktalk::store::postgres::PostgresStore;

/// The state row's version: `xmin` moves with every write, `xmax` with every lock.
async fn version(pg: &PostgresStore) -> String {
    sqlx::query_scalar("SELECT xmin::text || '/' || xmax::text FROM match_state WHERE id = 1")
        .fetch_one(pg.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn sockets_of_users_who_never_queued_leave_the_matcher_alone() {
    let Some((_store, guard)) = super::postgres().await else {
        return;
    };
    let super::Guard::Schema { url, schema } = &guard else {
        unreachable!()
    };
    let pg = Arc::new(PostgresStore::open_in_schema(url, schema).await.unwrap());
    let engine = SharedMatchEngine::new(MatcherConfig::default(), pg.clone())
        .await
        .unwrap();
    let v0 = version(&pg).await;
    for user in 1000..1020 {
        engine.online(user).await;
        engine.offline(user).await;
    }
    assert_eq!(version(&pg).await, v0, "state neither locked nor written");
    // Even while another node holds the matcher's lock, such a socket goes through.
    let mut holder = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM match_state WHERE id = 1 FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), async {
        engine.online(1000).await;
        engine.offline(1000).await;
    })
    .await
    .expect("a socket of a user who never queued waited for the matcher's lock");
    holder.rollback().await.unwrap();
    // A queued user is in the matcher: their socket closing takes them out.
    let u = UserRef {
        id: 7,
        name: "g".into(),
        guest: true,
    };
    engine.connect(&u, Prefs::default()).await.unwrap();
    assert_eq!(engine.state(7).await, State::Waiting);
    engine.offline(7).await;
    assert_eq!(engine.state(7).await, State::Idle);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM match_users")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}
