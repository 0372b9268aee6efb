//! Who may do what: one table of every REST route and STOMP destination against
//! each kind of caller, with the outcome the contract (and issue 10) expects.
//! Later features add their rows to [`rest_rows`] and [`stomp_rows`].
//!
//! Callers, fixed for the whole table:
//! - `anonymous`: no token (STOMP: CONNECT without credentials);
//! - `guest`: a guest with no relation to any room;
//! - `member`: a registered user who created the private room `P` and the public
//!   room `Q`;
//! - `non-member`: a registered user in no room;
//! - `ex-partner`: a guest whose random chat in room `R` has ended (their partner
//!   left with `match.disconnect`).

use std::time::Duration;

use quicktalk_client::stomp::Command;
use quicktalk_client::StompClient;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, TestUser};

const ACTORS: [&str; 5] = ["anonymous", "guest", "member", "non-member", "ex-partner"];

/// The rooms rows refer to as `{P}`, `{Q}`, `{R}`, `{L}` (a private room of the
/// member's that the leave row empties) and `{X}` (unknown, also as a user id),
/// the member's user id as `{M}`, and the ex-partner's message in `R` as `{RM}`.
struct Rooms {
    /// Files (issue 12): the member's, attached in `P` (`{PF}`), attached in
    /// `Q` (`{QF}`, an image) and attached nowhere (`{UF}`); the ex-partner's,
    /// attached in `R` (`{RF}`); the member's resumable upload (`{MU}`).
    files: [String; 5],
    /// The ex-partner's "hello" in the random room, `{RM}`.
    random_message: i64,
    /// The member's user id, `{M}` (for profile rows).
    member: i64,
    private: i64,
    to_leave: i64,
    public: i64,
    random: i64,
}

impl Rooms {
    fn fill(&self, s: &str) -> String {
        s.replace("{P}", &self.private.to_string())
            .replace("{Q}", &self.public.to_string())
            .replace("{R}", &self.random.to_string())
            .replace("{L}", &self.to_leave.to_string())
            .replace("{RM}", &self.random_message.to_string())
            .replace("{M}", &self.member.to_string())
            .replace("{PF}", &self.files[0])
            .replace("{QF}", &self.files[1])
            .replace("{UF}", &self.files[2])
            .replace("{RF}", &self.files[3])
            .replace("{MU}", &self.files[4])
            .replace("{XF}", "AAAAAAAAAAAAAAAAAAAAAA")
            .replace("{X}", "987654321")
    }
}

struct World {
    app: TestApp,
    rooms: Rooms,
    /// Index 0 (anonymous) has none.
    users: [Option<TestUser>; 5],
}

