//! Contract §3: presence snapshots on subscribe and on change.

use serde_json::{json, Value};

use crate::helpers::spawn_app;

fn online_ids(p: &Value) -> Vec<i64> {
    let mut v: Vec<i64> = p["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn presence_on_subscribe_and_on_change() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "public").await;
    let dest = format!("/topic/rooms.{room}");
    let mut a = app.stomp(&alice).await;
    a.subscribe_sync("a", &dest, &[]).await.unwrap();
    let p = a.next_of_type("a", "presence").await.unwrap();
    assert_eq!(p["room_id"], room);
    assert_eq!(
        p["online"],
        json!([{"id": alice.id, "name": alice.name, "guest": false}])
    );

    let mut b = app.stomp(&bob).await;
    b.subscribe_sync("b", &dest, &[]).await.unwrap();
    let p = b.next_of_type("b", "presence").await.unwrap();
    assert_eq!(online_ids(&p), [alice.id, bob.id]);
    // Alice hears about Bob (skip her own earlier snapshots).
    loop {
        let p = a.next_of_type("a", "presence").await.unwrap();
        if online_ids(&p) == [alice.id, bob.id] {
            break;
        }
    }
    // Bob drops: Alice hears that too.
    b.abort();
    loop {
        let p = a.next_of_type("a", "presence").await.unwrap();
        if online_ids(&p) == [alice.id] {
            break;
        }
    }
}

#[tokio::test]
async fn a_burst_of_joins_is_coalesced() {
    let app = crate::helpers::spawn_app_with(|c| c.presence_interval_ms = 400).await;
    let owner = app.signup("owner").await;
    let room = app.create_room(&owner, "big", "public").await;
    let dest = format!("/topic/rooms.{room}");
    let mut o = app.stomp(&owner).await;
    o.subscribe_sync("o", &dest, &[]).await.unwrap();
    let mut clients = Vec::new();
    for i in 0..20 {
        let u = app.guest(&format!("g{i}")).await;
        let mut c = app.stomp(&u).await;
        c.subscribe_sync("s", &dest, &[]).await.unwrap();
        clients.push(c);
    }
    // Wait until the owner sees all 21, counting the snapshots it got.
    let mut snapshots = 0;
    loop {
        let p = o.next_of_type("o", "presence").await.unwrap();
        snapshots += 1;
        if p["online"].as_array().unwrap().len() == 21 {
            break;
        }
    }
    assert!(
        snapshots < 21,
        "{snapshots} presence messages for 20 joins: not coalesced"
    );
}

#[tokio::test]
async fn big_rooms_list_a_bounded_number_of_users_with_the_total() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.signup("owner").await;
    let room = app.create_room(&owner, "big", "public").await;
    let dest = format!("/topic/rooms.{room}");
    let mut clients = Vec::new();
    for i in 0..120 {
        let u = app.guest(&format!("g{i}")).await;
        let mut c = app.stomp(&u).await;
        c.subscribe_sync("s", &dest, &[]).await.unwrap();
        clients.push(c);
    }
    let mut o = app.stomp(&owner).await;
    o.subscribe_sync("o", &dest, &[]).await.unwrap();
    let p = o.next_of_type("o", "presence").await.unwrap();
    assert_eq!(p["count"], 121);
    assert_eq!(p["online"].as_array().unwrap().len(), 100);
}
