//! `search`: history search latency on a large store — QuickTalk only. R rooms
//! are filled with M messages of generated Korean chat (two-syllable nouns with
//! particles, fillers, `ㅋㅋ`, some English) through the real message path
//! (SENDs with receipts, several connections, a window in flight each); one
//! reader is a member of K of the rooms. Then the reader runs search queries one
//! at a time over REST (`GET /api/v1/search`, all their rooms, a page of 20):
//! queries of three or more characters (the trigram index) and of two (the
//! scan of the reader's rooms), drawn across the vocabulary so common and rare
//! words both count, plus words that occur nowhere (the scan's worst case).
//! Also: the index's size as a multiple of the stored text's. On PostgreSQL
//! the tables are `ANALYZE`d after the load (autovacuum would, a little later).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use quicktalk_stomp::{Command, Frame};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::stats::{new_hist, record_ns, Percentiles};
use crate::target::{self, Creds, Server};

#[derive(Debug, Clone)]
pub struct SearchParams {
    pub rooms: usize,
    pub messages: usize,
    /// Rooms the reader is a member of.
    pub member_rooms: usize,
    /// Queries of each kind (measured; a tenth more warm up first).
    pub queries: usize,
    pub connections: usize,
    pub window: usize,
}

#[derive(Debug, Clone)]
pub struct QueryStats {
    pub latency: Percentiles,
    /// The target percentile (ms), which [`Percentiles`] does not hold.
    pub p95: f64,
    /// Mean hits per query (a page holds at most 20).
    pub mean_hits: f64,
}

#[derive(Debug, Clone)]
pub struct SearchResult {
    pub params: SearchParams,
    pub backend: &'static str,
    pub load_secs: f64,
    pub load_errors: u64,
    pub long: QueryStats,
    pub short: QueryStats,
    /// Two-character words that occur nowhere: every message of the reader's
    /// rooms is read.
    pub short_absent: QueryStats,
    /// Bytes of the search index, and of the stored texts (UTF-8).
    pub index_bytes: Option<u64>,
    pub text_bytes: Option<u64>,
    pub size_note: Option<String>,
}

/// Two-syllable nouns, most frequent first (Zipf weights by rank).
const NOUNS: &[&str] = &[
    "오늘", "진짜", "사람", "친구", "회사", "점심", "저녁", "주말", "시간", "생각", "사랑", "회의",
    "학교", "커피", "날씨", "영화", "음악", "여행", "게임", "사진", "가족", "엄마", "아빠", "동생",
    "선물", "생일", "운동", "공부", "시험", "버스", "택시", "휴가", "월급", "출근", "퇴근", "야근",
    "카페", "식당", "치킨", "피자", "라면", "김치", "맥주", "소주", "노래", "뉴스", "정치", "경제",
    "축구", "야구", "농구", "서울", "부산", "제주", "한강", "바다", "산책", "쇼핑", "신발", "가방",
    "지갑", "전화", "문자", "메일", "숙제", "과제", "교수", "수업", "방학", "기차", "공항", "호텔",
    "병원", "약국", "감기", "두통", "의사", "간호", "은행", "대출", "이자", "주식", "코인", "부동",
    "아파", "이사", "청소", "빨래", "요리", "설거", "냉장", "세탁", "에어", "난방", "겨울", "여름",
    "가을", "봄비", "장마", "태풍", "눈사", "벚꽃", "단풍", "등산", "캠핑", "낚시", "수영", "요가",
    "헬스", "다이", "간식", "과자", "사탕", "초콜", "케이", "빵집", "떡볶", "순대", "김밥", "비빔",
    "냉면", "국밥", "찌개", "삼겹", "갈비", "불고", "회식", "동창", "모임", "약속", "데이", "소개",
];
const PARTICLES: &[&str] = &[
    "", "", "", "을", "를", "이", "가", "은", "는", "에서", "도", "이랑", "하고", "에",
];
const FILLERS: &[&str] = &[
    "했어요",
    "해요",
    "하자",
    "좋아",
    "싫어",
    "먹었어",
    "갈래?",
    "봤어",
    "ㅋㅋ",
    "ㅋㅋㅋ",
    "ㅎㅎ",
    "너무",
    "내일",
    "어제",
    "완전",
    "대박",
    "그래",
    "아니",
    "왜?",
    "언제?",
    "어디?",
    "ㅠㅠ",
    "😂",
    "👍",
];
const ENGLISH: &[&str] = &[
    "ok",
    "lol",
    "meeting",
    "coffee",
    "QuickTalk",
    "Seoul",
    "weekend",
    "game",
    "movie",
    "zoom",
    "deadline",
    "project",
    "lunch",
    "Netflix",
    "YouTube",
    "iPhone",
    "Galaxy",
    "KakaoTalk",
    "email",
    "PDF",
];

