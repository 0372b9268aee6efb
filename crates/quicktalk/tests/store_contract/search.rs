//! Contract §9 on every backend: history search. One corpus table (Korean
//! particles, two-syllable words, jamo, mixed scripts, emoji, case), scope,
//! blocks, tombstones, paging, and a property test against the reference
//! [`matches`] over random corpora.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use quicktalk::model::{Appended, MessageId, RoomId, UserRef, Visibility};
use quicktalk::store::search::{fold, matches, SearchPage, SearchQuery, SearchScope};
use unicode_normalization::UnicodeNormalization;

use crate::contract::{join, room, text, user, S};

async fn post(s: &S, room: RoomId, who: &UserRef, t: &str) -> MessageId {
    match s.append(vec![text(room, who, t)]).await.unwrap().remove(0) {
        Ok(Appended::New(m)) => m.id,
        other => panic!("post {t:?}: {other:?}"),
    }
}

fn q(
    user: &UserRef,
    text: &str,
    scope: SearchScope,
    before: Option<MessageId>,
    limit: usize,
) -> SearchQuery {
    SearchQuery {
        text: fold(text).into_owned(),
        user: user.id,
        scope,
        before,
        limit,
    }
}

async fn texts(s: &S, query: SearchQuery) -> Vec<String> {
    let page = s.search(query).await.unwrap();
    page.hits.into_iter().map(|h| h.message.text).collect()
}

/// Every page of a query, followed by its cursor (the last hit's id).
async fn all_pages(s: &S, mut query: SearchQuery) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let SearchPage { hits, more } = s.search(query.clone()).await.unwrap();
        assert!(hits.len() <= query.limit);
        ids.extend(hits.iter().map(|h| h.message.id));
        if !more {
            return ids;
        }
        assert_eq!(hits.len(), query.limit, "a page with more after it is full");
        query.before = hits.last().map(|h| h.message.id);
    }
    panic!("paging does not end");
}

const CORPUS: &[&str] = &[
    "사랑",
    "사랑을 해요",
    "너를 사랑해요",
    "우리가 사랑했던 날들",
    "사람이 많다",
    "ㅋㅋㅋ 웃겨",
    "ㅋㅋ",
    "점심 뭐 먹지?",
    "오늘 점심은 김치찌개",
    "QuickTalk 서버 좋아요",
    "quicktalk는 빠르다",
    "Hello World 😀",
    "😀😀 웃음",
    "카페에서 coffee 마셔요",
    "COFFEE time",
    "100% 확실해",
    "a_b 밑줄",
    "say \"hi\" now",
    "ÉCOLE été",
];

