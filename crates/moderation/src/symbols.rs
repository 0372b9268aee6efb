//! The second normalization stage: folded characters become two symbol streams,
//! the ones the lexicon is matched against.
//!
//! - **Hangul stream**: basic jamo (see [`crate::hangul`]) from syllables, jamo
//!   written out, and Latin words that parse as Korean typed on the 두벌식 layout;
//!   digits stay as *fillers* (skipped inside a match unless the entry spells them,
//!   like `18놈`); every other character is dropped, so `시.1발` reads `시발`.
//! - **Latin stream**: ASCII letters, with leet inside words (`sh1t`, `$hit`, `a55`)
//!   and `*` as a one-letter wildcard (`f*ck`); punctuation inside a word dropped.
//!
//! Each symbol keeps the origin index of its character and flags: syllable start
//! and end (a match must start and end on syllable edges, so `좆` is not found in
//! `조지`), written-out jamo (`ㅅㅂ` as an entry matches only jamo written out, not
//! the `ㅅ` of `깃발`), and word edges and white-space gaps (a match that crosses a
//! gap must start and end on word edges: `시 발` is caught, `다시 발견` is not).

use crate::fold::Folded;
use crate::hangul::{self, Role};

/// First jamo of a syllable (every Latin letter and digit has it too).
pub const SYL_START: u8 = 1;
/// Last jamo of a syllable.
pub const SYL_END: u8 = 2;
/// A jamo written out on its own (`ㅅ`), not part of a syllable.
pub const STANDALONE: u8 = 4;
/// May be skipped inside a match (digits in the Hangul stream).
pub const FILLER: u8 = 8;
/// White space came before this symbol.
pub const GAP: u8 = 16;
/// First symbol of a word (white-space separated).
pub const WORD_START: u8 = 32;
/// Last symbol of a word.
pub const WORD_END: u8 = 64;
/// Matches any one letter (`*` inside a Latin word).
pub const WILD: u8 = 128;

/// One symbol of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sym {
    /// A basic jamo, an ASCII letter or an ASCII digit.
    pub ch: char,
    /// Index (in chars) of the original character.
    pub origin: u32,
    /// `SYL_START` | `SYL_END` | … bits.
    pub flags: u8,
}

/// Reusable buffers for [`build`].
#[derive(Debug, Default)]
pub struct Streams {
    /// The Hangul stream.
    pub hangul: Vec<Sym>,
    /// The Latin stream.
    pub latin: Vec<Sym>,
    keys: Vec<char>,
    roles: Vec<Role>,
}

/// Builds both streams from folded text (buffers reused, cleared first).
pub fn build(folded: &[Folded], s: &mut Streams) {
    s.hangul.clear();
    s.latin.clear();
    let mut start = 0;
    let mut gap = false;
    while start < folded.len() {
        if folded[start].ch == ' ' {
            gap = true;
            start += 1;
            continue;
        }
        let mut end = start;
        while end < folded.len() && folded[end].ch != ' ' {
            end += 1;
        }
        let word = &folded[start..end];
        hangul_word(word, s, gap);
        latin_word(word, &mut s.latin, gap);
        gap = false;
        start = end;
    }
}

/// Marks the symbols `from..` of `out` as one word.
fn close_word(out: &mut [Sym], from: usize, gap: bool) {
    if from < out.len() {
        out[from].flags |= WORD_START;
        if gap && from > 0 {
            out[from].flags |= GAP;
        }
        if let Some(last) = out.last_mut() {
            last.flags |= WORD_END;
        }
    }
}

fn push_spelling(out: &mut Vec<Sym>, spelling: &str, origin: u32, flags: u8, first: u8, last: u8) {
    let n = spelling.chars().count();
    for (i, ch) in spelling.chars().enumerate() {
        let mut f = flags;
        if i == 0 {
            f |= first;
        }
        if i + 1 == n {
            f |= last;
        }
        out.push(Sym {
            ch,
            origin,
            flags: f,
        });
    }
}

fn hangul_word(word: &[Folded], s: &mut Streams, gap: bool) {
    let from = s.hangul.len();
    let mut i = 0;
    while i < word.len() {
        let f = word[i];
        let c = f.ch;
        if c.is_ascii_alphabetic() {
            let mut j = i;
            while j < word.len() && word[j].ch.is_ascii_alphabetic() {
                j += 1;
            }
            keyboard_run(&word[i..j], s);
            i = j;
            continue;
        }
        if let Some((l, v, t)) = hangul::syllable(c) {
            let before = s.hangul.len();
            push_spelling(&mut s.hangul, l, f.origin, 0, 0, 0);
            push_spelling(&mut s.hangul, v, f.origin, 0, 0, 0);
            push_spelling(&mut s.hangul, t, f.origin, 0, 0, 0);
            s.hangul[before].flags |= SYL_START;
            if let Some(last) = s.hangul.last_mut() {
                last.flags |= SYL_END;
            }
        } else if let Some(sp) = hangul::jamo(c) {
            // A written-out `ㅇ` before a vowel is silent, as in a syllable.
            if c == 'ㅇ'
                && word
                    .get(i + 1)
                    .is_some_and(|n| ('ㅏ'..='ㅣ').contains(&n.ch))
            {
                i += 1;
                continue;
            }
            push_spelling(&mut s.hangul, sp, f.origin, STANDALONE, SYL_START, SYL_END);
        } else if c.is_ascii_digit() {
            s.hangul.push(Sym {
                ch: c,
                origin: f.origin,
                flags: FILLER | SYL_START | SYL_END,
            });
        }
        i += 1;
    }
    close_word(&mut s.hangul, from, gap);
}

