//! Durability across a crash (SIGKILL) and a graceful stop (SIGTERM): a RECEIPT
//! for a SEND means the message is stored, and `seq` stays gapless and unique.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quicktalk_client::stomp::Command;
use quicktalk_client::StompClient;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::harness::{assert_gapless, data_dir, ServerProcess};

/// Unacknowledged SENDs one connection keeps in flight: pipelined, but paced by
/// the receipts so the stream is still going when the server dies.
const WINDOW: usize = 24;

fn client_id(tag: &str, sender: usize, i: usize) -> String {
    format!("{tag}-{sender}-{i}")
}

fn text(tag: &str, sender: usize, i: usize) -> String {
    format!("{tag} sender {sender} message {i}")
}

fn receipt(sender: usize, i: usize) -> String {
    format!("r-{sender}-{i}")
}

fn receipt_index(sender: usize, id: &str) -> Option<usize> {
    id.strip_prefix(&format!("r-{sender}-"))?.parse().ok()
}

/// What one pipelined sender saw.
#[derive(Debug, Default)]
struct Outcome {
    sender: usize,
    /// SEND frames written (messages 0..sent).
    sent: usize,
    /// Indexes whose RECEIPT arrived without a rejection.
    acked: BTreeSet<usize>,
    /// Indexes rejected on `/user/queue/errors`, with the error body.
    rejected: BTreeMap<usize, Value>,
    /// Why the sender stopped.
    ended: String,
}

/// Connects, subscribes to its own error queue, then SENDs `total` messages to
/// `room`, each with a distinct receipt and client_id, keeping up to [`WINDOW`]
/// unacknowledged. Stops when all are acknowledged or the connection fails.
async fn pipelined_sender(
    ws_url: String,
    token: String,
    room: i64,
    tag: &'static str,
    sender: usize,
    total: usize,
    acked_total: Arc<AtomicUsize>,
) -> Outcome {
    let mut out = Outcome {
        sender,
        ..Outcome::default()
    };
    let mut c = match StompClient::connect(&ws_url, &token).await {
        Ok(c) => c,
        Err(e) => {
            out.ended = format!("connect failed: {e:#}");
            return out;
        }
    };
    if let Err(e) = c.subscribe_sync("errors", "/user/queue/errors", &[]).await {
        out.ended = format!("subscribe to errors failed: {e:#}");
        return out;
    }
    let dest = format!("/app/rooms.{room}");
    let mut in_flight = 0usize;
    loop {
        while out.sent < total && in_flight < WINDOW {
            let i = out.sent;
            let body =
                json!({"text": text(tag, sender, i), "client_id": client_id(tag, sender, i)});
            if let Err(e) = c.send_json(&dest, &body, Some(&receipt(sender, i))).await {
                out.ended = format!("send failed: {e:#}");
                return out;
            }
            out.sent += 1;
            in_flight += 1;
        }
        if out.sent == total && in_flight == 0 {
            out.ended = "all acknowledged".into();
            return out;
        }
        let f = match c.recv_timeout(Duration::from_secs(10)).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                out.ended = "socket closed".into();
                return out;
            }
            Err(e) => {
                out.ended = format!("receive failed: {e:#}");
                return out;
            }
        };
        match f.command {
            Command::Receipt => {
                let id = f.header("receipt-id").unwrap_or_default();
                let Some(i) = receipt_index(sender, id) else {
                    out.ended = format!("unexpected receipt-id {id:?}");
                    return out;
                };
                in_flight = in_flight.saturating_sub(1);
                if !out.rejected.contains_key(&i) {
                    assert!(out.acked.insert(i), "receipt {id} arrived twice");
                    acked_total.fetch_add(1, Ordering::SeqCst);
                }
            }
            Command::Message => {
                // Only `/user/queue/errors` is subscribed: this is a rejection,
                // which ends its frame (contract v2: no RECEIPT follows).
                let body: Value = serde_json::from_slice(&f.body).unwrap_or(Value::Null);
                let i = body["receipt_id"]
                    .as_str()
                    .and_then(|r| receipt_index(sender, r));
                match i {
                    Some(i) => {
                        in_flight = in_flight.saturating_sub(1);
                        out.rejected.insert(i, body);
                    }
                    None => {
                        out.ended = format!("unexpected MESSAGE: {body}");
                        return out;
                    }
                }
            }
            Command::Error => {
                out.ended = format!(
                    "ERROR frame: {} {}",
                    f.header("message").unwrap_or_default(),
                    String::from_utf8_lossy(&f.body)
                );
                return out;
            }
            _ => {}
        }
    }
}

