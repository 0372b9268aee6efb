//! Character folding, the first normalization stage: every character of the
//! original text becomes zero or more plain characters, each remembering the index
//! (in chars) of the original character it came from.
//!
//! Per character: NFKC (full-width Latin, circled and mathematical letters,
//! half-width Hangul, ligatures), lower case, Cyrillic/Greek look-alikes to Latin,
//! zero-width characters and combining marks dropped, every kind of white space
//! to one `' '`. Nothing here knows about words or Hangul structure.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization as _;

/// One folded character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    /// The folded character (`' '` for any white space).
    pub ch: char,
    /// Index, in chars, of the original character it came from.
    pub origin: u32,
    /// The original was upper case (Shift on a keyboard: `Q` is `ㅃ`).
    pub upper: bool,
}

/// Appends the folded form of `text` to `out` (which is cleared first).
pub fn fold_into(text: &str, out: &mut Vec<Folded>) {
    out.clear();
    for (origin, c) in text.chars().enumerate() {
        let origin = origin as u32;
        if c.is_ascii() {
            // Fast path: most chat text is ASCII or precomposed Hangul.
            push(out, c, origin);
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        if ('\u{AC00}'..='\u{D7A3}').contains(&c) || ('\u{3131}'..='\u{3163}').contains(&c) {
            // Syllables and compatibility jamo stay as they are (NFKC would
            // turn `ㅄ` into a conjoining jamo outside the modern set).
            push(out, c, origin);
            continue;
        }
        if let Some(j) = half_width_jamo(c) {
            push(out, j, origin);
            continue;
        }
        for n in std::iter::once(c).nfkc() {
            push(out, n, origin);
        }
    }
}

fn push(out: &mut Vec<Folded>, c: char, origin: u32) {
    if c.is_whitespace() {
        out.push(Folded {
            ch: ' ',
            origin,
            upper: false,
        });
        return;
    }
    if c.is_ascii() {
        out.push(Folded {
            ch: c.to_ascii_lowercase(),
            origin,
            upper: c.is_ascii_uppercase(),
        });
        return;
    }
    if is_invisible(c) || is_combining_mark(c) {
        return;
    }
    let upper = c.is_uppercase();
    for l in c.to_lowercase() {
        out.push(Folded {
            ch: look_alike(l),
            origin,
            upper,
        });
    }
}

/// Half-width Hangul letters (U+FFA1…) as compatibility jamo.
fn half_width_jamo(c: char) -> Option<char> {
    let u = c as u32;
    let to = match u {
        0xFFA1..=0xFFBE => u - 0xFFA1 + 0x3131,
        0xFFC2..=0xFFC7 => u - 0xFFC2 + 0x314F,
        0xFFCA..=0xFFCF => u - 0xFFCA + 0x3155,
        0xFFD2..=0xFFD7 => u - 0xFFD2 + 0x315B,
        0xFFDA..=0xFFDC => u - 0xFFDA + 0x3161,
        _ => return None,
    };
    char::from_u32(to)
}

/// Characters that render as nothing (or almost nothing) and are used to split
/// words invisibly.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

/// Cyrillic and Greek letters that look like Latin ones (lower case).
fn look_alike(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ς' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'ε' | 'э' => 'e',
        'һ' | 'н' => 'h',
        'і' | 'ї' | 'ι' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' | 'μ' => 'm',
        'η' | 'п' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' => 'u',
        'ν' => 'v',
        'ԝ' | 'ω' | 'ш' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(s: &str) -> String {
        let mut v = Vec::new();
        fold_into(s, &mut v);
        v.iter().map(|f| f.ch).collect()
    }

    #[test]
    fn width_case_and_look_alikes_fold() {
        assert_eq!(fold("ＦＵＣＫ"), "fuck");
        assert_eq!(fold("ⓕⓤⓒⓚ"), "fuck");
        assert_eq!(fold("𝐟𝐮𝐜𝐤"), "fuck");
        assert_eq!(fold("fuсk"), "fuck"); // Cyrillic с
        assert_eq!(fold("시\u{200B}발"), "시발");
        assert_eq!(fold("a\u{3000}b\tc"), "a b c");
        assert_eq!(fold("\u{FFB2}\u{FFB5}ㅄ"), "ㅂㅅㅄ"); // half-width jamo
    }

    #[test]
    fn origins_point_at_original_chars() {
        let mut v = Vec::new();
        fold_into("ﬁ시\u{200B}x", &mut v);
        let origins: Vec<u32> = v.iter().map(|f| f.origin).collect();
        assert_eq!(origins, vec![0, 0, 1, 3]);
    }
}
