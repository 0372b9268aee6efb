//! Hangul structure: syllables and jamo written out become one spelling of basic
//! jamo, and Latin letters typed with the Korean 두벌식 layout become jamo again.
//!
//! The spelling is phonetic enough to make the usual evasions collapse:
//! - a syllable is spelt as its basic jamo, so `시발`, `ㅅㅣㅂㅏㄹ`, `십알` (silent
//!   `ㅇ` dropped) and `tlqkf` (keyboard) all read `ㅅㅣㅂㅏㄹ`;
//! - a tense consonant is its plain one doubled (`ㅆ` = `ㅅㅅ`, `ㄲ` = `ㄱㄱ`), so a
//!   final `ㄱ` before `기` reads like `끼` (`색기` = `새끼`) while `십` stays apart
//!   from `씹`; compound vowels and final clusters split into their parts (`ㅄ` =
//!   `ㅂㅅ`, `ㅘ` = `ㅗㅏ`); `ㅒ` reads `ㅐ` and `ㅖ` reads `ㅔ`.

/// Initial consonants (choseong) in Unicode order; `""` is the silent `ㅇ`.
const INITIALS: [&str; 19] = [
    "ㄱ", "ㄱㄱ", "ㄴ", "ㄷ", "ㄷㄷ", "ㄹ", "ㅁ", "ㅂ", "ㅂㅂ", "ㅅ", "ㅅㅅ", "", "ㅈ", "ㅈㅈ",
    "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ",
];
/// Vowels (jungseong) in Unicode order.
const VOWELS: [&str; 21] = [
    "ㅏ", "ㅐ", "ㅑ", "ㅐ", "ㅓ", "ㅔ", "ㅕ", "ㅔ", "ㅗ", "ㅗㅏ", "ㅗㅐ", "ㅗㅣ", "ㅛ", "ㅜ",
    "ㅜㅓ", "ㅜㅔ", "ㅜㅣ", "ㅠ", "ㅡ", "ㅡㅣ", "ㅣ",
];
/// Final consonants (jongseong) in Unicode order; index 0 is none.
const FINALS: [&str; 28] = [
    "", "ㄱ", "ㄱㄱ", "ㄱㅅ", "ㄴ", "ㄴㅈ", "ㄴㅎ", "ㄷ", "ㄹ", "ㄹㄱ", "ㄹㅁ", "ㄹㅂ", "ㄹㅅ",
    "ㄹㅌ", "ㄹㅍ", "ㄹㅎ", "ㅁ", "ㅂ", "ㅂㅅ", "ㅅ", "ㅅㅅ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ",
    "ㅎ",
];

/// Compatibility jamo `ㄱ` (U+3131) to `ㅣ` (U+3163) spelt in basic jamo.
const COMPAT: [&str; 51] = [
    "ㄱ", "ㄱㄱ", "ㄱㅅ", "ㄴ", "ㄴㅈ", "ㄴㅎ", "ㄷ", "ㄷㄷ", "ㄹ", "ㄹㄱ", "ㄹㅁ", "ㄹㅂ", "ㄹㅅ",
    "ㄹㅌ", "ㄹㅍ", "ㄹㅎ", "ㅁ", "ㅂ", "ㅂㅂ", "ㅂㅅ", "ㅅ", "ㅅㅅ", "ㅇ", "ㅈ", "ㅈㅈ", "ㅊ",
    "ㅋ", "ㅌ", "ㅍ", "ㅎ", "ㅏ", "ㅐ", "ㅑ", "ㅐ", "ㅓ", "ㅔ", "ㅕ", "ㅔ", "ㅗ", "ㅗㅏ", "ㅗㅐ",
    "ㅗㅣ", "ㅛ", "ㅜ", "ㅜㅓ", "ㅜㅔ", "ㅜㅣ", "ㅠ", "ㅡ", "ㅡㅣ", "ㅣ",
];

/// A precomposed syllable as (initial, vowel, final) spellings.
pub fn syllable(c: char) -> Option<(&'static str, &'static str, &'static str)> {
    let s = (c as u32).checked_sub(0xAC00)?;
    if s >= 11172 {
        return None;
    }
    let (l, v, t) = (s / 588, (s % 588) / 28, s % 28);
    Some((INITIALS[l as usize], VOWELS[v as usize], FINALS[t as usize]))
}

/// A compatibility jamo (`ㅅ`, `ㅄ`, `ㅘ`) or a conjoining jamo (U+1100 block)
/// spelt in basic jamo.
pub fn jamo(c: char) -> Option<&'static str> {
    let u = c as u32;
    match u {
        0x3131..=0x3163 => Some(COMPAT[(u - 0x3131) as usize]),
        0x1100..=0x1112 => Some(match INITIALS[(u - 0x1100) as usize] {
            "" => "ㅇ",
            s => s,
        }),
        0x1161..=0x1175 => Some(VOWELS[(u - 0x1161) as usize]),
        0x11A8..=0x11C2 => Some(FINALS[(u - 0x11A7) as usize]),
        _ => None,
    }
}

/// Whether a basic or compatibility jamo is a vowel.
pub fn is_vowel(c: char) -> bool {
    ('ㅏ'..='ㅣ').contains(&c)
}

