//! History search (contract §9) as the store sees it: what a query asks for,
//! what a hit is, and the one definition of matching every backend indexes by.
//!
//! Matching is a substring test on *folded* text: [`fold`] is NFC, then Unicode
//! lowercase, then NFC again. It is computed here, in Rust, on both sides (the
//! stored message when it is written, the query when it is asked), so SQLite and
//! PostgreSQL agree exactly whatever their collation or ICU support; the
//! backends' indexes (FTS5 trigram, `pg_trgm`) only narrow the candidates.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::model::{Message, MessageId, RoomId, UserId};

/// Folded queries of at least this many characters use the trigram index;
/// shorter ones scan the caller's rooms newest first.
pub const TRIGRAM_MIN_CHARS: usize = 3;

/// Where a search looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// Every room `user` is a member of.
    Member,
    /// One room (the caller may read it: checked by the domain).
    Room(RoomId),
}

/// One page of a search. `text` is already [`fold`]ed and not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub text: String,
    /// Whose search: membership for [`SearchScope::Member`], and the blocks
    /// whose messages are left out.
    pub user: UserId,
    pub scope: SearchScope,
    /// Only messages with an id below this (the previous page's last hit).
    pub before: Option<MessageId>,
    pub limit: usize,
}

impl SearchQuery {
    /// Whether the trigram index can answer this query.
    pub fn uses_trigrams(&self) -> bool {
        self.text.chars().count() >= TRIGRAM_MIN_CHARS
    }
}

/// A found message and the name of its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub message: Message,
    pub room_name: String,
}

/// A page of hits, newest (highest id) first, and whether more may follow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub more: bool,
}

/// `text` as the index keeps it: NFC, lowercase, NFC. Borrowed when `text` is
/// already its own fold (every Hangul text, any lowercase NFC text).
pub fn fold(text: &str) -> Cow<'_, str> {
    let nfc_already = matches!(is_nfc_quick(text.chars()), IsNormalized::Yes);
    if nfc_already && text.chars().all(lower_is_self) {
        return Cow::Borrowed(text);
    }
    let nfc: String = if nfc_already {
        text.to_owned()
    } else {
        text.nfc().collect()
    };
    let lower = nfc.to_lowercase();
    Cow::Owned(match is_nfc_quick(lower.chars()) {
        IsNormalized::Yes => lower,
        _ => lower.nfc().collect(),
    })
}

/// The fold to store beside a message when it differs from the text itself
/// (`None`: the text is its own fold).
pub fn stored_fold(text: &str) -> Option<String> {
    match fold(text) {
        Cow::Borrowed(_) => None,
        Cow::Owned(f) if f == text => None,
        Cow::Owned(f) => Some(f),
    }
}

/// Whether `text` matches the folded query `folded_query`: the reference the
/// backends must agree with.
pub fn matches(text: &str, folded_query: &str) -> bool {
    fold(text).contains(folded_query)
}

fn lower_is_self(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_uppercase();
    }
    let mut l = c.to_lowercase();
    l.next() == Some(c) && l.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_is_its_own_fold() {
        assert!(matches!(fold("사랑해요 ㅋㅋ 😀"), Cow::Borrowed(_)));
        assert_eq!(stored_fold("사랑해요"), None);
    }

    #[test]
    fn latin_is_lowercased() {
        assert_eq!(fold("Hello WORLD"), "hello world");
        assert_eq!(stored_fold("Hello"), Some("hello".into()));
        assert_eq!(fold("ÀÉÎ"), "àéî");
        assert_eq!(fold("ΣΊΣΥΦΟΣ"), "σίσυφος");
    }

    #[test]
    fn decomposed_hangul_is_composed() {
        // 한 as conjoining jamo (NFD) folds to the precomposed syllable.
        let nfd: String = "한국".nfd().collect();
        assert_ne!(nfd, "한국");
        assert_eq!(fold(&nfd), "한국");
        assert!(matches(&nfd, "한국"));
        assert_eq!(stored_fold(&nfd), Some("한국".into()));
    }

    #[test]
    fn matching_is_substring_of_folds() {
        assert!(matches("우리는 사랑을 해요", "사랑"));
        assert!(matches("HELLO there", "llo t"));
        assert!(!matches("사랑", "사랑을"));
        assert!(matches("ㅋㅋㅋㅋ", "ㅋㅋ"));
    }

    #[test]
    fn threshold_counts_characters_not_bytes() {
        let q = |t: &str| SearchQuery {
            text: t.into(),
            user: 1,
            scope: SearchScope::Member,
            before: None,
            limit: 10,
        };
        assert!(!q("사랑").uses_trigrams());
        assert!(q("사랑을").uses_trigrams());
        assert!(!q("ab").uses_trigrams());
    }
}