/// A run of ASCII letters in the Hangul stream: jamo when it parses as 두벌식
/// typing, otherwise nothing (Latin noise inside a Hangul word is dropped).
fn keyboard_run(run: &[Folded], s: &mut Streams) {
    s.keys.clear();
    for f in run {
        match hangul::key(f.ch, f.upper) {
            Some(k) => s.keys.push(k),
            None => return,
        }
    }
    if !hangul::parse_keys(&s.keys, &mut s.roles) {
        return;
    }
    let n = s.keys.len();
    for (i, f) in run.iter().enumerate() {
        let k = s.keys[i];
        let role = s.roles[i];
        let next_initial = i + 1 == n || s.roles[i + 1] == Role::Initial;
        let origin = f.origin;
        if role == Role::Initial && k == 'ㅇ' {
            // Silent initial: the vowel starts the syllable.
            continue;
        }
        let starts = role == Role::Initial
            || (role == Role::Vowel
                && i > 0
                && s.keys[i - 1] == 'ㅇ'
                && s.roles[i - 1] == Role::Initial);
        let sp = hangul::jamo(k).unwrap_or("");
        let first = if starts { SYL_START } else { 0 };
        let last = if next_initial { SYL_END } else { 0 };
        push_spelling(&mut s.hangul, sp, origin, 0, first, last);
    }
}

fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        _ => return None,
    })
}

fn latin_word(word: &[Folded], out: &mut Vec<Sym>, gap: bool) {
    // A word in the Latin stream is a run of ASCII; anything else breaks it.
    let mut i = 0;
    let mut first = true;
    while i < word.len() {
        if !word[i].ch.is_ascii() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < word.len() && word[j].ch.is_ascii() {
            j += 1;
        }
        let part = &word[i..j];
        // Leading and trailing punctuation is not part of the word.
        let lo = part
            .iter()
            .position(|f| f.ch.is_ascii_alphanumeric() || matches!(f.ch, '$' | '@'));
        let hi = part
            .iter()
            .rposition(|f| f.ch.is_ascii_alphanumeric() || matches!(f.ch, '*' | '$'));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let part = &part[lo..=hi];
            if part
                .iter()
                .any(|f| f.ch.is_ascii_alphabetic() || matches!(f.ch, '$' | '@'))
            {
                let from = out.len();
                for f in part {
                    let (ch, flags) = if f.ch.is_ascii_alphabetic() {
                        (f.ch, SYL_START | SYL_END)
                    } else if f.ch == '*' {
                        ('*', WILD | SYL_START | SYL_END)
                    } else if let Some(l) = leet(f.ch) {
                        (l, SYL_START | SYL_END)
                    } else {
                        continue;
                    };
                    out.push(Sym {
                        ch,
                        origin: f.origin,
                        flags,
                    });
                }
                close_word(out, from, gap && first);
                first = false;
            }
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::fold_into;

    fn streams(text: &str) -> (String, String) {
        let mut f = Vec::new();
        fold_into(text, &mut f);
        let mut s = Streams::default();
        build(&f, &mut s);
        (
            s.hangul.iter().map(|x| x.ch).collect(),
            s.latin.iter().map(|x| x.ch).collect(),
        )
    }

    #[test]
    fn evasions_share_one_spelling() {
        for t in ["시발", "ㅅㅣㅂㅏㄹ", "십알", "tlqkf", "시.발", "시 발"] {
            assert_eq!(streams(t).0, "ㅅㅣㅂㅏㄹ", "{t}");
        }
        assert_eq!(streams("시1발").0, "ㅅㅣ1ㅂㅏㄹ"); // the digit is a filler
        assert_eq!(streams("\u{FFB2}\u{FFB5}").0, "ㅂㅅ"); // half-width jamo
        assert_eq!(streams("씹").0, "ㅅㅅㅣㅂ");
        assert_eq!(streams("ㅄ").0, "ㅂㅅ");
        assert_eq!(streams("ㅆㅣㅇㅣㅂ").0, streams("씨입").0);
        assert_eq!(streams("18놈").0, "18ㄴㅗㅁ");
    }

    #[test]
    fn latin_leet_and_wildcards() {
        assert_eq!(streams("sh1t!").1, "shit");
        assert_eq!(streams("$hit").1, "shit");
        assert_eq!(streams("f*ck").1, "f*ck");
        assert_eq!(streams("f.u.c.k").1, "fuck");
        assert_eq!(streams("2024").1, "");
        assert_eq!(streams("hello 시발").1, "hello");
    }
}
