//! Names that look alike (UTS #39, from the `unicode-security` tables): the
//! confusable skeleton that says whether two names would look the same, and the
//! mixed-script rule that refuses a word spelled in two look-alike scripts.
//!
//! Pure functions, used by `domain::validate` (every display name, nickname and
//! room name) and by the stores (the indexed skeletons of registered users'
//! names, so "does this name impersonate someone?" is one lookup).

use unicode_script::Script;
use unicode_security::mixed_script::AugmentedScriptSet;

/// The key under which two names count as the same to a reader: the UTS #39
/// skeleton of the lower-cased name, with runs of white space made one space.
/// "Alice", "alice", "АLICE" (Cyrillic А), "A1ice" and "Al\u{200B}ice" share one.
/// (Lower-casing first makes the key case-blind, as usernames are, at the price
/// of a capital I no longer matching an l.)
pub fn skeleton(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let sk: String = unicode_security::skeleton(&lower).collect();
    // A prototype may be upper case again (or change the spacing): normalize once more.
    let sk = sk.to_lowercase();
    sk.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether some white-space separated word of `name` mixes scripts the way a
/// spoof does: beyond UTS #39's "moderately restrictive" level. Allowed in one
/// word: one script (Common and Inherited characters — digits, punctuation,
/// emoji, combining marks — go with any), Latin with Han/Hangul/Kana ("민수Kim",
/// "山田Taro"), or Latin with one other recommended script that is neither
/// Cyrillic nor Greek. So "Аlice" with a Cyrillic А is refused, "Иван Ivan" is not.
pub fn mixes_scripts(name: &str) -> bool {
    name.split_whitespace().any(word_mixes_scripts)
}

fn word_mixes_scripts(word: &str) -> bool {
    let mut all = AugmentedScriptSet::default();
    let mut without_latin = AugmentedScriptSet::default();
    for c in word.chars() {
        let set = AugmentedScriptSet::for_char(c);
        if set.is_all() {
            continue;
        }
        let latin = set.base.contains_script(Script::Latin);
        all.intersect_with(AugmentedScriptSet::for_char(c));
        if !latin {
            without_latin.intersect_with(set);
        }
    }
    if !all.is_empty() {
        return false; // single script
    }
    if without_latin.hanb || without_latin.jpan || without_latin.kore {
        return false; // highly restrictive: Latin with Chinese, Japanese or Korean
    }
    if without_latin.base.len() == 1 {
        let other = without_latin.base.iter().next().expect("one script");
        if other.is_recommended() && other != Script::Cyrillic && other != Script::Greek {
            return false; // moderately restrictive
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_skeleton() {
        let alice = skeleton("alice");
        for same in [
            "Alice",
            "ALICE",
            "  alice ",
            "\u{410}lice",       // Cyrillic А
            "\u{430}l\u{456}ce", // Cyrillic а and і
            "A1ice",             // digit one
            "Al\u{200B}ice",     // zero width space (refused by validate anyway)
            "\u{FF21}lice",      // fullwidth A
            "\u{391}lice",       // Greek Alpha
        ] {
            assert_eq!(skeleton(same), alice, "{same:?}");
        }
        assert_eq!(skeleton("rn"), skeleton("m"));
        assert_eq!(skeleton("Jane  Doe"), skeleton("jane doe"));
    }

    #[test]
    fn different_names_keep_different_skeletons() {
        let alice = skeleton("alice");
        for other in ["alicia", "bob", "al ice", "앨리스", "민수", "Алиса"] {
            assert_ne!(skeleton(other), alice, "{other:?}");
        }
        assert_ne!(skeleton("민수"), skeleton("민주"));
    }

    #[test]
    fn spoofs_mixing_latin_with_cyrillic_or_greek_are_caught() {
        for bad in [
            "\u{410}lice",           // Cyrillic А + Latin
            "Bo\u{431}",             // Latin + Cyrillic б
            "p\u{430}ypal",          // Cyrillic а inside
            "\u{3bf}bama",           // Greek ο + Latin
            "Ivan \u{418}v\u{430}n", // a mixed second word
            "\u{410}lice\u{1F642}",
        ] {
            assert!(mixes_scripts(bad), "{bad:?}");
        }
    }

    #[test]
    fn real_names_in_one_or_compatible_scripts_pass() {
        for ok in [
            "Alice",
            "민수Kim",
            "김철수",
            "김 민수",
            "山田Taro",
            "山田太郎",
            "たなか太郎",
            "李민수",
            "Иван",
            "Иван Ivan",
            "Ελένη",
            "José",
            "e\u{301}",
            "O'Brien",
            "Jane Doe-Smith",
            "🙂",
            "👩‍💻 dev",
            "한국어 방 #1",
            "Team 42",
            "Sarahשרה",
        ] {
            assert!(!mixes_scripts(ok), "{ok:?}");
        }
    }
}