/// Signs up `n` users (the first creates a public room, the rest join it).
/// Returns the room id and each sender's (user id, token).
async fn room_with_senders(
    server: &ServerProcess,
    prefix: &str,
    n: usize,
) -> (i64, Vec<(i64, String)>) {
    let mut users = Vec::new();
    for s in 0..n {
        users.push(server.signup(&format!("{prefix}_{s}")).await);
    }
    let room = server
        .create_room(&users[0].1, &format!("{prefix} room"))
        .await;
    for (_, token) in &users[1..] {
        let (status, body) = server
            .post(
                &format!("/api/v1/rooms/{room}/join"),
                Some(token),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "join room {room}: {body}");
    }
    (room, users)
}

fn spawn_senders(
    server: &ServerProcess,
    room: i64,
    users: &[(i64, String)],
    tag: &'static str,
    per_sender: usize,
    acked_total: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<Outcome>> {
    users
        .iter()
        .enumerate()
        .map(|(s, (_, token))| {
            tokio::spawn(pipelined_sender(
                server.ws_url(),
                token.clone(),
                room,
                tag,
                s,
                per_sender,
                acked_total.clone(),
            ))
        })
        .collect()
}

/// Waits until `acked_total` reaches `target`; panics on timeout or if every
/// sender stopped first.
async fn wait_for_acks(acked_total: &AtomicUsize, target: usize, senders: &[JoinHandle<Outcome>]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_total.load(Ordering::SeqCst) < target {
        assert!(
            !senders.iter().all(|h| h.is_finished()),
            "every sender stopped before {target} receipts ({} acked)",
            acked_total.load(Ordering::SeqCst)
        );
        assert!(
            Instant::now() < deadline,
            "only {} of {target} receipts within 60 s",
            acked_total.load(Ordering::SeqCst)
        );
        // Polling a counter: the point is to act while the stream is mid-way.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn join_senders(senders: Vec<JoinHandle<Outcome>>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for h in senders {
        let o = tokio::time::timeout(Duration::from_secs(30), h)
            .await
            .expect("a sender did not stop within 30 s of the server stopping")
            .expect("sender task panicked");
        outcomes.push(o);
    }
    outcomes
}

/// Checks the stored history against what the senders saw; returns
/// (stored text messages, stored but never acknowledged).
fn check_history(
    tag: &str,
    history: &[Value],
    users: &[(i64, String)],
    outcomes: &[Outcome],
) -> (usize, usize) {
    let last_seq = assert_gapless(history);
    assert!(last_seq >= 1, "history is empty");

    // Every stored message of ours, by client_id; none twice.
    let mut stored: HashMap<String, &Value> = HashMap::new();
    for m in history {
        if m["kind"] != "text" {
            continue;
        }
        let Some(cid) = m["client_id"].as_str() else {
            panic!("a stored text message lost its client_id: {m}");
        };
        if let Some(prev) = stored.insert(cid.to_owned(), m) {
            panic!(
                "client_id {cid} stored twice: seq {} and seq {}",
                prev["seq"], m["seq"]
            );
        }
    }

    let mut unacked_stored = 0;
    for o in outcomes {
        let (user_id, _) = &users[o.sender];
        let mut last_seq_of_sender = 0;
        for i in 0..o.sent {
            let cid = client_id(tag, o.sender, i);
            match stored.get(&cid) {
                Some(m) => {
                    assert_eq!(
                        m["text"].as_str(),
                        Some(text(tag, o.sender, i).as_str()),
                        "text of {cid}: {m}"
                    );
                    assert_eq!(
                        m["sender"]["id"].as_i64(),
                        Some(*user_id),
                        "sender of {cid}: {m}"
                    );
                    let seq = m["seq"].as_i64().expect("seq checked above");
                    // One connection's messages are stored in the order it sent them.
                    assert!(
                        seq > last_seq_of_sender,
                        "sender {} message {i} stored at seq {seq}, before an earlier message at seq {last_seq_of_sender}",
                        o.sender
                    );
                    last_seq_of_sender = seq;
                    if !o.acked.contains(&i) {
                        unacked_stored += 1;
                    }
                }
                None => assert!(
                    !o.acked.contains(&i),
                    "message {cid} was acknowledged with a RECEIPT but is not stored \
                     (sender {} acked {} of {} sent)",
                    o.sender,
                    o.acked.len(),
                    o.sent
                ),
            }
        }
    }
    // Nothing stored that nobody sent.
    let sent_total: usize = outcomes.iter().map(|o| o.sent).sum();
    assert!(
        stored.len() <= sent_total,
        "{} stored > {sent_total} sent",
        stored.len()
    );
    for cid in stored.keys() {
        assert!(
            cid.starts_with(&format!("{tag}-")),
            "unknown client_id stored: {cid}"
        );
    }
    (stored.len(), unacked_stored)
}

fn describe(outcomes: &[Outcome]) -> String {
    outcomes
        .iter()
        .map(|o| {
            format!(
                "sender {}: sent {}, acked {}, rejected {} ({})",
                o.sender,
                o.sent,
                o.acked.len(),
                o.rejected.len(),
                o.ended
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// After the restart the room still takes messages, and the next one gets the
/// next seq: the counter was recovered from storage, not from memory.
async fn post_after_restart(server: &ServerProcess, token: &str, room: i64, last_seq: i64) {
    let mut c = StompClient::connect(&server.ws_url(), token)
        .await
        .expect("connect after restart");
    c.subscribe_sync("room", &format!("/topic/rooms.{room}"), &[])
        .await
        .expect("subscribe after restart");
    c.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "after restart", "client_id": "after-restart"}),
        Some("after-restart"),
    )
    .await
    .expect("send after restart");
    c.expect_receipt("after-restart")
        .await
        .expect("receipt after restart");
    let m = c
        .next_of_type("room", "message")
        .await
        .expect("own message after restart");
    assert_eq!(m["text"], "after restart", "{m}");
    assert_eq!(
        m["seq"].as_i64(),
        Some(last_seq + 1),
        "seq after restart: {m}"
    );
    let (status, room_view) = server
        .get(&format!("/api/v1/rooms/{room}"), Some(token))
        .await;
    assert_eq!(status, 200, "{room_view}");
    assert_eq!(
        room_view["last_seq"].as_i64(),
        Some(last_seq + 1),
        "room after restart: {room_view}"
    );
}

const CRASH_SENDERS: usize = 3;
const CRASH_PER_SENDER: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_mid_stream_keeps_every_acknowledged_message() {
    let dir = data_dir();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let (room, users) = room_with_senders(&server, "crash", CRASH_SENDERS).await;

    let acked_total = Arc::new(AtomicUsize::new(0));
    let senders = spawn_senders(
        &server,
        room,
        &users,
        "crash",
        CRASH_PER_SENDER,
        &acked_total,
    );
    let target = CRASH_SENDERS * CRASH_PER_SENDER / 2;
    wait_for_acks(&acked_total, target, &senders).await;
    server.kill9();
    let acked_at_kill = acked_total.load(Ordering::SeqCst);
    let outcomes = join_senders(senders).await;
    drop(server);

    let rejected: usize = outcomes.iter().map(|o| o.rejected.len()).sum();
    assert_eq!(
        rejected,
        0,
        "messages were rejected: {}",
        describe(&outcomes)
    );
    let sent: usize = outcomes.iter().map(|o| o.sent).sum();
    let acked: usize = outcomes.iter().map(|o| o.acked.len()).sum();
    assert!(
        sent < CRASH_SENDERS * CRASH_PER_SENDER,
        "the kill came after every message was sent: not a mid-stream crash ({})",
        describe(&outcomes)
    );

    let server = ServerProcess::start(dir.path(), &[]);
    let history = server.history(&users[0].1, room).await;
    let (stored, unacked_stored) = check_history("crash", &history, &users, &outcomes);
    let last_seq = history.len() as i64;
    eprintln!(
        "crash test: {sent} sent, {acked} acked ({acked_at_kill} when killed), {stored} stored \
         ({unacked_stored} stored without a receipt, {} sent but lost, never acked); \
         last_seq {last_seq}; {}",
        sent - stored,
        describe(&outcomes)
    );
    post_after_restart(&server, &users[0].1, room, last_seq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_flushes_and_exits_zero() {
    const SENDERS: usize = 2;
    const PER_SENDER: usize = 300;
    let dir = data_dir();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let (room, users) = room_with_senders(&server, "term", SENDERS).await;

    let acked_total = Arc::new(AtomicUsize::new(0));
    let senders = spawn_senders(&server, room, &users, "term", PER_SENDER, &acked_total);
    wait_for_acks(&acked_total, SENDERS * PER_SENDER / 3, &senders).await;
    let signalled_at = std::time::Instant::now();
    server.terminate();
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)));
    let took = signalled_at.elapsed();
    assert!(
        status.success(),
        "quicktalk exited with {status} after SIGTERM\n--- stderr ---\n{}",
        server.stderr()
    );
    let outcomes = join_senders(senders).await;
    drop(server);

    let rejected: usize = outcomes.iter().map(|o| o.rejected.len()).sum();
    let sent: usize = outcomes.iter().map(|o| o.sent).sum();
    let acked: usize = outcomes.iter().map(|o| o.acked.len()).sum();

    let server = ServerProcess::start(dir.path(), &[]);
    let history = server.history(&users[0].1, room).await;
    let (stored, unacked_stored) = check_history("term", &history, &users, &outcomes);
    let last_seq = history.len() as i64;
    eprintln!(
        "sigterm test: exited 0 after {took:?}; {sent} sent, {acked} acked, {rejected} rejected, \
         {stored} stored ({unacked_stored} without a receipt); last_seq {last_seq}; {}",
        describe(&outcomes)
    );
    post_after_restart(&server, &users[0].1, room, last_seq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_with_idle_clients_exits_zero_and_closes_them() {
    let dir = data_dir();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let (room, users) = room_with_senders(&server, "int", 2).await;
    let mut clients = Vec::new();
    for (_, token) in &users {
        let mut c = StompClient::connect(&server.ws_url(), token)
            .await
            .expect("connect");
        c.subscribe_sync("room", &format!("/topic/rooms.{room}"), &[])
            .await
            .expect("subscribe");
        clients.push(c);
    }
    server.signal("INT");
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)));
    assert!(
        status.success(),
        "quicktalk exited with {status} after SIGINT"
    );
    for mut c in clients {
        // Whatever was pending (presence, an ERROR saying we are shutting down),
        // then the close.
        let mut frames = 0;
        loop {
            match c.recv_timeout(Duration::from_secs(5)).await {
                Ok(Some(_)) if frames < 100 => frames += 1,
                Ok(Some(f)) => panic!("endless frames after SIGINT: {f:?}"),
                Ok(None) => break,
                Err(e) => {
                    let msg = format!("{e:#}");
                    assert!(
                        !msg.contains("no frame within"),
                        "socket open after exit: {msg}"
                    );
                    break;
                }
            }
        }
    }
    drop(server);
    // A clean stop leaves a data dir that starts again with the history intact.
    let server = ServerProcess::start(dir.path(), &[]);
    let history = server.history(&users[0].1, room).await;
    assert_eq!(assert_gapless(&history), 2, "two joins: {history:?}");
}
