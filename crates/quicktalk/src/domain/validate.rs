//! Input rules of the contract (§2, §3), shared by every adapter.

use crate::error::{AppError, AppResult};

pub const MAX_TEXT_CHARS: usize = 4000;

pub fn username(u: &str) -> AppResult<()> {
    let ok_len = (3..=32).contains(&u.len());
    let ok_chars = u
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(AppError::invalid(
            "invalid_username",
            "username must be 3-32 characters of A-Z, a-z, 0-9, '_', '.', '-'",
        ))
    }
}

/// Longest report reason, in characters after trimming.
pub const MAX_REASON_CHARS: usize = 500;

/// Trims and checks a report reason: 1-500 characters (`invalid_reason`).
pub fn reason(raw: &str) -> AppResult<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > MAX_REASON_CHARS {
        return Err(AppError::invalid(
            "invalid_reason",
            format!("reason must be 1-{MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(t.to_owned())
}

pub fn password(p: &str) -> AppResult<()> {
    if (8..=128).contains(&p.chars().count()) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "invalid_password",
            "password must be 8-128 characters",
        ))
    }
}

/// Trims and checks a display name, nickname or room name: 1-64 characters, any
/// script, nothing invisible (see [`name_problem`]), no word mixing look-alike
/// scripts ([`crate::confusables::mixes_scripts`]). Returns the trimmed name.
/// Whether it impersonates a registered user is the store's to say
/// ([`impersonates`]).
pub fn name(raw: &str, code: &'static str, what: &'static str) -> AppResult<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > 64 {
        return Err(AppError::invalid(
            code,
            format!("{what} must be 1-64 characters after trimming"),
        ));
    }
    showable_name(t, code, what)?;
    Ok(t.to_owned())
}

/// A name is safe to show: nothing invisible or controlling ([`name_problem`])
/// and no look-alike scripts mixed in one word.
fn showable_name(t: &str, code: &'static str, what: &'static str) -> AppResult<()> {
    if let Some(problem) = name_problem(t) {
        return Err(AppError::invalid(code, format!("{what} {problem}")));
    }
    if crate::confusables::mixes_scripts(t) {
        return Err(AppError::invalid(
            code,
            format!(
                "{what} must not mix look-alike scripts in one word (such as Latin with Cyrillic or Greek)"
            ),
        ));
    }
    Ok(())
}

/// Longest display name, in grapheme clusters (contract §7).
pub const MAX_DISPLAY_NAME_GRAPHEMES: usize = 64;
/// Longest status message, in grapheme clusters.
pub const MAX_STATUS_GRAPHEMES: usize = 140;
/// A grapheme is rarely more than a few code points; a profile field is
/// refused past this many bytes per allowed grapheme (so a pile of combining
/// marks on one letter cannot make a megabyte "one character" name).
const MAX_BYTES_PER_GRAPHEME: usize = 4;

/// NFC of `raw` trimmed, if it is 1..=`max` grapheme clusters and at most
/// `max * 4` bytes; `None` otherwise.
fn graphemes_within(raw: &str, max: usize) -> Option<String> {
    use unicode_normalization::UnicodeNormalization as _;
    use unicode_segmentation::UnicodeSegmentation as _;
    let cap = max * MAX_BYTES_PER_GRAPHEME;
    // Checked before NFC too, so normalizing never works on a huge input.
    if raw.len() > cap * 2 {
        return None;
    }
    let t: String = raw.trim().nfc().collect();
    let n = t.graphemes(true).count();
    (n >= 1 && n <= max && t.len() <= cap).then_some(t)
}

/// A profile display name (`PATCH /me`): NFC, 1-64 grapheme clusters (a
/// Korean syllable counts as one), and safe to show as [`name`] requires.
pub fn display_name(raw: &str) -> AppResult<String> {
    const CODE: &str = "invalid_display_name";
    let t = graphemes_within(raw, MAX_DISPLAY_NAME_GRAPHEMES).ok_or_else(|| {
        AppError::invalid(
            CODE,
            format!("display name must be 1-{MAX_DISPLAY_NAME_GRAPHEMES} characters"),
        )
    })?;
    showable_name(&t, CODE, "display name")?;
    Ok(t)
}