/// Draws a rank in `0..n` with weight 1/(rank+1) (Zipf, s = 1).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        let cumulative = (0..n)
            .map(|k| {
                acc += 1.0 / (k as f64 + 1.0);
                acc
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut StdRng) -> usize {
        let x = rng.gen::<f64>() * self.cumulative.last().copied().unwrap_or(1.0);
        self.cumulative.partition_point(|c| *c < x)
    }
}

/// The generated chat: 3–8 words, nouns with particles most of the time.
struct Talk {
    rng: StdRng,
    nouns: Zipf,
    english: Zipf,
}

impl Talk {
    fn new(seed: u64) -> Talk {
        Talk {
            rng: StdRng::seed_from_u64(seed),
            nouns: Zipf::new(NOUNS.len()),
            english: Zipf::new(ENGLISH.len()),
        }
    }

    fn message(&mut self) -> String {
        let words = self.rng.gen_range(3..=8);
        let mut out = String::with_capacity(64);
        for w in 0..words {
            if w > 0 {
                out.push(' ');
            }
            let roll = self.rng.gen_range(0..100);
            if roll < 60 {
                out.push_str(NOUNS[self.nouns.sample(&mut self.rng)]);
                out.push_str(PARTICLES[self.rng.gen_range(0..PARTICLES.len())]);
            } else if roll < 88 {
                out.push_str(FILLERS[self.rng.gen_range(0..FILLERS.len())]);
            } else {
                out.push_str(ENGLISH[self.english.sample(&mut self.rng)]);
            }
        }
        out
    }
}

/// `n` queries of three or more characters, spread evenly over the nouns'
/// ranks (noun + particle), English words (as typed in lower case) and
/// two-word phrases, with one in ten matching nothing.
fn long_queries(n: usize, rng: &mut StdRng) -> Vec<String> {
    (0..n)
        .map(|i| match i % 10 {
            0 => format!("없는단어{}", rng.gen_range(0..1000)),
            1 | 2 => ENGLISH
                .iter()
                .filter(|w| w.chars().count() >= 3)
                .nth(rng.gen_range(0..16))
                .unwrap()
                .to_lowercase(),
            3 => format!(
                "{} {}",
                NOUNS[rng.gen_range(0..NOUNS.len())],
                &FILLERS[rng.gen_range(0..3)][..3]
            ),
            _ => {
                let p = PARTICLES[3 + rng.gen_range(0..PARTICLES.len() - 3)];
                format!("{}{p}", NOUNS[rng.gen_range(0..NOUNS.len())])
            }
        })
        .collect()
}

/// `n` two-character queries: nouns across their ranks, and `ㅋㅋ`, `ok`, `ㅠㅠ`.
fn short_queries(n: usize, rng: &mut StdRng) -> Vec<String> {
    (0..n)
        .map(|i| match i % 10 {
            0 => ["ㅋㅋ", "ok", "ㅠㅠ"][rng.gen_range(0..3)].to_owned(),
            _ => NOUNS[rng.gen_range(0..NOUNS.len())].to_owned(),
        })
        .collect()
}

/// Two-syllable words in no message.
fn absent_queries(n: usize) -> Vec<String> {
    let syllables = ["뷁", "햏", "궯", "췕", "퓱", "뙇", "쀍", "휇"];
    (0..n)
        .map(|i| format!("{}{}", syllables[i % 8], syllables[(i / 8 + 3) % 8]))
        .collect()
}