/// The corpus table: each query and the texts it finds, newest first. Short
/// (one and two characters) and long queries both, so both paths of each
/// backend answer it.
pub async fn korean_corpus_is_searched_by_substring(s: S) {
    let a = user(&s, "alice").await;
    let r = room(&s, &a, Visibility::Public).await;
    join(&s, r, &a).await;
    // One message stored decomposed (NFD), as some keyboards send it.
    let nfd: String = "한국어 검색".nfd().collect();
    assert_ne!(nfd, "한국어 검색");
    for t in CORPUS {
        post(&s, r, &a, t).await;
    }
    post(&s, r, &a, &nfd).await;
    let table: &[(&str, &[&str])] = &[
        // Particles and endings attached to the word: a substring finds them.
        (
            "사랑",
            &[
                "우리가 사랑했던 날들",
                "너를 사랑해요",
                "사랑을 해요",
                "사랑",
            ],
        ),
        ("사랑해", &["너를 사랑해요"]),
        ("사랑을", &["사랑을 해요"]),
        (
            "랑",
            &[
                "우리가 사랑했던 날들",
                "너를 사랑해요",
                "사랑을 해요",
                "사랑",
            ],
        ),
        (
            "사",
            &[
                "사람이 많다",
                "우리가 사랑했던 날들",
                "너를 사랑해요",
                "사랑을 해요",
                "사랑",
            ],
        ),
        // Two-syllable words inside longer words.
        ("점심", &["오늘 점심은 김치찌개", "점심 뭐 먹지?"]),
        ("찌개", &["오늘 점심은 김치찌개"]),
        ("김치찌개", &["오늘 점심은 김치찌개"]),
        // Bare jamo.
        ("ㅋㅋ", &["ㅋㅋ", "ㅋㅋㅋ 웃겨"]),
        ("ㅋㅋㅋ", &["ㅋㅋㅋ 웃겨"]),
        // Mixed Hangul and Latin, case-insensitive.
        (
            "quicktalk",
            &["quicktalk는 빠르다", "QuickTalk 서버 좋아요"],
        ),
        ("QUICKTALK 서버", &["QuickTalk 서버 좋아요"]),
        ("k는", &["quicktalk는 빠르다"]),
        ("Coffee", &["COFFEE time", "카페에서 coffee 마셔요"]),
        ("ee t", &["COFFEE time"]),
        ("école", &["ÉCOLE été"]),
        ("ÉTÉ", &["ÉCOLE été"]),
        // Emoji.
        ("😀", &["😀😀 웃음", "Hello World 😀"]),
        ("😀😀", &["😀😀 웃음"]),
        ("d 😀", &["Hello World 😀"]),
        // Characters special to LIKE or FTS5 are plain text.
        ("0%", &["100% 확실해"]),
        ("%", &["100% 확실해"]),
        ("a_b", &["a_b 밑줄"]),
        ("_", &["a_b 밑줄"]),
        ("\"hi\"", &["say \"hi\" now"]),
        ("\"", &["say \"hi\" now"]),
        // A decomposed message is found by a composed query, and the reverse.
        ("한국어", &[nfd.as_str()]),
        ("국어", &[nfd.as_str()]),
        // Nothing.
        ("사랑해요요", &[]),
        ("없음", &[]),
        ("zz", &[]),
    ];
    let decomposed_query: String = "한국어".nfd().collect();
    for (query, want) in table.iter().copied().chain(std::iter::once((
        decomposed_query.as_str(),
        &[nfd.as_str()][..],
    ))) {
        let got = texts(&s, q(&a, query, SearchScope::Member, None, 50)).await;
        assert_eq!(got, want.to_vec(), "query {query:?}");
        let same_in_room = texts(&s, q(&a, query, SearchScope::Room(r), None, 50)).await;
        assert_eq!(same_in_room, got, "query {query:?} in the room");
        // The table agrees with the reference definition.
        let reference: Vec<&str> = CORPUS
            .iter()
            .copied()
            .chain(std::iter::once(nfd.as_str()))
            .rev()
            .filter(|t| matches(t, &fold(query)))
            .collect();
        assert_eq!(got, reference, "query {query:?} against the reference");
    }
}

