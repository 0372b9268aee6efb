//! History search requests (contract §9): checking what a caller asks for and
//! turning it into a [`SearchQuery`] the store answers, and the cursor format
//! of its pages. Who may search where is checked by [`super::rooms::Rooms::search`].

use unicode_normalization::UnicodeNormalization;

use crate::error::{AppError, AppResult};
use crate::model::{MessageId, RoomId, UserId};
use crate::store::search::{fold, SearchPage, SearchQuery, SearchScope};

/// `q` may have at most this many characters (after trimming, in NFC).
pub const MAX_QUERY_CHARS: usize = 100;
pub const DEFAULT_RESULTS: usize = 20;
pub const MAX_RESULTS: usize = 50;

/// A search as the HTTP layer received it.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest<'a> {
    pub q: Option<&'a str>,
    pub room_id: Option<RoomId>,
    pub limit: Option<i64>,
    pub cursor: Option<&'a str>,
}

/// Checks `req` and builds the store query for `user`: `q` of 1–100
/// characters after trimming (400 `invalid_query`), `limit` 1–50 (default 20),
/// `cursor` a previous page's `next_cursor` (400 `invalid_cursor`).
pub fn query(user: UserId, req: &SearchRequest<'_>) -> AppResult<SearchQuery> {
    let text = req.q.map(str::trim).unwrap_or("");
    let chars = text.nfc().count();
    if !(1..=MAX_QUERY_CHARS).contains(&chars) {
        return Err(AppError::invalid(
            "invalid_query",
            format!("q must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let limit = req.limit.unwrap_or(DEFAULT_RESULTS as i64);
    if !(1..=MAX_RESULTS as i64).contains(&limit) {
        return Err(AppError::invalid(
            "invalid_query",
            format!("limit must be between 1 and {MAX_RESULTS}"),
        ));
    }
    let before = req.cursor.map(parse_cursor).transpose()?;
    Ok(SearchQuery {
        text: fold(text).into_owned(),
        user,
        scope: req.room_id.map_or(SearchScope::Member, SearchScope::Room),
        before,
        limit: limit as usize,
    })
}

/// The cursor of the page after `page`: its last hit's id, when more may follow.
pub fn next_cursor(page: &SearchPage) -> Option<String> {
    if !page.more {
        return None;
    }
    page.hits.last().map(|h| h.message.id.to_string())
}

fn parse_cursor(c: &str) -> AppResult<MessageId> {
    c.parse::<MessageId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::invalid("invalid_cursor", "unknown cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &str) -> SearchRequest<'_> {
        SearchRequest {
            q: Some(q),
            ..Default::default()
        }
    }

    fn code(r: AppResult<SearchQuery>) -> &'static str {
        match r {
            Err(AppError::Invalid { code, .. }) => code,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn query_is_trimmed_and_folded() {
        let q = query(7, &req("  Hello 사랑 ")).unwrap();
        assert_eq!(q.text, "hello 사랑");
        assert_eq!(q.user, 7);
        assert_eq!(q.scope, SearchScope::Member);
        assert_eq!(q.limit, DEFAULT_RESULTS);
        assert_eq!(q.before, None);
    }

    #[test]
    fn length_is_checked_in_characters() {
        assert_eq!(code(query(1, &req("   "))), "invalid_query");
        assert_eq!(code(query(1, &SearchRequest::default())), "invalid_query");
        let hundred = "가".repeat(100);
        assert!(query(1, &req(&hundred)).is_ok());
        let more = "가".repeat(101);
        assert_eq!(code(query(1, &req(&more))), "invalid_query");
        // 100 syllables written as 200 jamo are 100 characters in NFC.
        let nfd: String = hundred.nfd().collect();
        assert!(query(1, &req(&nfd)).is_ok());
    }

    #[test]
    fn limit_and_cursor() {
        let mut r = req("ab");
        r.limit = Some(0);
        assert_eq!(code(query(1, &r)), "invalid_query");
        r.limit = Some(51);
        assert_eq!(code(query(1, &r)), "invalid_query");
        r.limit = Some(50);
        r.cursor = Some("123");
        r.room_id = Some(9);
        let q = query(1, &r).unwrap();
        assert_eq!(
            (q.limit, q.before, q.scope),
            (50, Some(123), SearchScope::Room(9))
        );
        for bad in ["", "x", "-1", "0", "1_2"] {
            r.cursor = Some(bad);
            assert_eq!(code(query(1, &r)), "invalid_cursor", "{bad:?}");
        }
    }
}
