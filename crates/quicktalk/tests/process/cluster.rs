//! Several nodes as one service: real binaries on one PostgreSQL database and one
//! Kafka-protocol broker (`QUICKTALK_TEST_POSTGRES_URL`,
//! `QUICKTALK_TEST_KAFKA_BROKERS`). Each test gets its own schema and topics.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use quicktalk_client::stomp::Command;
use quicktalk_client::StompClient;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::harness::{data_dir, ServerProcess};

use crate::cluster_env::{cluster_env, ClusterEnv as Env};

async fn env(tag: &str) -> Option<Env> {
    cluster_env("multi-node tests (PostgreSQL + Kafka)", "cluster", tag).await
}

impl Env {
    fn node(&self, dir: &std::path::Path) -> ServerProcess {
        self.node_with(dir, 4)
    }

    fn node_with(&self, dir: &std::path::Path, partitions: usize) -> ServerProcess {
        self.node_prefixed(dir, partitions, &self.prefix)
    }

    fn node_prefixed(
        &self,
        dir: &std::path::Path,
        partitions: usize,
        prefix: &str,
    ) -> ServerProcess {
        let partitions = partitions.to_string();
        let mut args = vec![
            "--database-url",
            &self.db_url,
            "--kafka-brokers",
            &self.brokers,
            "--kafka-topic-prefix",
            prefix,
            "--kafka-partitions",
            &partitions,
            "--media-store",
            &self.media_store,
            "--log",
            "info,rdkafka=warn",
        ];
        if self.media_shared {
            args.push("--media-store-shared");
        }
        ServerProcess::start(dir, &args)
    }
}

async fn subscribe(c: &mut StompClient, room: i64, since: Option<i64>) {
    let dest = format!("/topic/rooms.{room}");
    let since = since.map(|s| s.to_string());
    let mut extra: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = &since {
        extra.push(("since-seq", s));
    }
    c.subscribe_sync("room", &dest, &extra)
        .await
        .expect("subscribe");
}

/// Reads room messages until `want` texts arrived (or `wait` passed); returns
/// every stored message seen, in arrival order.
async fn collect(c: &mut StompClient, want: usize, wait: Duration) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut texts = 0;
    while texts < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = match c.recv_timeout(left).await {
            Ok(Some(f)) => f,
            _ => break,
        };
        if f.command != Command::Message || f.header("subscription") != Some("room") {
            continue;
        }
        let v: Value = serde_json::from_slice(&f.body).unwrap();
        if v["type"] == "message" {
            if v["kind"] == "text" {
                texts += 1;
            }
            got.push(v);
        }
    }
    got
}