async fn world() -> World {
    let app = spawn_app_with(|c| {
        c.match_window_ms = 200;
        c.match_grace_ms = 300;
        c.match_next_interval_ms = 0;
    })
    .await;
    let guest = app.guest("손님").await;
    let member = app.signup("member").await;
    let outsider = app.signup("outsider").await;
    let private = app.create_room(&member, "비밀방", "private").await;
    let public = app.create_room(&member, "lobby", "public").await;
    let to_leave = app.create_room(&member, "to leave", "private").await;

    let pf = upload(&app, &member, b"private file".to_vec()).await;
    let qf = upload(&app, &member, crate::media::jpeg_with_gps(40, 30, 1)).await;
    let uf = upload(&app, &member, b"unattached".to_vec()).await;
    for (room, file) in [(private, &pf), (public, &qf)] {
        let (s, v) = app
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                &member.token,
                json!({"attachments": [file]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let res = app
        .http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&member.token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "100")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let mu = res.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Two guests chat in a random room; then the partner leaves.
    let ex = app.guest("ex").await;
    let rf = upload(&app, &ex, b"random file".to_vec()).await;
    let partner = app.guest("partner").await;
    let mut ce = events(&app, &ex).await;
    let mut cp = events(&app, &partner).await;
    ce.send_json("/app/match.connect", &json!({}), None)
        .await
        .unwrap();
    cp.send_json("/app/match.connect", &json!({}), None)
        .await
        .unwrap();
    let found = ce.next_of_type("ev", "match.found").await.unwrap();
    let random = found["room_id"].as_i64().unwrap();
    cp.next_of_type("ev", "match.found").await.unwrap();
    let receipt = "said";
    ce.send_json(
        &format!("/app/rooms.{random}"),
        &json!({"text": "hello", "attachments": [rf]}),
        Some(receipt),
    )
    .await
    .unwrap();
    ce.expect_receipt(receipt).await.unwrap();
    cp.send_json("/app/match.disconnect", &json!({}), None)
        .await
        .unwrap();
    let ended = ce.next_of_type("ev", "match.ended").await.unwrap();
    assert_eq!(ended["reason"], "partner_left");
    let (_, history) = app
        .get(&format!("/api/v1/rooms/{random}/messages"), &ex.token)
        .await;
    let random_message = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"] == "hello")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    World {
        app,
        rooms: Rooms {
            files: [pf, qf, uf, rf, mu],
            random_message,
            member: member.id,
            private,
            to_leave,
            public,
            random,
        },
        users: [None, Some(guest), Some(member), Some(outsider), Some(ex)],
    }
}

/// Uploads `bytes` as `u`; the media id.
async fn upload(app: &TestApp, u: &TestUser, bytes: Vec<u8>) -> String {
    let res = app
        .http
        .post(app.url("/api/v1/media?name=f.bin"))
        .bearer_auth(&u.token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn events(app: &TestApp, u: &TestUser) -> StompClient {
    let mut c = app.stomp(u).await;
    c.subscribe_sync("ev", "/user/queue/events", &[])
        .await
        .unwrap();
    c
}

/// One REST row: method, path (with room placeholders), body, and the status for
/// each caller in [`ACTORS`] order.
type RestRow = (Method, &'static str, Option<Value>, [u16; 5]);

#[rustfmt::skip]
fn rest_rows() -> Vec<RestRow> {
    use Method as M;
    let text = || Some(json!({"text": "hi"}));
    let report = Some(json!({"room_id": "{R}", "reason": "rude"}));
    let new_room = Some(json!({"name": "new room", "visibility": "public"}));
    let reason = Some(json!({"reason": "rude"}));
    let strict = Some(json!({"moderation": "strict"}));
    vec![
        (M::GET,  "/healthz",                       None,                   [200, 200, 200, 200, 200]),
        // Contract v2 §2: metrics are not on the public listener.
        (M::GET,  "/metrics",                       None,                   [404, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/me",                     None,                   [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/rooms",                  None,                   [401, 200, 200, 200, 200]),
        // Issue 10: any signed-in user may see a profile (the profile card).
        (M::GET,  "/api/v1/users/{M}",              None,                   [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/users/{X}",              None,                   [401, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/rooms/{P}",              None,                   [401, 403, 200, 403, 403]),
        (M::GET,  "/api/v1/rooms/{P}/messages",     None,                   [401, 403, 200, 403, 403]),
        (M::GET,  "/api/v1/rooms/{P}/members",      None,                   [401, 403, 200, 403, 403]),
        (M::POST, "/api/v1/rooms/{P}/messages",     text(),                 [401, 403, 201, 403, 403]),
        (M::POST, "/api/v1/rooms/{P}/read",         Some(json!({"seq": 0})), [401, 403, 200, 403, 403]),
        (M::POST, "/api/v1/rooms/{P}/join",         None,                   [401, 403, 200, 403, 403]),
        // Leaving a private room one is not in reveals nothing and changes nothing.
        (M::POST, "/api/v1/rooms/{L}/leave",        None,                   [401, 403, 200, 403, 403]),
        (M::GET,  "/api/v1/rooms/{Q}",              None,                   [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/rooms/{Q}/messages",     None,                   [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/rooms/{Q}/members",      None,                   [401, 200, 200, 200, 200]),
        (M::POST, "/api/v1/rooms/{Q}/messages",     text(),                 [401, 403, 201, 403, 403]),
        // An ended random chat stays readable by its partners, and nobody may post.
        (M::GET,  "/api/v1/rooms/{R}",              None,                   [401, 403, 403, 403, 200]),
        (M::GET,  "/api/v1/rooms/{R}/messages",     None,                   [401, 403, 403, 403, 200]),
        (M::POST, "/api/v1/rooms/{R}/messages",     text(),                 [401, 403, 403, 403, 403]),
        // The ex-partner still belongs to the room (to read it): joining is a no-op.
        (M::POST, "/api/v1/rooms/{R}/join",         None,                   [401, 403, 403, 403, 200]),
        (M::GET,  "/api/v1/rooms/{X}",              None,                   [401, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/rooms/{X}/messages",     None,                   [401, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/match",                  None,                   [401, 200, 200, 200, 200]),
        // The former partner may still report; nobody else may report that room.
        (M::POST, "/api/v1/match/report",           report,                 [401, 403, 403, 403, 201]),
        (M::POST, "/api/v1/rooms",                  new_room,               [401, 201, 201, 201, 201]),
        // Issue 11: reports of one message — readers only (the author: 400 own_message).
        (M::POST, "/api/v1/messages/{RM}/report",   reason.clone(),         [401, 404, 404, 404, 400]),
        (M::POST, "/api/v1/messages/{X}/report",    reason,                 [401, 404, 404, 404, 404]),
        // A room's moderation policy: its creator (or a moderator); never a random chat's.
        (M::PATCH, "/api/v1/rooms/{Q}",             strict.clone(),         [401, 403, 200, 403, 403]),
        (M::PATCH, "/api/v1/rooms/{P}",             strict.clone(),         [401, 403, 200, 403, 403]),
        (M::PATCH, "/api/v1/rooms/{R}",             strict.clone(),         [401, 403, 403, 403, 403]),
        (M::PATCH, "/api/v1/rooms/{X}",             strict,                 [401, 404, 404, 404, 404]),
        // Moderators' routes: nobody here is one.
        (M::GET,  "/api/v1/admin/queue",            None,                   [401, 403, 403, 403, 403]),
        (M::POST, "/api/v1/admin/queue/{X}/resolve", Some(json!({})),       [401, 403, 403, 403, 403]),
        (M::POST, "/api/v1/admin/users/{M}/ban",    Some(json!({"reason": "x"})), [401, 403, 403, 403, 403]),
        (M::DELETE, "/api/v1/admin/users/{M}/ban",  None,                   [401, 403, 403, 403, 403]),
        (M::GET,  "/api/v1/admin/bans",             None,                   [401, 403, 403, 403, 403]),
        (M::DELETE, "/api/v1/admin/messages/{RM}",  None,                   [401, 403, 403, 403, 403]),
        // Issue 12: files. The uploader, and readers of a room with a message
        // carrying the file; everyone else 404 (as if it did not exist).
        (M::GET,  "/api/v1/media/{PF}",             None,                   [401, 404, 200, 404, 404]),
        (M::GET,  "/api/v1/media/{PF}/info",        None,                   [401, 404, 200, 404, 404]),
        (M::GET,  "/api/v1/media/{QF}",             None,                   [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/media/{QF}/thumbnail",   None,                   [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/media/{UF}",             None,                   [401, 404, 200, 404, 404]),
        (M::GET,  "/api/v1/media/{RF}",             None,                   [401, 404, 404, 404, 200]),
        (M::GET,  "/api/v1/media/{RF}/info",        None,                   [401, 404, 404, 404, 200]),
        (M::GET,  "/api/v1/media/{XF}",             None,                   [401, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/media/{X}",              None,                   [401, 404, 404, 404, 404]),
        // Signing answers everyone signed in, with only what they may read.
        (M::POST, "/api/v1/media/sign",             Some(json!({"ids": ["{PF}"]})), [401, 200, 200, 200, 200]),
        (M::POST, "/api/v1/media",                  Some(json!({"a": 1})),  [401, 201, 201, 201, 201]),
        // A resumable upload exists for its uploader only.
        (M::HEAD, "/api/v1/uploads/{MU}",           None,                   [401, 404, 200, 404, 404]),
        (M::HEAD, "/api/v1/uploads/{XF}",           None,                   [401, 404, 404, 404, 404]),
        // Issue 13 (contract §7): profiles, the guest upgrade, friends, blocks, direct rooms.
        (M::PATCH, "/api/v1/me",                    Some(json!({"status_message": "hi"})), [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/users/by-username/member", None,                 [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/users/by-username/nobody", None,                 [401, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/avatars/{XF}",           None,                   [401, 404, 404, 404, 404]),
        // Guests only (a registered user: 409); a bad username changes nothing.
        (M::POST, "/api/v1/auth/upgrade",           Some(json!({"username": "x", "password": "y"})), [401, 400, 409, 409, 400]),
        // Friends are for registered users.
        (M::GET,  "/api/v1/friends",                None,                   [401, 403, 200, 200, 403]),
        (M::GET,  "/api/v1/friends/requests",       None,                   [401, 403, 200, 200, 403]),
        (M::POST, "/api/v1/friends/requests",       Some(json!({"user_id": "{M}"})), [401, 403, 400, 201, 403]),
        (M::POST, "/api/v1/friends/requests/{X}/accept", None,              [401, 403, 404, 404, 403]),
        (M::POST, "/api/v1/friends/requests/{X}/decline", None,             [401, 403, 404, 404, 403]),
        (M::DELETE, "/api/v1/friends/requests/{X}", None,                   [401, 403, 404, 404, 403]),
        (M::DELETE, "/api/v1/friends/{X}",          None,                   [401, 403, 404, 404, 403]),
        (M::GET,  "/api/v1/blocks",                 None,                   [401, 200, 200, 200, 200]),
        (M::POST, "/api/v1/blocks",                 Some(json!({"user_id": "{X}"})), [401, 404, 404, 404, 404]),
        (M::DELETE, "/api/v1/blocks/{X}",           None,                   [401, 204, 204, 204, 204]),
        (M::POST, "/api/v1/direct",                 Some(json!({"user_id": "{X}"})), [401, 404, 404, 404, 404]),
        // Anyone signed in may open a direct room (not with themselves).
        (M::POST, "/api/v1/direct",                 Some(json!({"user_id": "{M}"})), [401, 201, 400, 201, 201]),
        // Issue 14 (contract §8): push. The key is public; an endpoint on an
        // address is refused for anyone signed in; levels are members' only.
        (M::GET,  "/api/v1/push/key",               None,                   [200, 200, 200, 200, 200]),
        (M::POST, "/api/v1/push/subscriptions",     Some(json!({"endpoint": "https://127.0.0.1/p", "keys": {"p256dh": "x", "auth": "y"}})), [401, 400, 400, 400, 400]),
        (M::DELETE, "/api/v1/push/subscriptions",   Some(json!({"endpoint": "https://fcm.googleapis.com/fcm/send/none"})), [401, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/rooms/{P}/notifications", None,                  [401, 403, 200, 403, 403]),
        (M::PUT,  "/api/v1/rooms/{P}/notifications", Some(json!({"level": "none"})), [401, 403, 200, 403, 403]),
        (M::GET,  "/api/v1/rooms/{R}/notifications", None,                  [401, 403, 403, 403, 200]),
        (M::GET,  "/api/v1/rooms/{X}/notifications", None,                  [401, 404, 404, 404, 404]),
        // Issue 15 (contract §9): search over one's rooms, or one readable room.
        (M::GET,  "/api/v1/search?q=abc",           None,                   [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/search?q=abc&room_id={P}", None,                 [401, 403, 200, 403, 403]),
        (M::GET,  "/api/v1/search?q=abc&room_id={Q}", None,                 [401, 200, 200, 200, 200]),
        (M::GET,  "/api/v1/search?q=abc&room_id={R}", None,                 [401, 403, 403, 403, 200]),
        (M::GET,  "/api/v1/search?q=abc&room_id={X}", None,                 [401, 404, 404, 404, 404]),
        (M::GET,  "/api/v1/rooms/{P}/messages?around_seq=1", None,          [401, 403, 200, 403, 403]),
        (M::GET,  "/api/v1/rooms/{R}/messages?around_seq=1", None,          [401, 403, 403, 403, 200]),
        (M::GET,  "/api/v1/rooms/{X}/messages?around_seq=1", None,          [401, 404, 404, 404, 404]),
    ]
}

/// What a STOMP frame with a `receipt` header leads to (contract v2 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// CONNECT refused: ERROR `unauthorized`, socket closed.
    Unauthorized,
    /// RECEIPT, no error event.
    Ok,
    /// An error event with this code and the frame's `receipt_id`; no RECEIPT.
    Err(&'static str),
}

/// One STOMP row: command, destination, body, outcome per caller.
type StompRow = (Command, &'static str, Option<Value>, [Outcome; 5]);

#[rustfmt::skip]
fn stomp_rows() -> Vec<StompRow> {
    use Command::{Send, Subscribe};
    use Outcome::{Err, Ok, Unauthorized as U};
    let text = || Some(json!({"text": "hi"}));
    let typing = || Some(json!({}));
    let denied = Err("forbidden");
    let not_member = Err("not_member");
    let unknown = Err("not_found");
    let nowhere = Err("unknown_destination");
    vec![
        (Subscribe, "/user/queue/events",     None,     [U, Ok, Ok, Ok, Ok]),
        (Subscribe, "/topic/rooms.{P}",       None,     [U, denied, Ok, denied, denied]),
        (Subscribe, "/topic/rooms.{Q}",       None,     [U, Ok, Ok, Ok, Ok]),
        (Subscribe, "/topic/rooms.{R}",       None,     [U, denied, denied, denied, Ok]),
        (Subscribe, "/topic/rooms.{X}",       None,     [U, unknown, unknown, unknown, unknown]),
        (Send,      "/app/rooms.{P}",         text(),   [U, not_member, Ok, not_member, not_member]),
        (Send,      "/app/rooms.{Q}",         text(),   [U, not_member, Ok, not_member, not_member]),
        (Send,      "/app/rooms.{R}",         text(),   [U, not_member, not_member, not_member, Err("match_ended")]),
        (Send,      "/app/rooms.{P}.typing",  typing(), [U, not_member, Ok, not_member, not_member]),
        (Send,      "/app/rooms.{R}.typing",  typing(), [U, not_member, not_member, not_member, Err("match_ended")]),
        (Send,      "/app/nowhere",           typing(), [U, nowhere, nowhere, nowhere, nowhere]),
        (Send,      "/app/activity",          Some(json!({"focused": true})), [U, Ok, Ok, Ok, Ok]),
        (Send,      "/app/activity",          typing(), [U, Err("invalid_json"), Err("invalid_json"), Err("invalid_json"), Err("invalid_json")]),
    ]
}

async fn rest_outcome(w: &World, actor: usize, row: &RestRow) -> u16 {
    let (method, path, body, _) = row;
    let body = body
        .as_ref()
        .map(|b| serde_json::from_str(&w.rooms.fill(&b.to_string())).unwrap())
        .map(|mut b: Value| {
            // A room id placeholder inside a JSON body is a number.
            for key in ["room_id", "user_id"] {
                if let Some(r) = b.get(key).and_then(|r| r.as_str()) {
                    b[key] = json!(r.parse::<i64>().unwrap());
                }
            }
            b
        });
    let token = w.users[actor].as_ref().map(|u| u.token.as_str());
    // Not through `TestApp::request`: file downloads are not JSON.
    let mut req = w
        .app
        .http
        .request(method.clone(), w.app.url(&w.rooms.fill(path)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request sent").status().as_u16()
}

async fn stomp_outcome(w: &World, actor: usize, n: usize, row: &StompRow) -> Outcome {
    let (command, dest, body, _) = row;
    let Some(user) = &w.users[actor] else {
        let (mut c, first) = StompClient::connect_with(&w.app.ws_url(), &[])
            .await
            .unwrap();
        assert_eq!(first.command, Command::Error);
        assert_eq!(first.header("message"), Some("unauthorized"));
        assert!(c.recv().await.unwrap().is_none(), "socket closes");
        return Outcome::Unauthorized;
    };
    let mut c = w.app.stomp(user).await;
    c.subscribe_sync("err", "/user/queue/errors", &[])
        .await
        .unwrap();
    let receipt = format!("row-{n}");
    let dest = w.rooms.fill(dest);
    match command {
        Command::Subscribe => c.subscribe("s", &dest, &[("receipt", &receipt)]).await,
        _ => {
            c.send_json(&dest, body.as_ref().unwrap(), Some(&receipt))
                .await
        }
    }
    .unwrap();
    let f = c
        .recv_until(Duration::from_secs(5), |f| {
            f.command == Command::Receipt && f.header("receipt-id") == Some(&receipt)
                || f.command == Command::Message && f.header("subscription") == Some("err")
        })
        .await
        .unwrap_or_else(|e| panic!("no outcome for {dest}: {e}"));
    let outcome = if f.command == Command::Receipt {
        Outcome::Ok
    } else {
        let v: Value = serde_json::from_slice(&f.body).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(
            v["receipt_id"],
            receipt.as_str(),
            "error event carries the receipt: {v}"
        );
        Outcome::Err(leak(v["code"].as_str().unwrap_or("<no code>")))
    };
    if let Outcome::Err(_) = outcome {
        // Contract v2: a rejected frame gets no RECEIPT.
        let late = c
            .recv_until(Duration::from_millis(300), |f| {
                f.command == Command::Receipt && f.header("receipt-id") == Some(&receipt)
            })
            .await;
        assert!(late.is_err(), "{dest}: RECEIPT after a rejection");
    }
    c.close().await.ok();
    outcome
}

/// Codes come from the server as strings; the table compares `&'static str`s.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let w = world().await;
    let mut wrong = Vec::new();
    for row in rest_rows() {
        for (actor, name) in ACTORS.iter().enumerate() {
            let got = rest_outcome(&w, actor, &row).await;
            if got != row.3[actor] {
                wrong.push(format!(
                    "{} {} as {name}: expected {}, got {got}",
                    row.0, row.1, row.3[actor]
                ));
            }
        }
    }
    for (n, row) in stomp_rows().into_iter().enumerate() {
        for (actor, name) in ACTORS.iter().enumerate() {
            let got = stomp_outcome(&w, actor, n, &row).await;
            if got != row.3[actor] {
                wrong.push(format!(
                    "{:?} {} as {name}: expected {:?}, got {got:?}",
                    row.0, row.1, row.3[actor]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "authorization matrix mismatches:\n{}",
        wrong.join("\n")
    );
}

/// The rows above must not all pass vacuously: a token for another user's private
/// room really is refused, and the member really gets in.
#[tokio::test]
async fn matrix_world_is_what_it_claims() {
    let w = world().await;
    let member = w.users[2].as_ref().unwrap();
    let (s, _) = w
        .app
        .get(
            &format!("/api/v1/rooms/{}/members", w.rooms.private),
            &member.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ex = w.users[4].as_ref().unwrap();
    let history = w.app.history(ex, w.rooms.random).await;
    assert!(history.iter().any(|m| m["text"] == "hello"), "{history:?}");
}
