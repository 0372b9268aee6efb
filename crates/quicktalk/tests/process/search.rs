//! Contract §9 against the real binary, on SQLite (embedded) and on PostgreSQL
//! (`QUICKTALK_TEST_POSTGRES_URL`, a schema of its own): what a REST post
//! stored is found by a Korean substring at once, still after SIGKILL and a
//! restart (the index is written in the message's transaction), and
//! `around_seq` opens a hit in context.

use serde_json::{json, Value};

use crate::harness::{data_dir, ServerProcess};

fn texts(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {v}"))
        .iter()
        .map(|r| r["message"]["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn search(s: &ServerProcess, token: &str, q: &str) -> Value {
    let q: String = url_encode(q);
    let (status, v) = s.get(&format!("/api/v1/search?q={q}"), Some(token)).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn survives_a_crash(extra: &[&str]) {
    let dir = data_dir();
    let mut s = ServerProcess::start(dir.path(), extra);
    let (_, token) = s.signup("searcher").await;
    let room = s.create_room(&token, "검색방").await;
    let mut want = Vec::new();
    for i in 0..30 {
        let text = if i % 3 == 0 {
            format!("{i}번째 사랑해요")
        } else {
            format!("{i}번째 다른 말 Hello")
        };
        let (status, v) = s
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                Some(&token),
                &json!({ "text": text }),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        if i % 3 == 0 {
            want.push(text);
        }
    }
    want.reverse();
    let before = search(&s, &token, "사랑").await;
    assert_eq!(texts(&before), want);
    assert_eq!(before["results"][0]["room"]["name"], "검색방");
    assert_eq!(texts(&search(&s, &token, "째 사랑해").await), want);
    assert_eq!(texts(&search(&s, &token, "hello").await).len(), 20);

    s.kill9();
    let s = ServerProcess::start(dir.path(), extra);
    let after = search(&s, &token, "사랑").await;
    assert_eq!(after, before);
    assert_eq!(texts(&search(&s, &token, "HELLO").await).len(), 20);

    let hit = &after["results"][3]["message"];
    let seq = hit["seq"].as_i64().unwrap();
    let (status, v) = s
        .get(
            &format!("/api/v1/rooms/{room}/messages?around_seq={seq}&limit=5"),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let seqs: Vec<i64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, ((seq - 2)..=(seq + 2)).collect::<Vec<_>>(), "{v}");
    assert_eq!(&v["messages"][2], hit);
    assert!(
        !s.stderr().contains("pg_trgm makes no trigrams"),
        "{}",
        s.stderr()
    );
}

#[tokio::test]
async fn search_survives_a_crash_on_sqlite() {
    survives_a_crash(&[]).await;
}

#[tokio::test]
async fn search_survives_a_crash_on_postgres() {
    let Some(schema) =
        crate::cluster_env::pg_schema("search on PostgreSQL (binary)", "psearch").await
    else {
        return;
    };
    survives_a_crash(&["--database-url", &schema.db_url]).await;
    schema.drop_schema().await;
}