fn assert_in_order_once(seen: &[Value], who: &str) {
    let seqs: Vec<i64> = seen.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{who}: seq not consecutive: {seqs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_three_nodes_see_every_message_once_in_order() {
    let Some(env) = env("order").await else {
        return;
    };
    let dirs: Vec<_> = (0..3).map(|_| data_dir()).collect();
    let nodes: Vec<ServerProcess> = dirs.iter().map(|d| env.node(d.path())).collect();

    // A token from one node works on every node (shared signing key).
    let (_, owner) = nodes[0].signup("owner").await;
    let room = nodes[0].create_room(&owner, "cluster room").await;
    let mut users = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let (id, token) = n.signup(&format!("member{i}")).await;
        let (status, _) = n
            .post(
                &format!("/api/v1/rooms/{room}/join"),
                Some(&token),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200);
        users.push((id, token));
    }
    let mut clients = Vec::new();
    for (i, (_, token)) in users.iter().enumerate() {
        let mut c = StompClient::connect(&nodes[i].ws_url(), token)
            .await
            .unwrap();
        subscribe(&mut c, room, Some(0)).await;
        clients.push(c);
    }

    // Everyone sends at once, each through their own node, with receipts.
    const EACH: usize = 40;
    let mut senders = Vec::new();
    for (i, (_, token)) in users.iter().enumerate() {
        let url = nodes[i].ws_url();
        let token = token.clone();
        senders.push(tokio::spawn(async move {
            let mut c = StompClient::connect(&url, &token).await.unwrap();
            for k in 0..EACH {
                let r = format!("r{k}");
                c.send_json(
                    &format!("/app/rooms.{room}"),
                    &json!({"text": format!("node{i} msg{k}"), "client_id": format!("n{i}-{k}")}),
                    Some(&r),
                )
                .await
                .unwrap();
                // Eight in flight; the last one is always waited for.
                if k % 8 == 7 || k == EACH - 1 {
                    c.expect_receipt(&r).await.unwrap();
                }
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let total = 3 * EACH;
    for (i, c) in clients.iter_mut().enumerate() {
        let seen = collect(c, total, Duration::from_secs(20)).await;
        let who = format!("member{i} on node{i}");
        assert_in_order_once(&seen, &who);
        let texts: Vec<&str> = seen
            .iter()
            .filter(|m| m["kind"] == "text")
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&&str> = texts.iter().collect();
        assert_eq!(texts.len(), total, "{who} saw {} texts", texts.len());
        assert_eq!(unique.len(), total, "{who} saw a repeat");
        // Each sender's own messages in the order sent.
        for s in 0..3 {
            let mine: Vec<&&str> = texts
                .iter()
                .filter(|t| t.starts_with(&format!("node{s} ")))
                .collect();
            let want: Vec<String> = (0..EACH).map(|k| format!("node{s} msg{k}")).collect();
            assert_eq!(
                mine.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                want,
                "{who}"
            );
        }
    }
    // And the store agrees: gapless from 1.
    let history = nodes[2].history(&owner, room).await;
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    drop(nodes);
    env.drop_schema().await;
}

/// Streams messages with one in flight until the connection fails or `stop` is
/// set; returns the indexes acknowledged by a RECEIPT.
async fn writer(
    url: String,
    token: String,
    room: i64,
    tag: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> BTreeSet<usize> {
    let mut acked = BTreeSet::new();
    let Ok(mut c) = StompClient::connect(&url, &token).await else {
        return acked;
    };
    // A rejected SEND gets its RECEIPT too, after an error naming it here.
    if c.subscribe_sync("errors", "/user/queue/errors", &[])
        .await
        .is_err()
    {
        return acked;
    }
    let mut k = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let r = format!("r{k}");
        let sent = c
            .send_json(
                &format!("/app/rooms.{room}"),
                &json!({"text": format!("{tag} msg{k}"), "client_id": format!("{tag}{k}")}),
                Some(&r),
            )
            .await;
        // Long enough to ride out a partition moving to another node.
        let ok = sent.is_ok()
            && c.recv_until(Duration::from_secs(40), |f| {
                f.command == Command::Receipt && f.header("receipt-id") == Some(r.as_str())
                    || f.command == Command::Error
                    || f.command == Command::Message
                        && f.header("subscription") == Some("errors")
                        && serde_json::from_slice::<Value>(&f.body)
                            .is_ok_and(|v| v["receipt_id"] == r.as_str())
            })
            .await
            .is_ok_and(|f| f.command == Command::Receipt);
        if !ok {
            return acked;
        }
        acked.insert(k);
        k += 1;
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_sequencing_node_under_load_loses_no_acknowledged_message() {
    let Some(env) = env("kill").await else { return };
    let dirs: Vec<_> = (0..3).map(|_| data_dir()).collect();
    // One partition: exactly one node sequences every room.
    let mut nodes: Vec<ServerProcess> = dirs.iter().map(|d| env.node_with(d.path(), 1)).collect();
    let (_, token) = nodes[0].signup("writer").await;
    let room = nodes[0].create_room(&token, "crash room").await;
    let (_, reader) = nodes[2].signup("reader").await;
    let (status, _) = nodes[2]
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&reader),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let mut owner = None;
    for _ in 0..100 {
        for (i, n) in nodes.iter().enumerate() {
            if n.metric("quicktalk_pipeline_partitions_owned").await == 1.0 {
                owner = Some(i);
            }
        }
        if owner.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let owner = owner.expect("one node owns the partition");
    let other = (owner + 1) % 3;

    // Writers on the sequencing node and on another node; the sequencing node dies.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_owner = tokio::spawn(writer(
        nodes[owner].ws_url(),
        token.clone(),
        room,
        "owner",
        stop.clone(),
    ));
    let on_other = tokio::spawn(writer(
        nodes[other].ws_url(),
        token.clone(),
        room,
        "other",
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nodes[owner].kill9();
    let killed_at = Instant::now();
    let acked_owner = on_owner.await.unwrap();
    assert!(
        acked_owner.len() > 5,
        "only {} acknowledged before the kill",
        acked_owner.len()
    );

    // The owner's writer reconnects to a surviving node and is served again once
    // the partition has moved (the group notices the dead member).
    let mut c = StompClient::connect(&nodes[other].ws_url(), &token)
        .await
        .unwrap();
    c.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "after the crash", "client_id": "after"}),
        Some("after"),
    )
    .await
    .unwrap();
    c.recv_until(Duration::from_secs(45), |f| {
        f.command == Command::Receipt && f.header("receipt-id") == Some("after")
    })
    .await
    .expect("a receipt once the partition moved");
    let served_again = killed_at.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked_other = on_other.await.unwrap();
    eprintln!(
        "sequencing node killed: served again after {served_again:?}; acknowledged {} on it, {} on another node",
        acked_owner.len(),
        acked_other.len()
    );

    // Every acknowledged message is stored, exactly once, gapless.
    let history = nodes[other].history(&token, room).await;
    let mut by_text: BTreeMap<String, usize> = BTreeMap::new();
    for m in history.iter().filter(|m| m["kind"] == "text") {
        *by_text
            .entry(m["text"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (tag, acked) in [("owner", &acked_owner), ("other", &acked_other)] {
        for k in acked {
            assert_eq!(
                by_text.get(&format!("{tag} msg{k}")),
                Some(&1),
                "acknowledged {tag} msg{k}"
            );
        }
    }
    assert!(by_text.values().all(|n| *n == 1), "a message stored twice");
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());

    // A reader recovers everything with since-seq on a surviving node.
    let survivor = 3 - owner - other;
    let mut r = StompClient::connect(&nodes[survivor].ws_url(), &reader)
        .await
        .unwrap();
    subscribe(&mut r, room, Some(0)).await;
    let texts = history.iter().filter(|m| m["kind"] == "text").count();
    let seen = collect(&mut r, texts, Duration::from_secs(10)).await;
    assert_in_order_once(&seen, "reader");
    assert_eq!(seen.len(), history.len());
    drop(nodes);
    env.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_on_different_nodes_are_matched_and_chat() {
    let Some(env) = env("match").await else {
        return;
    };
    let dirs: Vec<_> = (0..2).map(|_| data_dir()).collect();
    let nodes: Vec<ServerProcess> = dirs.iter().map(|d| env.node(d.path())).collect();
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let (status, body) = n
            .post(
                "/api/v1/auth/guest",
                None,
                &json!({"nickname": format!("guest{i}")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["user"]["id"].as_i64().unwrap());
        let token = body["token"].as_str().unwrap().to_owned();
        let mut c = StompClient::connect(&n.ws_url(), &token).await.unwrap();
        c.subscribe_sync("ev", "/user/queue/events", &[])
            .await
            .unwrap();
        clients.push(c);
    }
    for c in clients.iter_mut() {
        c.send_json("/app/match.connect", &json!({}), None)
            .await
            .unwrap();
    }
    let mut rooms = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let found = c.next_of_type("ev", "match.found").await.unwrap();
        assert_eq!(found["partner"]["id"].as_i64(), Some(ids[1 - i]), "{found}");
        rooms.push(found["room_id"].as_i64().unwrap());
    }
    assert_eq!(rooms[0], rooms[1], "one room for the pair");
    let room = rooms[0];

    // They chat across nodes.
    for c in clients.iter_mut() {
        subscribe(c, room, Some(0)).await;
    }
    clients[0]
        .send_json(
            &format!("/app/rooms.{room}"),
            &json!({"text": "hi from node 0"}),
            Some("s0"),
        )
        .await
        .unwrap();
    clients[0].expect_receipt("s0").await.unwrap();
    let got = collect(&mut clients[1], 1, Duration::from_secs(10)).await;
    assert!(got.iter().any(|m| m["text"] == "hi from node 0"), "{got:?}");

    // Next on node 1 tells the partner on node 0 at once.
    clients[1]
        .send_json("/app/match.next", &json!({}), None)
        .await
        .unwrap();
    let ended = clients[0].next_of_type("ev", "match.ended").await.unwrap();
    assert_eq!(ended["reason"], "partner_left", "{ended}");
    drop(nodes);
    env.drop_schema().await;
}

/// Waits for a presence event on `room`'s subscription satisfying `pred`.
async fn presence_until(c: &mut StompClient, pred: impl Fn(&[i64]) -> bool) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = c
            .recv_until(left, |f| {
                f.command == Command::Message
                    && f.header("subscription") == Some("room")
                    && serde_json::from_slice::<Value>(&f.body)
                        .is_ok_and(|v| v["type"] == "presence")
            })
            .await
            .expect("a presence event");
        let v: Value = serde_json::from_slice(&f.body).unwrap();
        let ids: Vec<i64> = v["online"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect();
        if pred(&ids) {
            return ids;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_typing_cross_nodes() {
    let Some(env) = env("presence").await else {
        return;
    };
    let dirs: Vec<_> = (0..2).map(|_| data_dir()).collect();
    let nodes: Vec<ServerProcess> = dirs.iter().map(|d| env.node(d.path())).collect();
    let (a_id, a) = nodes[0].signup("pres_a").await;
    let room = nodes[0].create_room(&a, "presence room").await;
    let (b_id, b) = nodes[1].signup("pres_b").await;
    let (status, _) = nodes[1]
        .post(&format!("/api/v1/rooms/{room}/join"), Some(&b), &json!({}))
        .await;
    assert_eq!(status, 200);

    let mut ca = StompClient::connect(&nodes[0].ws_url(), &a).await.unwrap();
    subscribe(&mut ca, room, None).await;
    presence_until(&mut ca, |ids| ids == [a_id]).await;
    let mut cb = StompClient::connect(&nodes[1].ws_url(), &b).await.unwrap();
    subscribe(&mut cb, room, None).await;
    // Each sees both, though they are on different nodes.
    presence_until(&mut ca, |ids| ids.contains(&b_id) && ids.contains(&a_id)).await;
    presence_until(&mut cb, |ids| ids.contains(&a_id) && ids.contains(&b_id)).await;
    let (_, members) = nodes[0]
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&a))
        .await;
    let online: Vec<i64> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["online"] == true)
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert!(online.contains(&b_id), "members on node 0: {members}");

    // Typing crosses nodes too.
    cb.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), None)
        .await
        .unwrap();
    let typing = ca
        .recv_until(Duration::from_secs(10), |f| {
            serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["type"] == "typing")
        })
        .await
        .expect("typing from the other node");
    let v: Value = serde_json::from_slice(&typing.body).unwrap();
    assert_eq!(v["user"]["id"].as_i64(), Some(b_id));

    // B leaves its node: A sees B go.
    cb.close().await.unwrap();
    presence_until(&mut ca, |ids| ids == [a_id]).await;
    drop(nodes);
    env.drop_schema().await;
}

/// Sends `text` with a receipt; true if the RECEIPT came (not an error) within `wait`.
async fn send_acked(c: &mut StompClient, room: i64, text: &str, wait: Duration) -> bool {
    let r = format!("r-{text}");
    c.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": text, "client_id": text}),
        Some(&r),
    )
    .await
    .unwrap();
    let r = c
        .recv_until(wait, |f| {
            f.command == Command::Receipt && f.header("receipt-id") == Some(r.as_str())
                || f.command == Command::Error
                || f.command == Command::Message
                    && f.header("subscription") == Some("errors")
                    && serde_json::from_slice::<Value>(&f.body)
                        .is_ok_and(|v| v["receipt_id"] == r.as_str())
        })
        .await;
    match r {
        Ok(f) if f.command == Command::Receipt => true,
        // Shown with the failing test's output: why this attempt did not count.
        Ok(f) => {
            eprintln!(
                "{text}: {:?} {}",
                f.command,
                String::from_utf8_lossy(&f.body)
            );
            false
        }
        Err(e) => {
            eprintln!("{text}: {e}");
            false
        }
    }
}

fn texts_of(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Defect 7: the stored log position outlived the topic (recreated: its offsets
/// start at 0 again). A new SEND must be stored and acknowledged as itself, never
/// answered with the message an old record at the same offset stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_is_applied_again_not_answered_with_old_messages() {
    let Some(env) = env("recreate").await else {
        return;
    };
    let dir = data_dir();
    let mut node = env.node_with(dir.path(), 1);
    let (_, token) = node.signup("recreator").await;
    let room = node.create_room(&token, "recreated room").await;
    let mut c = StompClient::connect(&node.ws_url(), &token).await.unwrap();
    c.subscribe_sync("errors", "/user/queue/errors", &[])
        .await
        .unwrap();
    for k in 0..3 {
        assert!(send_acked(&mut c, room, &format!("old{k}"), Duration::from_secs(20)).await);
    }
    drop(c);
    node.terminate();
    node.wait_exit(Duration::from_secs(15));
    // The topic is recreated: the same stored log row meets a broker log that
    // starts at offset 0 again (a fresh topic under the stored topic's name).
    let fresh = format!("{}r", env.prefix);
    let pool = sqlx::PgPool::connect(&env.db_url).await.unwrap();
    sqlx::query("UPDATE pipeline_offsets SET topic = $1 WHERE topic = $2")
        .bind(format!("{fresh}.messages"))
        .bind(format!("{}.messages", env.prefix))
        .execute(&pool)
        .await
        .unwrap();
    let node = env.node_prefixed(dir.path(), 1, &fresh);
    let mut c = StompClient::connect(&node.ws_url(), &token).await.unwrap();
    c.subscribe_sync("errors", "/user/queue/errors", &[])
        .await
        .unwrap();
    for k in 0..2 {
        let text = format!("new{k}");
        assert!(
            send_acked(&mut c, room, &text, Duration::from_secs(20)).await,
            "{text} not acknowledged"
        );
        // Acknowledged means stored: as itself, once.
        let texts = texts_of(&node.history(&token, room).await);
        assert_eq!(
            texts.iter().filter(|t| **t == text).count(),
            1,
            "acknowledged {text} but stored: {texts:?}"
        );
    }
    let history = node.history(&token, room).await;
    assert_eq!(texts_of(&history), ["old0", "old1", "old2", "new0", "new1"]);
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    drop(node);
    env.drop_schema().await;
}

/// Defect 1 (cluster side): a record that cannot be decoded, or that the store
/// refuses on its own (a NUL byte: PostgreSQL rejects it in text), is rejected
/// and the partition keeps sequencing the SENDs after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_record_does_not_stall_its_partition() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let Some(env) = env("poison").await else {
        return;
    };
    let dir = data_dir();
    let node = env.node_with(dir.path(), 1);
    let (uid, token) = node.signup("poisoner").await;
    let room = node.create_room(&token, "poisoned room").await;
    let mut c = StompClient::connect(&node.ws_url(), &token).await.unwrap();
    c.subscribe_sync("errors", "/user/queue/errors", &[])
        .await
        .unwrap();
    assert!(send_acked(&mut c, room, "before", Duration::from_secs(20)).await);

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.brokers)
        .create()
        .unwrap();
    let topic = format!("{}.messages", env.prefix);
    let nul = json!({
        "node": "test", "req": 1,
        "msg": {"room_id": room, "kind": "text", "sender": {"id": uid, "name": "poisoner"},
                "text": "a\u{0}b", "client_id": null, "sent_at": 1_700_000_000_000i64}
    })
    .to_string();
    for payload in [b"not json {".to_vec(), nul.into_bytes()] {
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to(&topic)
                    .partition(0)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    for k in 0..3 {
        let text = format!("after{k}");
        assert!(
            send_acked(&mut c, room, &text, Duration::from_secs(20)).await,
            "{text} not acknowledged after a poisoned record"
        );
    }
    let history = node.history(&token, room).await;
    assert_eq!(texts_of(&history), ["before", "after0", "after1", "after2"]);
    drop(node);
    env.drop_schema().await;
}

/// Streams messages like [`writer`], recording when each RECEIPT arrived.
async fn timed_writer(
    url: String,
    token: String,
    room: i64,
    tag: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    times: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
) -> BTreeSet<usize> {
    let mut acked = BTreeSet::new();
    let mut c = StompClient::connect(&url, &token).await.unwrap();
    c.subscribe_sync("errors", "/user/queue/errors", &[])
        .await
        .unwrap();
    let mut k = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        // An unknown outcome (the hung node took the record with it) is retried
        // with the same client_id, as a client must.
        let mut ok = false;
        for _ in 0..3 {
            if send_acked(&mut c, room, &format!("{tag}{k}"), Duration::from_secs(40)).await {
                ok = true;
                break;
            }
        }
        if !ok {
            return acked;
        }
        times.lock().unwrap().push(Instant::now());
        acked.insert(k);
        k += 1;
    }
    acked
}

/// Defect 8: a hung owner (SIGSTOP) keeps its PostgreSQL sessions. Its lease
/// expires, another node sequences within 15 s; woken (SIGCONT) it writes
/// nothing (fenced); every acknowledged message is stored once, `seq` gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_of_the_sequencing_node_moves_its_partition_and_fences_it() {
    let Some(env) = env("stop").await else { return };
    let dirs: Vec<_> = (0..3).map(|_| data_dir()).collect();
    let nodes: Vec<ServerProcess> = dirs.iter().map(|d| env.node_with(d.path(), 1)).collect();
    let (_, token) = nodes[0].signup("stopwriter").await;
    let room = nodes[0].create_room(&token, "stop room").await;
    let mut owner = None;
    for _ in 0..100 {
        for (i, n) in nodes.iter().enumerate() {
            if n.metric("quicktalk_pipeline_partitions_owned").await == 1.0 {
                owner = Some(i);
            }
        }
        if owner.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let owner = owner.expect("one node owns the partition");
    let others = [(owner + 1) % 3, (owner + 2) % 3];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tags = ["a", "b"];
    let writers: Vec<_> = others
        .iter()
        .zip(tags)
        .map(|(i, tag)| {
            tokio::spawn(timed_writer(
                nodes[*i].ws_url(),
                token.clone(),
                room,
                tag,
                stop.clone(),
                times.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = times.lock().unwrap().len();
    assert!(before > 5, "only {before} acknowledged before SIGSTOP");
    let mut nodes = nodes;
    nodes[owner].signal("STOP");
    let stopped_at = Instant::now();
    // Served again: a RECEIPT that only a new sequencer can have produced.
    let deadline = stopped_at + Duration::from_secs(30);
    let failover = loop {
        let t = times
            .lock()
            .unwrap()
            .iter()
            .copied()
            .find(|t| *t > stopped_at + Duration::from_millis(300));
        if let Some(t) = t {
            break t - stopped_at;
        }
        assert!(
            Instant::now() < deadline,
            "no RECEIPT within 30 s of SIGSTOP"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("FAILOVER after SIGSTOP: {failover:?}");
    assert!(
        failover < Duration::from_secs(15),
        "failover took {failover:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The hung node wakes up: it must notice it lost the lease and write nothing.
    nodes[owner].signal("CONT");
    let mut gave_up = false;
    for _ in 0..100 {
        if nodes[owner]
            .metric("quicktalk_pipeline_partitions_owned")
            .await
            == 0.0
        {
            gave_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gave_up, "the woken node still sequences the partition");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.push(w.await.unwrap());
    }
    let history = nodes[others[0]].history(&token, room).await;
    let mut by_text: BTreeMap<String, usize> = BTreeMap::new();
    for t in texts_of(&history) {
        *by_text.entry(t).or_default() += 1;
    }
    for (tag, acked) in tags.iter().zip(&acked) {
        assert!(acked.len() > 10, "{tag}: only {} acknowledged", acked.len());
        for k in acked {
            assert_eq!(
                by_text.get(&format!("{tag}{k}")),
                Some(&1),
                "acknowledged {tag}{k}"
            );
        }
    }
    assert!(by_text.values().all(|n| *n == 1), "a message stored twice");
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    drop(nodes);
    env.drop_schema().await;
}

/// The next stored message on the `room` subscription.
async fn next_room_message(c: &mut StompClient) -> Value {
    let f = c
        .recv_until(Duration::from_secs(10), |f| {
            f.command == Command::Message
                && f.header("subscription") == Some("room")
                && serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["type"] == "message")
        })
        .await
        .expect("a room message");
    serde_json::from_slice(&f.body).unwrap()
}

/// Contract §7 on three nodes: a block made through one node is enforced on
/// every node — the blocker (node 0) gets the blocked user's (node 1) messages
/// as `kind:"hidden"` live, in replay and in history read on a third node;
/// their typing and presence do not reach the blocker; a direct room, a
/// friend request and a match between them are refused wherever asked; a
/// bystander (node 2) sees everything. Friends' online state crosses nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_is_enforced_on_every_node() {
    let Some(env) = env("blocks").await else {
        return;
    };
    let dirs: Vec<_> = (0..3).map(|_| data_dir()).collect();
    let nodes: Vec<ServerProcess> = dirs.iter().map(|d| env.node(d.path())).collect();
    let (a_id, a) = nodes[0].signup("blocker").await;
    let (b_id, b) = nodes[1].signup("blocked").await;
    let (c_id, c) = nodes[2].signup("bystander").await;
    let room = nodes[2].create_room(&c, "shared").await;
    for (i, t) in [(0, &a), (1, &b)] {
        let (s, _) = nodes[i]
            .post(&format!("/api/v1/rooms/{room}/join"), Some(t), &json!({}))
            .await;
        assert_eq!(s, 200);
    }
    // a and c are friends (through node 1): c's online state reaches node 0.
    let (_, r) = nodes[1]
        .post(
            "/api/v1/friends/requests",
            Some(&a),
            &json!({"user_id": c_id}),
        )
        .await;
    let (s, _) = nodes[1]
        .post(
            &format!("/api/v1/friends/requests/{}/accept", r["id"]),
            Some(&c),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200);
    // The block, made through node 2.
    let (s, v) = nodes[2]
        .post("/api/v1/blocks", Some(&a), &json!({"user_id": b_id}))
        .await;
    assert_eq!(s, 204, "{v}");
    let mut ca = StompClient::connect(&nodes[0].ws_url(), &a).await.unwrap();
    let mut cb = StompClient::connect(&nodes[1].ws_url(), &b).await.unwrap();
    let mut cc = StompClient::connect(&nodes[2].ws_url(), &c).await.unwrap();
    for cl in [&mut ca, &mut cb, &mut cc] {
        subscribe(cl, room, None).await;
    }
    // Presence: c sees b; a sees c but never b.
    presence_until(&mut cc, |ids| ids.contains(&b_id) && ids.contains(&a_id)).await;
    let seen_by_a = presence_until(&mut ca, |ids| ids.contains(&c_id)).await;
    assert!(!seen_by_a.contains(&b_id), "{seen_by_a:?}");
    let (_, f) = nodes[0].get("/api/v1/friends", Some(&a)).await;
    assert_eq!(
        f["friends"][0]["online"], true,
        "c online across nodes: {f}"
    );
    // b speaks on node 1: hidden for a on node 0, full for c on node 2.
    cb.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "psst"}),
        Some("b1"),
    )
    .await
    .unwrap();
    cb.expect_receipt("b1").await.unwrap();
    let full = next_room_message(&mut cc).await;
    assert_eq!(full["text"], "psst");
    let hidden = next_room_message(&mut ca).await;
    assert_eq!(
        (hidden["kind"].as_str(), hidden["seq"].as_i64()),
        (Some("hidden"), full["seq"].as_i64()),
        "{hidden}"
    );
    assert!(
        hidden.get("text").is_none() && hidden.get("sender").is_none(),
        "{hidden}"
    );
    // Typing: c gets b's; a gets c's (sent after) and not b's.
    cb.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), None)
        .await
        .unwrap();
    let t = cc
        .recv_until(Duration::from_secs(10), |f| {
            serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["type"] == "typing")
        })
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&t.body).contains(&format!("\"id\":{b_id}")));
    cc.send_json(&format!("/app/rooms.{room}.typing"), &json!({}), None)
        .await
        .unwrap();
    let t = ca
        .recv_until(Duration::from_secs(10), |f| {
            serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["type"] == "typing")
        })
        .await
        .unwrap();
    let t: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        t["user"]["id"].as_i64(),
        Some(c_id),
        "b's typing reached a: {t}"
    );
    // History read on node 1 and a replay on node 2: hidden for a.
    let h = nodes[1].history(&a, room).await;
    let m = h.iter().find(|m| m["seq"] == full["seq"]).unwrap();
    assert_eq!(m["kind"], "hidden", "{m}");
    let mut ra = StompClient::connect(&nodes[2].ws_url(), &a).await.unwrap();
    subscribe(&mut ra, room, Some(0)).await;
    let replayed = collect(&mut ra, 1, Duration::from_secs(3)).await;
    let m = replayed
        .iter()
        .find(|m| m["seq"] == full["seq"])
        .expect("replayed");
    assert_eq!(m["kind"], "hidden", "{m}");
    // Refused wherever asked, without saying why.
    for n in &nodes {
        let (s, v) = n
            .post("/api/v1/direct", Some(&b), &json!({"user_id": a_id}))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("not_allowed")),
            "{v}"
        );
        let (s, v) = n
            .post(
                "/api/v1/friends/requests",
                Some(&b),
                &json!({"user_id": a_id}),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("not_allowed")),
            "{v}"
        );
    }
    // Never matched, though on different nodes.
    for cl in [&mut ca, &mut cb] {
        cl.subscribe_sync("ev", "/user/queue/events", &[])
            .await
            .unwrap();
        cl.send_json("/app/match.connect", &json!({}), None)
            .await
            .unwrap();
    }
    let found = ca
        .recv_until(Duration::from_secs(3), |f| {
            serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["type"] == "match.found")
        })
        .await;
    assert!(found.is_err(), "a blocked pair was matched across nodes");
    drop(nodes);
    env.drop_schema().await;
}