/// Member scope is the caller's rooms now; one room is that room; blocked
/// senders, tombstones and non-text messages are never found; each hit names
/// its room.
pub async fn search_is_scoped_and_leaves_out_blocked_and_deleted(s: S) {
    let a = user(&s, "alice").await;
    let b = user(&s, "bob").await;
    let c = user(&s, "carol").await;
    let r1 = room(&s, &a, Visibility::Public).await;
    let r2 = room(&s, &a, Visibility::Private).await;
    let r3 = room(&s, &b, Visibility::Public).await;
    for (r, who) in [(r1, &a), (r1, &b), (r1, &c), (r2, &a), (r3, &b)] {
        join(&s, r, who).await;
    }
    let m1 = post(&s, r1, &b, "bob 안녕 in r1").await;
    let m2 = post(&s, r1, &c, "carol 안녕 in r1").await;
    let m3 = post(&s, r2, &a, "alice 안녕 in r2").await;
    let m4 = post(&s, r3, &b, "bob 안녕 in r3").await;

    for query in ["안녕", "안녕 in"] {
        let ids = |p: SearchPage| p.hits.iter().map(|h| h.message.id).collect::<Vec<_>>();
        let mine = s
            .search(q(&a, query, SearchScope::Member, None, 10))
            .await
            .unwrap();
        assert_eq!(ids(mine.clone()), vec![m3, m2, m1], "{query}");
        assert!(!mine.more);
        assert_eq!(mine.hits[0].room_name, "room");
        assert_eq!(mine.hits[0].message.room_id, r2);
        assert_eq!(mine.hits[0].message.sender.id, a.id);
        // One room (whether the caller may read it is the domain's check).
        let one = s
            .search(q(&a, query, SearchScope::Room(r3), None, 10))
            .await
            .unwrap();
        assert_eq!(ids(one), vec![m4], "{query}");
        let bobs = s
            .search(q(&b, query, SearchScope::Member, None, 10))
            .await
            .unwrap();
        assert_eq!(ids(bobs), vec![m4, m2, m1], "{query}");
    }

    // Blocking hides the blocked sender's messages from the blocker only.
    assert!(s.block_user(a.id, c.id, 1).await.unwrap());
    for query in ["안녕", "carol 안녕"] {
        let got = texts(&s, q(&a, query, SearchScope::Member, None, 10)).await;
        assert!(
            !got.iter().any(|t| t.starts_with("carol")),
            "{query}: {got:?}"
        );
        let got = texts(&s, q(&a, query, SearchScope::Room(r1), None, 10)).await;
        assert!(
            !got.iter().any(|t| t.starts_with("carol")),
            "{query}: {got:?}"
        );
        let got = texts(&s, q(&b, query, SearchScope::Member, None, 10)).await;
        assert!(
            got.iter().any(|t| t.starts_with("carol")),
            "{query}: {got:?}"
        );
    }
    assert!(s.unblock_user(a.id, c.id).await.unwrap());
    assert_eq!(
        texts(&s, q(&a, "carol", SearchScope::Member, None, 10))
            .await
            .len(),
        1
    );

    // A deleted message is gone from search at once.
    s.delete_message(m2).await.unwrap();
    for query in ["안녕", "carol", "ca"] {
        let got = texts(&s, q(&a, query, SearchScope::Member, None, 10)).await;
        assert!(
            !got.iter().any(|t| t.starts_with("carol")),
            "{query}: {got:?}"
        );
    }

    // Leaving a room leaves its messages out of the member scope.
    s.append(vec![crate::contract::msg(
        r2,
        &a,
        quicktalk::model::MessageKind::Leave,
        "",
        None,
    )])
    .await
    .unwrap();
    assert_eq!(
        texts(&s, q(&a, "안녕", SearchScope::Member, None, 10)).await,
        vec!["bob 안녕 in r1"]
    );

    // A search is answered as of now: what was just stored is found.
    let m5 = post(&s, r1, &b, "방금 보낸 메시지").await;
    for query in ["방금", "방금 보낸"] {
        let page = s
            .search(q(&a, query, SearchScope::Member, None, 10))
            .await
            .unwrap();
        assert_eq!(page.hits[0].message.id, m5, "{query}");
    }
}

/// Pages are newest first, `limit` long, `more` exactly when hits remain, and
/// the cursor (the last id) resumes without gaps or repeats, on both paths,
/// however old the hits are.
pub async fn search_pages_by_cursor(s: S) {
    let a = user(&s, "alice").await;
    let r1 = room(&s, &a, Visibility::Public).await;
    let r2 = room(&s, &a, Visibility::Public).await;
    join(&s, r1, &a).await;
    join(&s, r2, &a).await;
    let mut want = Vec::new();
    for i in 0..25 {
        let r = if i % 3 == 0 { r2 } else { r1 };
        want.push(post(&s, r, &a, &format!("검색어 {i}")).await);
        post(&s, r, &a, "다른 말").await;
    }
    // The oldest hit is followed by many messages that do not match.
    for _ in 0..40 {
        post(&s, r1, &a, "잡담").await;
    }
    want.reverse();
    for query in ["검색", "검색어", "색어 1"] {
        let expect: Vec<MessageId> = (0..25)
            .rev()
            .filter(|i| format!("검색어 {i}").contains(query))
            .map(|i| want[24 - i])
            .collect();
        for limit in [1, 7, 10, 25, 50] {
            let got = all_pages(&s, q(&a, query, SearchScope::Member, None, limit)).await;
            assert_eq!(got, expect, "{query} limit {limit}");
        }
        // A page that holds exactly the rest says there is no more.
        let n = expect.len();
        let page = s
            .search(q(&a, query, SearchScope::Member, None, n))
            .await
            .unwrap();
        assert_eq!((page.hits.len(), page.more), (n, false), "{query}");
        // In one room.
        let in_r2 = all_pages(&s, q(&a, query, SearchScope::Room(r2), None, 3)).await;
        let r2_ids: Vec<MessageId> = (0..25)
            .rev()
            .filter(|i| i % 3 == 0 && format!("검색어 {i}").contains(query))
            .map(|i| want[24 - i])
            .collect();
        assert_eq!(in_r2, r2_ids, "{query} in r2");
    }
}

