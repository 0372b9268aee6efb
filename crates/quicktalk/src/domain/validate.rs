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
/// script, no control characters. Returns the trimmed name.
pub fn name(raw: &str, code: &'static str, what: &'static str) -> AppResult<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > 64 || t.chars().any(char::is_control) {
        return Err(AppError::invalid(
            code,
            format!("{what} must be 1-64 characters after trimming, without control characters"),
        ));
    }
    Ok(t.to_owned())
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
}