/// A status message: NFC, 1-140 grapheme clusters on one line, nothing
/// invisible or controlling ([`name_problem`]).
pub fn status_message(raw: &str) -> AppResult<String> {
    const CODE: &str = "invalid_status_message";
    let t = graphemes_within(raw, MAX_STATUS_GRAPHEMES).ok_or_else(|| {
        AppError::invalid(
            CODE,
            format!("status message must be 1-{MAX_STATUS_GRAPHEMES} characters"),
        )
    })?;
    if let Some(problem) = name_problem(&t) {
        return Err(AppError::invalid(CODE, format!("status message {problem}")));
    }
    Ok(t)
}

/// `name_taken` when `name` looks like (shares the confusable skeleton of) the
/// username or display name of a registered user other than `me`.
pub async fn impersonates(
    store: &dyn crate::store::Store,
    name: &str,
    me: Option<crate::model::UserId>,
) -> AppResult<()> {
    let skeleton = crate::confusables::skeleton(name);
    match store.name_owner(&skeleton).await? {
        Some(owner) if Some(owner) != me => Err(AppError::name_taken()),
        _ => Ok(()),
    }
}

/// Why `name` (trimmed) cannot be shown safely, if it cannot: control, format
/// (bidi overrides, zero-width), private-use, unassigned or default-ignorable
/// characters (Hangul fillers, variation selectors), or nothing visible at all.
/// A zero-width joiner or variation selector is allowed only right after a
/// visible character (emoji sequences such as 👩‍💻 or ❤️).
pub fn name_problem(name: &str) -> Option<&'static str> {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    let mut visible = false;
    let mut prev_visible = false;
    let mut open_joiner = false;
    for c in name.chars() {
        let cat = get_general_category(c);
        let joiner = matches!(c, '\u{200D}' | '\u{FE0E}' | '\u{FE0F}');
        if joiner && prev_visible {
            // A joiner must also be followed by something visible.
            if c == '\u{200D}' {
                prev_visible = false;
                open_joiner = true;
            }
            continue;
        }
        if matches!(
            cat,
            G::Control
                | G::Format
                | G::PrivateUse
                | G::Surrogate
                | G::Unassigned
                | G::LineSeparator
                | G::ParagraphSeparator
        ) || invisible(c)
        {
            return Some("must not contain control, format or invisible characters");
        }
        let shows = !matches!(
            cat,
            G::SpaceSeparator | G::NonspacingMark | G::EnclosingMark | G::SpacingMark
        );
        visible |= shows;
        prev_visible = shows;
        open_joiner &= !shows;
    }
    if open_joiner {
        return Some("must not contain control, format or invisible characters");
    }
    if visible {
        None
    } else {
        Some("must contain a visible character")
    }
}

/// Default-ignorable code points that are not of category Cf (they render as
/// nothing), and blank-looking symbols.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{034F}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// Trims and checks a message text: 1-4000 characters; `\n` and `\t` are the
/// only control characters allowed (NUL, the rest of C0, DEL and C1 are not:
/// PostgreSQL cannot store NUL, and the others only garble what readers see).
pub fn text(raw: &str) -> AppResult<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 {
        return Err(AppError::invalid("empty_text", "message text is empty"));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(AppError::invalid(
            "invalid_text",
            "message text must not contain control characters other than newline and tab",
        ));
    }
    if n > MAX_TEXT_CHARS {
        return Err(AppError::TooLarge(
            format!("message text is longer than {MAX_TEXT_CHARS} characters").into(),
        ));
    }
    Ok(t.to_owned())
}

