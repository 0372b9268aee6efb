//! PostgreSQL only: the multi-node pipeline's log application
//! (`PostgresStore::append_logged`): lease fencing and log incarnations.

use std::collections::HashMap;
use std::sync::Arc;

use quicktalk::model::{Appended, MessageKind, NewMessage, RoomKind, UserRef, Visibility};
use quicktalk::store::postgres::{Lease, LogRecord, Logged, PostgresStore};
use quicktalk::store::{NewRoom, NewUser, Store};

const TOPIC: &str = "t.messages";

async fn setup() -> Option<(Arc<PostgresStore>, super::Guard, UserRef, i64)> {
    let (_, guard) = super::postgres().await?;
    let super::Guard::Schema { url, schema } = &guard else {
        unreachable!()
    };
    let store = Arc::new(PostgresStore::open_in_schema(url, schema).await.unwrap());
    let u = store
        .create_user(NewUser {
            username: Some("logger".into()),
            password_hash: Some("hash".into()),
            display_name: "logger".into(),
            guest: false,
        })
        .await
        .unwrap();
    let who = u.as_ref();
    let room = store
        .create_room(NewRoom {
            name: "room".into(),
            visibility: Visibility::Public,
            kind: RoomKind::Group,
            created_by: who.id,
            moderation: quicktalk::model::RoomPolicy::Standard,
        })
        .await
        .unwrap()
        .id;
    store
        .append(vec![msg(room, &who, MessageKind::Join, "")])
        .await
        .unwrap();
    Some((store, guard, who, room))
}

fn msg(room: i64, who: &UserRef, kind: MessageKind, t: &str) -> NewMessage {
    NewMessage {
        room_id: room,
        kind,
        sender: who.clone(),
        text: t.into(),
        client_id: None,
        sent_at: 1_700_000_000_000,
        moderation: Default::default(),
        attachments: vec![],
    }
}

fn record(offset: i64, room: i64, who: &UserRef, t: &str) -> LogRecord {
    LogRecord {
        partition: 0,
        offset,
        message: Some(msg(room, who, MessageKind::Text, t)),
    }
}

/// Gives partition 0 of `topic` to `owner` at a new epoch, as ownership does.
async fn take_lease(s: &PostgresStore, topic: &str, owner: &str) -> i64 {
    sqlx::query(
        "INSERT INTO pipeline_offsets (topic, partition, next_offset) VALUES ($1, 0, 0) \
         ON CONFLICT DO NOTHING",
    )
    .bind(topic)
    .execute(s.pool())
    .await
    .unwrap();
    sqlx::query_scalar(
        "UPDATE pipeline_offsets SET lease_owner = $2, lease_epoch = lease_epoch + 1, \
         lease_expires = now() + interval '5 seconds' WHERE topic = $1 AND partition = 0 \
         RETURNING lease_epoch",
    )
    .bind(topic)
    .bind(owner)
    .fetch_one(s.pool())
    .await
    .unwrap()
}

fn stored_text(l: &Logged) -> &str {
    match l {
        Logged::Applied(Ok(Appended::New(m))) => &m.text,
        other => panic!("not stored: {other:?}"),
    }
}

async fn texts(s: &PostgresStore, room: i64) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT text FROM messages WHERE room_id = $1 AND kind = 'text' ORDER BY seq",
    )
    .bind(room)
    .fetch_all(s.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_node_that_lost_its_lease_writes_nothing() {
    let Some((s, _guard, who, room)) = setup().await else {
        return;
    };
    let a = take_lease(&s, TOPIC, "node-a").await;
    let epochs_a = HashMap::from([(0, a)]);
    let lease_a = Lease {
        owner: "node-a",
        epochs: &epochs_a,
    };
    let out = s
        .append_logged(TOPIC, lease_a, vec![record(0, room, &who, "from a")])
        .await
        .unwrap();
    assert_eq!(stored_text(&out[0]), "from a");

    // Node b takes the partition over (a hung; its lease expired).
    let b = take_lease(&s, TOPIC, "node-b").await;
    let out = s
        .append_logged(TOPIC, lease_a, vec![record(1, room, &who, "late a")])
        .await
        .unwrap();
    assert!(matches!(out[0], Logged::Fenced), "{out:?}");
    let epochs_b = HashMap::from([(0, b)]);
    let lease_b = Lease {
        owner: "node-b",
        epochs: &epochs_b,
    };
    let out = s
        .append_logged(TOPIC, lease_b, vec![record(1, room, &who, "from b")])
        .await
        .unwrap();
    assert_eq!(stored_text(&out[0]), "from b");
    assert_eq!(texts(&s, room).await, ["from a", "from b"]);
    assert_eq!(s.log_positions(TOPIC).await.unwrap()[&0].next_offset, 2);
}

#[tokio::test]
async fn log_positions_are_per_topic_and_incarnation() {
    let Some((s, _guard, who, room)) = setup().await else {
        return;
    };
    let e = take_lease(&s, TOPIC, "n").await;
    let epochs = HashMap::from([(0, e)]);
    let lease = Lease {
        owner: "n",
        epochs: &epochs,
    };
    s.append_logged(TOPIC, lease, vec![record(0, room, &who, "old 0")])
        .await
        .unwrap();
    // Another topic's offset 0 is another record.
    let other = "u.messages";
    let e2 = take_lease(&s, other, "n").await;
    let epochs2 = HashMap::from([(0, e2)]);
    let out = s
        .append_logged(
            other,
            Lease {
                owner: "n",
                epochs: &epochs2,
            },
            vec![record(0, room, &who, "other topic 0")],
        )
        .await
        .unwrap();
    assert_eq!(stored_text(&out[0]), "other topic 0");

    // Below the applied offset: never reported as stored.
    let out = s
        .append_logged(TOPIC, lease, vec![record(0, room, &who, "recreated 0")])
        .await
        .unwrap();
    assert!(matches!(out[0], Logged::Replayed), "{out:?}");
    // The topic was recreated: a new incarnation applies offset 0 again.
    let before = s.log_positions(TOPIC).await.unwrap()[&0];
    let after = s.reset_log(TOPIC, "n", e, 0, 0).await.unwrap().unwrap();
    assert_ne!(before.log_id, after.log_id);
    assert_eq!(after.next_offset, 0);
    let out = s
        .append_logged(TOPIC, lease, vec![record(0, room, &who, "recreated 0")])
        .await
        .unwrap();
    assert_eq!(stored_text(&out[0]), "recreated 0");
    assert_eq!(
        texts(&s, room).await,
        ["old 0", "other topic 0", "recreated 0"]
    );
    // Only the lease holder may start an incarnation.
    assert!(s.reset_log(TOPIC, "x", e, 0, 0).await.unwrap().is_none());
}

#[tokio::test]
async fn a_record_without_a_message_consumes_its_offset() {
    let Some((s, _guard, who, room)) = setup().await else {
        return;
    };
    let e = take_lease(&s, TOPIC, "n").await;
    let epochs = HashMap::from([(0, e)]);
    let lease = Lease {
        owner: "n",
        epochs: &epochs,
    };
    let poison = LogRecord {
        partition: 0,
        offset: 0,
        message: None,
    };
    let out = s
        .append_logged(
            TOPIC,
            lease,
            vec![poison, record(1, room, &who, "after poison")],
        )
        .await
        .unwrap();
    assert!(matches!(out[0], Logged::Skipped), "{out:?}");
    assert_eq!(stored_text(&out[1]), "after poison");
    assert_eq!(s.log_positions(TOPIC).await.unwrap()[&0].next_offset, 2);
}