pub async fn run(server: &Server, p: &SearchParams) -> anyhow::Result<SearchResult> {
    let conns = p.connections.clamp(1, p.rooms.max(1));
    // One owner per connection, each creating (and so a member of) its rooms.
    let mut owners = Vec::with_capacity(conns);
    for c in 0..conns {
        owners.push(server.guest(&format!("writer-{c}")).await?);
    }
    let mut rooms: Vec<Vec<u64>> = vec![Vec::new(); conns];
    let mut all_rooms = Vec::with_capacity(p.rooms);
    for r in 0..p.rooms {
        let c = r % conns;
        let v = server
            .post(
                "/api/v1/rooms",
                &owners[c],
                json!({"name": format!("방 {r}"), "visibility": "public"}),
            )
            .await?;
        let id = v["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("room without id: {v}"))?;
        rooms[c].push(id);
        all_rooms.push(id);
    }
    let reader = server.guest("reader").await?;
    let stride = (p.rooms / p.member_rooms.max(1)).max(1);
    for id in all_rooms.iter().step_by(stride).take(p.member_rooms) {
        server
            .post(&format!("/api/v1/rooms/{id}/join"), &reader, json!({}))
            .await?;
    }

    // Load.
    eprintln!(
        "#   search: storing {} messages in {} rooms…",
        p.messages, p.rooms
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, mine) in rooms.into_iter().enumerate() {
        let count = p.messages / conns + usize::from(c < p.messages % conns);
        let creds = Creds(vec![(
            "Authorization".into(),
            format!("Bearer {}", owners[c]),
        )]);
        let url = server.ws_urls[c % server.ws_urls.len()].clone();
        let window = p.window.max(1);
        tasks.push(tokio::spawn(async move {
            load(&url, &creds, &mine, count, window, c as u64).await
        }));
    }
    let mut load_errors = 0;
    for t in tasks {
        if let Err(e) = t.await? {
            load_errors += 1;
            eprintln!("#   search: a loader failed: {e:#}");
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "#   search: stored in {load_secs:.1} s ({:.0}/s)",
        p.messages as f64 / load_secs
    );

    // PostgreSQL plans by table statistics, which a bulk load leaves stale
    // until autovacuum's next round: bring them up to date, as it would.
    if let Some((url, schema)) = server.pg_schema() {
        let pool = sqlx::PgPool::connect(url).await?;
        for table in ["messages", "members", "rooms"] {
            sqlx::query(&format!("ANALYZE {schema}.{table}"))
                .execute(&pool)
                .await?;
        }
        pool.close().await;
    }
    let mut rng = StdRng::seed_from_u64(15);
    let warm = (p.queries / 10).max(1);
    let long = measure(
        server,
        &reader,
        &long_queries(p.queries + warm, &mut rng),
        warm,
    )
    .await?;
    let short = measure(
        server,
        &reader,
        &short_queries(p.queries + warm, &mut rng),
        warm,
    )
    .await?;
    let absent_n = (p.queries / 4).max(8);
    let short_absent = measure(server, &reader, &absent_queries(absent_n + 2), 2).await?;
    let (index_bytes, text_bytes, size_note) = match sizes(server).await {
        Ok((i, t)) => (Some(i), Some(t), None),
        Err(e) => (None, None, Some(format!("{e:#}"))),
    };
    Ok(SearchResult {
        params: p.clone(),
        backend: if server.pg_schema().is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        load_secs,
        load_errors,
        long,
        short,
        short_absent,
        index_bytes,
        text_bytes,
        size_note,
    })
}

/// Sends `count` messages round-robin over `rooms`, `window` receipts in flight.
async fn load(
    url: &str,
    creds: &Creds,
    rooms: &[u64],
    count: usize,
    window: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let mut c = target::connect(url, creds).await?;
    let dests: Vec<String> = rooms.iter().map(|r| format!("/app/rooms.{r}")).collect();
    let mut talk = Talk::new(seed);
    let (mut sent, mut acked) = (0usize, 0usize);
    while acked < count {
        while sent < count && sent - acked < window {
            let body = serde_json::to_vec(&json!({ "text": talk.message() }))?;
            let f = Frame::new(Command::Send)
                .with_header("destination", dests[sent % dests.len()].as_str())
                .with_header("content-type", "application/json")
                .with_header("receipt", sent.to_string())
                .with_body(body);
            c.send(&f).await?;
            sent += 1;
        }
        match c.recv_timeout(Duration::from_secs(30)).await? {
            Some(f) if f.command == Command::Receipt => acked += 1,
            Some(f) if f.command == Command::Error => {
                return Err(anyhow!("ERROR {}", f.header("message").unwrap_or_default()))
            }
            Some(_) => {}
            None => return Err(anyhow!("socket closed by the server")),
        }
    }
    let _ = c.close().await;
    Ok(())
}

/// Runs `queries` one after another; the first `warm` are not recorded.
async fn measure(
    server: &Server,
    token: &str,
    queries: &[String],
    warm: usize,
) -> anyhow::Result<QueryStats> {
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/search", server.http_base());
    let mut hist = new_hist();
    let (mut hits, mut measured) = (0usize, 0usize);
    for (i, q) in queries.iter().enumerate() {
        let t = Instant::now();
        let resp = http
            .get(&url)
            .query(&[("q", q.as_str())])
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        let took = t.elapsed();
        if !status.is_success() {
            return Err(anyhow!("search {q:?}: {status} {v}"));
        }
        if i >= warm {
            record_ns(&mut hist, took.as_nanos() as u64);
            hits += v["results"].as_array().map_or(0, Vec::len);
            measured += 1;
        }
    }
    Ok(QueryStats {
        latency: Percentiles::of(&hist),
        p95: if hist.is_empty() {
            0.0
        } else {
            hist.value_at_quantile(0.95) as f64 / 1_000.0
        },
        mean_hits: hits as f64 / measured.max(1) as f64,
    })
}

/// (index bytes, text bytes) of the server's store.
async fn sizes(server: &Server) -> anyhow::Result<(u64, u64)> {
    if let Some((url, schema)) = server.pg_schema() {
        let pool = sqlx::PgPool::connect(url).await?;
        let (index, text): (i64, i64) = sqlx::query_as(&format!(
            "SELECT pg_relation_size('{schema}.messages_search'), \
                    COALESCE(SUM(octet_length(text)), 0)::bigint \
             FROM {schema}.messages WHERE kind = 'text'"
        ))
        .fetch_one(&pool)
        .await?;
        pool.close().await;
        return Ok((index as u64, text as u64));
    }
    let dir = server
        .data_dir()
        .ok_or_else(|| anyhow!("no data directory"))?;
    sqlite_sizes(&dir.join("quicktalk.db"))
}

fn sqlite_sizes(db: &Path) -> anyhow::Result<(u64, u64)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", db.display()))?;
    let index: i64 = c.query_row(
        "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'message_search%'",
        [],
        |r| r.get(0),
    )?;
    let text: i64 = c.query_row(
        "SELECT COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0) FROM messages WHERE kind = 'text'",
        [],
        |r| r.get(0),
    )?;
    Ok((index as u64, text as u64))
}

/// The scenario's report (markdown).
pub fn report(r: &SearchResult, machine: &str, command: &str) -> String {
    let p = &r.params;
    let row = |name: &str, s: &QueryStats| {
        format!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
            s.latency.count, s.latency.p50, s.p95, s.latency.p99, s.latency.max, s.mean_hits
        )
    };
    let mut s = format!(
        "## Search on {} ({} messages, {} rooms, reader in {})\n\n`{command}`\n\n{machine}\n\n\
         Stored through the message path in {:.0} s ({:.0} messages/s, {} loader errors).\n\n\
         | queries | n | p50 ms | p95 ms | p99 ms | max ms | hits/query |\n|---|---:|---:|---:|---:|---:|---:|\n",
        r.backend,
        p.messages,
        p.rooms,
        p.member_rooms,
        r.load_secs,
        p.messages as f64 / r.load_secs,
        r.load_errors,
    );
    s.push_str(&row("3+ characters (trigram index)", &r.long));
    s.push_str(&row("2 characters (scan of the reader's rooms)", &r.short));
    s.push_str(&row(
        "2 characters, in no message (whole scan)",
        &r.short_absent,
    ));
    match (r.index_bytes, r.text_bytes) {
        (Some(i), Some(t)) if t > 0 => s.push_str(&format!(
            "\nIndex {:.1} MiB for {:.1} MiB of text: {:.2}× the text.\n",
            i as f64 / 1048576.0,
            t as f64 / 1048576.0,
            i as f64 / t as f64
        )),
        _ => s.push_str(&format!(
            "\nSizes not read: {}\n",
            r.size_note.as_deref().unwrap_or("no text")
        )),
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn queries_have_the_lengths_their_kind_says() {
        let mut rng = StdRng::seed_from_u64(1);
        for q in long_queries(200, &mut rng) {
            assert!(q.trim().chars().count() >= 3, "{q:?}");
        }
        for q in short_queries(200, &mut rng)
            .into_iter()
            .chain(absent_queries(50))
        {
            assert_eq!(q.chars().count(), 2, "{q:?}");
        }
    }

    #[test]
    fn absent_words_are_in_no_message() {
        let mut talk = Talk::new(3);
        let texts: Vec<String> = (0..20_000).map(|_| talk.message()).collect();
        for q in absent_queries(50) {
            assert!(!texts.iter().any(|t| t.contains(&q)), "{q}");
        }
        // And the common words are common.
        let common = texts.iter().filter(|t| t.contains("오늘")).count();
        assert!(common > 1000, "{common}");
    }

    #[test]
    fn zipf_prefers_low_ranks() {
        let z = Zipf::new(100);
        let mut rng = StdRng::seed_from_u64(2);
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for _ in 0..100_000 {
            *counts.entry(z.sample(&mut rng)).or_default() += 1;
        }
        assert!(counts[&0] > 10 * counts.get(&50).copied().unwrap_or(1));
        assert!(counts.keys().all(|k| *k < 100));
    }
}
