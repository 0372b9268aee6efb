//! File names as clients send them (`?name=`), made safe to store, to show
//! and to put in a `Content-Disposition` (which must still encode them,
//! RFC 6266 `filename*`): this decides the characters, not the header syntax.
//!
//! Rules: NFC; only the last path component (`/` and `\` both separate, so
//! `../../etc/passwd` is `passwd`); control characters, line/paragraph
//! separators and bidi overrides (the `gpj.exe` trick) removed; no leading
//! dots or spaces, no trailing dots or spaces; at most [`MAX_NAME_BYTES`]
//! bytes, cut on a char boundary and keeping the extension; `file` if
//! nothing is left.

use unicode_general_category::{get_general_category, GeneralCategory};
use unicode_normalization::UnicodeNormalization;

/// Longest stored name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Input beyond this many bytes is ignored (before NFC, which may grow it).
pub const MAX_RAW_NAME_BYTES: usize = 4 * 1024;
/// An extension longer than this is treated as part of the name.
const MAX_EXTENSION_BYTES: usize = 16;
const FALLBACK: &str = "file";

/// The safe form of a client-supplied file name (see the module docs).
pub fn sanitize_filename(raw: &str) -> String {
    let raw = prefix_on_char_boundary(raw, MAX_RAW_NAME_BYTES);
    let nfc: String = raw.nfc().collect();
    let last = nfc.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|&c| !is_stripped(c)).collect();
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return FALLBACK.to_owned();
    }
    let name = fit(trimmed);
    if name.is_empty() {
        FALLBACK.to_owned()
    } else {
        name
    }
}

fn is_stripped(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Cuts `name` to [`MAX_NAME_BYTES`], keeping a short extension whole.
fn fit(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_EXTENSION_BYTES + 1 => name.split_at(dot),
        _ => (name, ""),
    };
    let stem = prefix_on_char_boundary(stem, MAX_NAME_BYTES - ext.len());
    // A cut may leave a combining mark without its base's neighbours, or a
    // trailing dot/space before the extension.
    let stem = stem
        .trim_end_matches(|c: char| {
            matches!(
                get_general_category(c),
                GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
            )
        })
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if stem.is_empty() {
        return String::new();
    }
    format!("{stem}{ext}")
}

fn prefix_on_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn path_traversal_keeps_only_the_last_component() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize_filename("C:\\Users\\me\\photo.jpg"), "photo.jpg");
        assert_eq!(sanitize_filename("/"), "file");
        assert_eq!(sanitize_filename("dir/"), "file");
        assert_eq!(sanitize_filename(".."), "file");
    }

    #[test]
    fn leading_dots_control_chars_and_bidi_are_removed() {
        assert_eq!(sanitize_filename(".bashrc"), "bashrc");
        assert_eq!(sanitize_filename("...hidden.txt"), "hidden.txt");
        assert_eq!(sanitize_filename("a\u{0}b\nc\r\td.txt"), "abcd.txt");
        assert_eq!(sanitize_filename("evil\u{202E}gpj.exe"), "evilgpj.exe");
        assert_eq!(sanitize_filename("  report.pdf . "), "report.pdf");
        assert_eq!(sanitize_filename(""), "file");
        assert_eq!(sanitize_filename("\u{7}\u{1b}"), "file");
    }

    #[test]
    fn korean_names_are_nfc() {
        // "사진.jpg" in NFD (as macOS sends it): conjoining jamo.
        let nfd = "\u{1109}\u{1161}\u{110C}\u{1175}\u{11AB}.jpg";
        let out = sanitize_filename(nfd);
        assert_eq!(out, "사진.jpg");
        assert_eq!(out.chars().count(), 6);
        assert_eq!(
            sanitize_filename("회의록 2026-12-03.pdf"),
            "회의록 2026-12-03.pdf"
        );
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary_keeping_the_extension() {
        let long = format!("{}.jpeg", "가".repeat(100)); // 300 + 5 bytes
        let out = sanitize_filename(&long);
        assert!(out.len() <= MAX_NAME_BYTES, "{}", out.len());
        assert!(out.ends_with(".jpeg"));
        assert_eq!(out, format!("{}.jpeg", "가".repeat(65))); // 195 + 5
        let no_ext = "x".repeat(500);
        assert_eq!(sanitize_filename(&no_ext), "x".repeat(200));
        // An "extension" too long to be one is cut like the rest.
        let odd = format!("a.{}", "b".repeat(300));
        assert_eq!(sanitize_filename(&odd).len(), 200);
    }

    #[test]
    fn huge_input_is_bounded() {
        let out = sanitize_filename(&"ä".repeat(1_000_000));
        assert!(out.len() <= MAX_NAME_BYTES);
    }

    proptest! {
        #[test]
        fn any_input_gives_a_safe_name(raw in any::<String>()) {
            let out = sanitize_filename(&raw);
            prop_assert!(!out.is_empty());
            prop_assert!(out.len() <= MAX_NAME_BYTES);
            prop_assert!(!out.starts_with('.'));
            prop_assert!(!out.contains(['/', '\\']));
            prop_assert!(!out.chars().any(char::is_control));
        }
    }
}