/// The jamo a key gives on the 두벌식 layout (`shift` for the tense consonants
/// and `ㅒ`/`ㅖ`), as a compatibility jamo.
pub fn key(c: char, shift: bool) -> Option<char> {
    Some(match (c, shift) {
        ('q', true) => 'ㅃ',
        ('w', true) => 'ㅉ',
        ('e', true) => 'ㄸ',
        ('r', true) => 'ㄲ',
        ('t', true) => 'ㅆ',
        ('o', true) => 'ㅒ',
        ('p', true) => 'ㅖ',
        ('q', _) => 'ㅂ',
        ('w', _) => 'ㅈ',
        ('e', _) => 'ㄷ',
        ('r', _) => 'ㄱ',
        ('t', _) => 'ㅅ',
        ('y', _) => 'ㅛ',
        ('u', _) => 'ㅕ',
        ('i', _) => 'ㅑ',
        ('o', _) => 'ㅐ',
        ('p', _) => 'ㅔ',
        ('a', _) => 'ㅁ',
        ('s', _) => 'ㄴ',
        ('d', _) => 'ㅇ',
        ('f', _) => 'ㄹ',
        ('g', _) => 'ㅎ',
        ('h', _) => 'ㅗ',
        ('j', _) => 'ㅓ',
        ('k', _) => 'ㅏ',
        ('l', _) => 'ㅣ',
        ('z', _) => 'ㅋ',
        ('x', _) => 'ㅌ',
        ('c', _) => 'ㅊ',
        ('v', _) => 'ㅍ',
        ('b', _) => 'ㅠ',
        ('n', _) => 'ㅜ',
        ('m', _) => 'ㅡ',
        _ => return None,
    })
}

/// Role of one key in a parsed 두벌식 word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// First jamo of a syllable (a silent `ㅇ` included).
    Initial,
    /// Vowel (first or second half of a compound).
    Vowel,
    /// Final consonant (first or second half of a cluster).
    Final,
}

fn compound_vowel(a: char, b: char) -> bool {
    matches!(
        (a, b),
        ('ㅗ', 'ㅏ' | 'ㅐ' | 'ㅣ') | ('ㅜ', 'ㅓ' | 'ㅔ' | 'ㅣ') | ('ㅡ', 'ㅣ')
    )
}

fn final_cluster(a: char, b: char) -> bool {
    matches!(
        (a, b),
        ('ㄱ', 'ㅅ')
            | ('ㄴ', 'ㅈ' | 'ㅎ')
            | ('ㄹ', 'ㄱ' | 'ㅁ' | 'ㅂ' | 'ㅅ' | 'ㅌ' | 'ㅍ' | 'ㅎ')
            | ('ㅂ', 'ㅅ')
    )
}

fn can_be_final(c: char) -> bool {
    !is_vowel(c) && !matches!(c, 'ㄸ' | 'ㅃ' | 'ㅉ')
}

/// Parses keys (compatibility jamo from [`key`]) as Korean typed in English
/// mode: every syllable must be initial + vowel (+ compound) + optional final
/// (+ cluster), as the 두벌식 input method would compose them. Fills `roles` and
/// returns `false` when the keys are not such a word (or have no vowel).
pub fn parse_keys(keys: &[char], roles: &mut Vec<Role>) -> bool {
    roles.clear();
    let n = keys.len();
    let mut i = 0;
    while i < n {
        // Initial consonant.
        if is_vowel(keys[i]) {
            return false;
        }
        roles.push(Role::Initial);
        i += 1;
        // Vowel, maybe compound.
        if i >= n || !is_vowel(keys[i]) {
            return false;
        }
        roles.push(Role::Vowel);
        i += 1;
        if i < n && is_vowel(keys[i]) {
            if !compound_vowel(keys[i - 1], keys[i]) {
                return false;
            }
            roles.push(Role::Vowel);
            i += 1;
        }
        // Consonants up to the next vowel: all but the last are finals.
        let mut k = 0;
        while i + k < n && !is_vowel(keys[i + k]) {
            k += 1;
        }
        let finals = if i + k == n { k } else { k.saturating_sub(1) };
        match finals {
            0 => {}
            1 if can_be_final(keys[i]) => roles.push(Role::Final),
            2 if final_cluster(keys[i], keys[i + 1]) => {
                roles.push(Role::Final);
                roles.push(Role::Final);
            }
            _ => return false,
        }
        i += finals;
    }
    n > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<char> {
        s.chars().map(|c| key(c, false).unwrap()).collect()
    }

    #[test]
    fn syllables_decompose() {
        assert_eq!(syllable('씨'), Some(("ㅅㅅ", "ㅣ", "")));
        assert_eq!(syllable('알'), Some(("", "ㅏ", "ㄹ")));
        assert_eq!(syllable('뷁'), Some(("ㅂ", "ㅜㅔ", "ㄹㄱ")));
        assert_eq!(syllable('a'), None);
        assert_eq!(jamo('ㅄ'), Some("ㅂㅅ"));
        assert_eq!(jamo('\u{1109}'), Some("ㅅ"));
    }

    #[test]
    fn keyboard_words_parse() {
        let mut roles = Vec::new();
        assert!(parse_keys(&keys("tlqkf"), &mut roles)); // 시발
        assert_eq!(
            roles,
            [
                Role::Initial,
                Role::Vowel,
                Role::Initial,
                Role::Vowel,
                Role::Final
            ]
        );
        assert!(parse_keys(&keys("dkssud"), &mut roles)); // 안녕
        assert!(parse_keys(&keys("qudtls"), &mut roles)); // 병신
        assert!(parse_keys(&keys("rhkdghk"), &mut roles)); // 광화
        assert!(!parse_keys(&keys("hello"), &mut roles));
        assert!(!parse_keys(&keys("tq"), &mut roles)); // no vowel
        assert!(!parse_keys(&keys("strength"), &mut roles));
    }
}
