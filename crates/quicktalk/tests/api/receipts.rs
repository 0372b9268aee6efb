//! Contract v2 §3: a RECEIPT means the frame took effect. A rejected frame gets
//! no RECEIPT; its error event carries `receipt_id`.

use serde_json::json;

use crate::helpers::{assert_no_receipt, next_error, say, spawn_app};

#[tokio::test]
async fn control_characters_in_message_text_are_rejected_without_a_receipt() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.create_room(&alice, "r", "public").await;
    let mut c = app.stomp_with_errors(&alice).await;
    let dest = format!("/app/rooms.{room}");
    for (i, text) in [
        "nul\u{0}byte",
        "escape\u{1b}[2J",
        "c1\u{85}in the middle",
        "del\u{7f}",
    ]
    .into_iter()
    .enumerate()
    {
        let r = format!("bad{i}");
        c.send_json(&dest, &json!({ "text": text }), Some(&r))
            .await
            .unwrap();
        let e = next_error(&mut c, "errs").await;
        assert_eq!(e["code"], "invalid_text", "{text:?}");
        assert_eq!(e["receipt_id"], r.as_str());
        assert_no_receipt(&mut c, &r).await;
    }
    let r = "bad-client-id";
    c.send_json(
        &dest,
        &json!({"text": "hi", "client_id": "a\u{0}"}),
        Some(r),
    )
    .await
    .unwrap();
    assert_eq!(
        next_error(&mut c, "errs").await["code"],
        "invalid_client_id"
    );
    assert_no_receipt(&mut c, r).await;
    // Newlines and tabs are text.
    say(&mut c, room, "line one\n\tline two").await;
    let history = app.history(&alice, room).await;
    let texts: Vec<_> = history.iter().filter(|m| m["kind"] == "text").collect();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0]["text"], "line one\n\tline two");
}

#[tokio::test]
async fn a_send_rejected_by_the_store_gets_no_receipt() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "private").await;
    let mut b = app.stomp_with_errors(&bob).await;
    // Not a member: decided in the storing transaction, after the pipeline.
    b.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "hi"}),
        Some("s1"),
    )
    .await
    .unwrap();
    let e = next_error(&mut b, "errs").await;
    assert_eq!(e["code"], "not_member");
    assert_eq!(e["receipt_id"], "s1");
    assert_no_receipt(&mut b, "s1").await;
}

#[tokio::test]
async fn a_forbidden_subscribe_gets_no_receipt() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.create_room(&alice, "r", "private").await;
    let mut b = app.stomp_with_errors(&bob).await;
    b.subscribe("x", &format!("/topic/rooms.{room}"), &[("receipt", "sub1")])
        .await
        .unwrap();
    let e = next_error(&mut b, "errs").await;
    assert_eq!(e["code"], "forbidden");
    assert_eq!(e["receipt_id"], "sub1");
    assert_no_receipt(&mut b, "sub1").await;
    // Unsupported commands too.
    b.send_text("BEGIN\ntransaction:t1\nreceipt:tx\n\n\0")
        .await
        .unwrap();
    let e = next_error(&mut b, "errs").await;
    assert_eq!(e["code"], "unsupported");
    assert_eq!(e["receipt_id"], "tx");
    assert_no_receipt(&mut b, "tx").await;
}