/// Random corpora over a small alphabet (Hangul syllables, jamo, Latin of
/// both cases, a composed and a decomposed accent, emoji, space): every query's
/// pages, concatenated, are exactly the messages the reference [`matches`],
/// newest first.
pub async fn search_equals_contains_over_random_corpora(s: S) {
    const ALPHABET: &[&str] = &["가", "나", "ㅋ", "a", "A", "b", "é", "e\u{301}", "😀", " "];
    let piece = || proptest::sample::select(ALPHABET);
    let corpus =
        proptest::collection::vec((0..3usize, proptest::collection::vec(piece(), 1..9)), 1..40);
    let queries = proptest::collection::vec(proptest::collection::vec(piece(), 1..5), 8);
    let mut runner = TestRunner::deterministic();
    for case in 0..12 {
        let messages = corpus.new_tree(&mut runner).unwrap().current();
        let asked = queries.new_tree(&mut runner).unwrap().current();
        let a = user(&s, &format!("prop{case}")).await;
        let rooms = [
            room(&s, &a, Visibility::Public).await,
            room(&s, &a, Visibility::Public).await,
            room(&s, &a, Visibility::Public).await,
        ];
        for r in rooms {
            join(&s, r, &a).await;
        }
        let mut stored: Vec<(MessageId, RoomId, String)> = Vec::new();
        for (ri, parts) in messages {
            let t: String = parts.concat();
            // The store keeps a text as sent; the server trims, so do that here.
            let t = t.trim().to_owned();
            if t.is_empty() {
                continue;
            }
            let id = post(&s, rooms[ri], &a, &t).await;
            stored.push((id, rooms[ri], t));
        }
        // Queries from the alphabet, and pieces of stored texts.
        let mut all: Vec<String> = asked.into_iter().map(|p| p.concat()).collect();
        for (_, _, t) in stored.iter().take(4) {
            all.push(t.chars().skip(1).take(3).collect());
        }
        for raw in all {
            let folded = fold(raw.trim()).into_owned();
            if folded.is_empty() {
                continue;
            }
            for scope in [SearchScope::Member, SearchScope::Room(rooms[1])] {
                let want: Vec<MessageId> = stored
                    .iter()
                    .rev()
                    .filter(|(_, r, t)| {
                        (scope == SearchScope::Member || SearchScope::Room(*r) == scope)
                            && matches(t, &folded)
                    })
                    .map(|(id, _, _)| *id)
                    .collect();
                let query = SearchQuery {
                    text: folded.clone(),
                    user: a.id,
                    scope,
                    before: None,
                    limit: 4,
                };
                let got = all_pages(&s, query).await;
                assert_eq!(
                    got, want,
                    "case {case}, query {raw:?} ({folded:?}), {scope:?}"
                );
            }
        }
    }
}

/// A rare word far back in busy rooms: found on every path, in order, however
/// many messages newer than it there are (on PostgreSQL a long query reads the
/// newest few thousand messages and asks the index for the rest).
pub async fn rare_old_words_are_found_below_thousands_of_newer_messages(s: S) {
    let a = user(&s, "alice").await;
    let r1 = room(&s, &a, Visibility::Public).await;
    let r2 = room(&s, &a, Visibility::Public).await;
    join(&s, r1, &a).await;
    join(&s, r2, &a).await;
    let rare = [3usize, 1500, 4100, 5400];
    let mut want = Vec::new();
    for chunk in (0..6000usize).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let r = if i % 5 == 0 { r2 } else { r1 };
                let t = if rare.contains(&i) {
                    format!("희귀단어 {i}")
                } else {
                    format!("보통 대화 {i}")
                };
                text(r, &a, &t)
            })
            .collect();
        let out = s.append(batch).await.unwrap();
        for (&i, o) in chunk.iter().zip(out) {
            if rare.contains(&i) {
                match o {
                    Ok(Appended::New(m)) => want.push(m.id),
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    want.reverse();
    for query in ["희귀단어", "귀단어", "희귀"] {
        for limit in [1, 2, 20] {
            let got = all_pages(&s, q(&a, query, SearchScope::Member, None, limit)).await;
            assert_eq!(got, want, "{query} limit {limit}");
        }
        let in_r2 = all_pages(&s, q(&a, query, SearchScope::Room(r2), None, 1)).await;
        // 5400, 4100 and 1500 are in r2 (multiples of 5), 3 is not.
        assert_eq!(in_r2, want[..3].to_vec(), "{query} in r2");
    }
}