/// A client-chosen idempotency key: 1-64 printable characters.
pub fn client_id(c: &str) -> AppResult<()> {
    if (1..=64).contains(&c.chars().count()) && !c.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "invalid_client_id",
            "client_id must be 1-64 printable characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("abc").is_ok());
        assert!(username("a.b-c_9").is_ok());
        assert!(username("ab").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("민수abc").is_err());
        assert!(username("a b c").is_err());
    }

    #[test]
    fn names_trim_and_count_chars() {
        assert_eq!(name("  민수  ", "c", "name").unwrap(), "민수");
        assert!(name("   ", "c", "name").is_err());
        assert!(name(&"가".repeat(64), "c", "name").is_ok());
        assert!(name(&"가".repeat(65), "c", "name").is_err());
        assert!(name("a\u{0}b", "c", "name").is_err());
    }

    #[test]
    fn names_keep_every_script_and_emoji() {
        for ok in [
            "민수",
            "김 민수",
            "Alice",
            "Jane Doe-Smith",
            "O'Brien",
            "José",
            "Ελένη",
            "Иван",
            "山田太郎",
            "🙂",
            "❤️",
            "👩‍💻 dev",
            "👨‍👩‍👧",
            "한국어 방 #1",
            "e\u{301}",
        ] {
            assert_eq!(name(ok, "c", "name").unwrap(), ok, "{ok:?}");
        }
    }

    #[test]
    fn names_reject_invisible_and_format_characters() {
        for bad in [
            "\u{200B}",
            "\u{200B}\u{200B}\u{200B}",
            "\u{3164}",
            "\u{3164}\u{3164}",
            "\u{115F}",
            "\u{1160}",
            "\u{FFA0}",
            "\u{2800}",
            "\u{FE0F}",
            "\u{FE0F}\u{FE0F}",
            "\u{200D}",
            "\u{301}",
            "Al\u{200B}ice",
            "Alice\u{200D}",
            "\u{202E}ecilA",
            "abc\u{2066}def",
            "Ali\u{00AD}ce",
            "\u{FEFF}Alice",
            "Al\u{E000}ice",
            "a\u{7}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{E0041}b",
        ] {
            assert!(name(bad, "c", "name").is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn names_reject_look_alike_scripts_mixed_in_a_word() {
        for bad in ["\u{410}lice", "p\u{430}ypal", "\u{3bf}bama"] {
            let e = name(bad, "c", "name").unwrap_err();
            assert_eq!(e.code(), "c", "{bad:?}");
            assert!(e.to_string().contains("scripts"), "{e}");
        }
        for ok in ["민수Kim", "김철수", "Иван Ivan", "山田Taro", "👩‍💻 dev"] {
            assert_eq!(name(ok, "c", "name").unwrap(), ok, "{ok:?}");
        }
    }

    #[test]
    fn texts() {
        assert_eq!(text(" hi ").unwrap(), "hi");
        assert_eq!(text(" ").unwrap_err().code(), "empty_text");
        assert!(text(&"가".repeat(4000)).is_ok());
        assert_eq!(text(&"a".repeat(4001)).unwrap_err().code(), "too_large");
    }

    #[test]
    fn texts_allow_newline_and_tab_only_among_controls() {
        assert_eq!(text("a\nb\tc").unwrap(), "a\nb\tc");
        for bad in [
            "a\u{0}b",
            "a\rb",
            "a\u{1b}[2Jb",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{9b}b",
        ] {
            assert_eq!(text(bad).unwrap_err().code(), "invalid_text", "{bad:?}");
        }
    }

    #[test]
    fn client_ids_reject_controls() {
        assert!(client_id("c-1").is_ok());
        assert_eq!(client_id("c\u{0}").unwrap_err().code(), "invalid_client_id");
        assert_eq!(client_id("").unwrap_err().code(), "invalid_client_id");
    }

    #[test]
    fn profile_lengths_count_graphemes_after_nfc() {
        // 64 Hangul syllables are 64 characters; so are 64 decomposed (NFD) ones.
        let syllables = "가".repeat(64);
        assert_eq!(display_name(&syllables).unwrap(), syllables);
        let decomposed: String = "\u{1100}\u{1161}".repeat(64);
        assert_eq!(display_name(&decomposed).unwrap(), syllables, "NFC");
        assert!(display_name(&"가".repeat(65)).is_err());
        // A family emoji (7 code points) is one grapheme.
        let family = "👨\u{200D}👩\u{200D}👧\u{200D}👦";
        assert!(display_name(&family.repeat(10)).is_ok());
        assert!(display_name("  ").is_err());
        assert!(display_name("a\u{202E}b").is_err(), "bidi override");
        // One letter under a pile of combining marks: one grapheme, too many bytes.
        let zalgo = format!("a{}", "\u{0301}".repeat(300));
        assert_eq!(
            display_name(&zalgo).unwrap_err().code(),
            "invalid_display_name"
        );
        assert_eq!(status_message(&"字".repeat(140)).unwrap().len(), 420);
        assert!(status_message(&"字".repeat(141)).is_err());
        assert!(status_message("line\nbreak").is_err());
        assert!(display_name(&"x".repeat(1_000_000)).is_err());
    }
}
