//! Evasion suite: every lexicon entry, written the ways people write it to get
//! past a filter (letter spacing, jamo written out, Korean typed on an English
//! keyboard, look-alike letters, inserted symbols and invisible characters,
//! repeated letters, leet), must still be found. Reports the catch rate per
//! transform and asserts it; and a false-positive suite of innocent Korean and
//! English sentences containing listed strings, asserted to be allowed.

use quicktalk_moderation::{Action, Classifier, Policy};

const L: [char; 19] = [
    'ㄱ', 'ㄲ', 'ㄴ', 'ㄷ', 'ㄸ', 'ㄹ', 'ㅁ', 'ㅂ', 'ㅃ', 'ㅅ', 'ㅆ', 'ㅇ', 'ㅈ', 'ㅉ', 'ㅊ', 'ㅋ',
    'ㅌ', 'ㅍ', 'ㅎ',
];
const V: [char; 21] = [
    'ㅏ', 'ㅐ', 'ㅑ', 'ㅒ', 'ㅓ', 'ㅔ', 'ㅕ', 'ㅖ', 'ㅗ', 'ㅘ', 'ㅙ', 'ㅚ', 'ㅛ', 'ㅜ', 'ㅝ', 'ㅞ',
    'ㅟ', 'ㅠ', 'ㅡ', 'ㅢ', 'ㅣ',
];
const T: [&str; 28] = [
    "", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ",
    "ㅁ", "ㅂ", "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ",
];

/// A syllable as compatibility jamo (`시` → `ㅅㅣ`).
fn jamo(c: char) -> String {
    let u = c as u32;
    if !(0xAC00..0xAC00 + 11172).contains(&u) {
        return c.to_string();
    }
    let s = u - 0xAC00;
    let mut out = String::new();
    out.push(L[(s / 588) as usize]);
    out.push(V[((s % 588) / 28) as usize]);
    out.push_str(T[(s % 28) as usize]);
    out
}

/// Keys of one compatibility jamo on the 두벌식 layout.
fn keys(j: char) -> &'static str {
    match j {
        'ㄱ' => "r",
        'ㄲ' => "R",
        'ㄳ' => "rt",
        'ㄴ' => "s",
        'ㄵ' => "sw",
        'ㄶ' => "sg",
        'ㄷ' => "e",
        'ㄸ' => "E",
        'ㄹ' => "f",
        'ㄺ' => "fr",
        'ㄻ' => "fa",
        'ㄼ' => "fq",
        'ㄽ' => "ft",
        'ㄾ' => "fx",
        'ㄿ' => "fv",
        'ㅀ' => "fg",
        'ㅁ' => "a",
        'ㅂ' => "q",
        'ㅃ' => "Q",
        'ㅄ' => "qt",
        'ㅅ' => "t",
        'ㅆ' => "T",
        'ㅇ' => "d",
        'ㅈ' => "w",
        'ㅉ' => "W",
        'ㅊ' => "c",
        'ㅋ' => "z",
        'ㅌ' => "x",
        'ㅍ' => "v",
        'ㅎ' => "g",
        'ㅏ' => "k",
        'ㅐ' => "o",
        'ㅑ' => "i",
        'ㅒ' => "O",
        'ㅓ' => "j",
        'ㅔ' => "p",
        'ㅕ' => "u",
        'ㅖ' => "P",
        'ㅗ' => "h",
        'ㅘ' => "hk",
        'ㅙ' => "ho",
        'ㅚ' => "hl",
        'ㅛ' => "y",
        'ㅜ' => "n",
        'ㅝ' => "nj",
        'ㅞ' => "np",
        'ㅟ' => "nl",
        'ㅠ' => "b",
        'ㅡ' => "m",
        'ㅢ' => "ml",
        'ㅣ' => "l",
        _ => "",
    }
}

fn is_hangul(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c) || ('ㄱ'..='ㅣ').contains(&c)
}

fn spaced(e: &str) -> String {
    let chars: Vec<String> = e.chars().filter(|c| *c != ' ').map(String::from).collect();
    chars.join(" ")
}

fn inserted(e: &str, sep: &str) -> String {
    let chars: Vec<String> = e.chars().map(String::from).collect();
    chars.join(sep)
}

fn korean_forms(e: &str) -> Vec<(&'static str, String)> {
    let jamo_form: String = e.chars().map(jamo).collect();
    let keyboard: String = jamo_form
        .chars()
        .map(|j| match keys(j) {
            "" => j.to_string(),
            k => k.to_string(),
        })
        .collect();
    // Half-width jamo look alike to the full-width ones.
    let half: String = jamo_form
        .chars()
        .map(|j| {
            let u = j as u32;
            let h = match u {
                0x3131..=0x314E => u - 0x3131 + 0xFFA1,
                0x314F..=0x3154 => u - 0x314F + 0xFFC2,
                0x3155..=0x315A => u - 0x3155 + 0xFFCA,
                0x315B..=0x3160 => u - 0x315B + 0xFFD2,
                0x3161..=0x3163 => u - 0x3161 + 0xFFDA,
                _ => u,
            };
            char::from_u32(h).unwrap()
        })
        .collect();
    // Vowel lengthening: 시발 → 시이바알.
    let repeated: String = e
        .chars()
        .map(|c| {
            let j = jamo(c);
            let v: Vec<char> = j.chars().collect();
            // Only open syllables are drawn out (시이발, not 바알).
            if v.len() == 2 && ('ㅏ'..='ㅣ').contains(&v[1]) {
                // Drawn out on the last part of a compound vowel (뒤이, 와아).
                let last = match v[1] {
                    'ㅘ' => 'ㅏ',
                    'ㅙ' => 'ㅐ',
                    'ㅚ' | 'ㅟ' | 'ㅢ' => 'ㅣ',
                    'ㅝ' => 'ㅓ',
                    'ㅞ' => 'ㅔ',
                    x => x,
                };
                let idx = V.iter().position(|x| *x == last).unwrap() as u32;
                let echo = char::from_u32(0xAC00 + (11 * 21 + idx) * 28).unwrap();
                format!("{c}{echo}")
            } else {
                c.to_string()
            }
        })
        .collect();
    let mut forms = vec![
        ("spacing", spaced(e)),
        ("jamo", jamo_form.clone()),
        ("look-alike", half),
        ("symbols", inserted(e, ".")),
        ("digits", inserted(e, "1")),
        ("zero-width", inserted(e, "\u{200B}")),
        ("repeated", repeated),
    ];
    // Keyboard typing applies to entries of whole syllables: consonant-only
    // ones (`ㅅㅂ` = `tq`) are left out on purpose, since they collide with
    // English abbreviations (`qt`, `ac`, `ws`).
    if e.chars()
        .all(|c| c == ' ' || ('\u{AC00}'..='\u{D7A3}').contains(&c) || c.is_ascii_digit())
    {
        forms.push(("keyboard", keyboard));
    }
    forms
}

fn english_forms(e: &str) -> Vec<(&'static str, String)> {
    let look: String = e
        .chars()
        .map(|c| match c {
            'a' => 'а',
            'e' => 'е',
            'o' => 'о',
            'c' => 'с',
            'p' => 'р',
            'x' => 'х',
            'y' => 'у',
            'i' => 'і',
            _ => c,
        })
        .collect();
    let wide: String = e
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() {
                char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap()
            } else {
                c
            }
        })
        .collect();
    let leet: String = e
        .chars()
        .map(|c| match c {
            'a' => '4',
            'e' => '3',
            'i' => '1',
            'o' => '0',
            's' => '$',
            _ => c,
        })
        .collect();
    let repeated: String = e.chars().flat_map(|c| [c, c]).collect();
    let mixed_case: String = e
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    vec![
        ("spacing", spaced(e)),
        ("look-alike", look),
        ("full-width", wide),
        ("symbols", inserted(e, ".")),
        ("zero-width", inserted(e, "\u{200B}")),
        ("leet", leet),
        ("repeated", repeated),
        ("case", mixed_case),
    ]
}

#[test]
fn evasion_suite_catch_rate() {
    let c = Classifier::shared();
    let lex = c.lexicon();
    let mut per: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let mut missed = Vec::new();
    for (i, entry) in lex.entries.iter().enumerate() {
        if entry.category.is_none() {
            continue;
        }
        let text = &lex.texts[i];
        let korean = text.chars().any(is_hangul);
        let forms = if korean {
            korean_forms(text)
        } else {
            english_forms(text)
        };
        for (name, form) in forms {
            let message = if korean {
                format!("야 {form} 뭐냐")
            } else {
                format!("hey {form} lol")
            };
            // Strict masks any hit, so "caught" is: the lexicon found something.
            let v = c.classify(&message, Policy::Strict);
            let caught = v.action >= Action::Mask && !v.spans.is_empty();
            let slot = per.entry(name).or_default();
            slot.1 += 1;
            if caught {
                slot.0 += 1;
            } else {
                missed.push(format!("{name}: {message}"));
            }
        }
    }
    let (mut caught, mut total) = (0, 0);
    for (name, (k, n)) in &per {
        println!(
            "{name:<11} {k:>4}/{n:<4} {:.1} %",
            100.0 * *k as f64 / *n as f64
        );
        caught += k;
        total += n;
    }
    let rate = caught as f64 / total as f64;
    println!(
        "evasion catch rate: {caught}/{total} = {:.1} %",
        100.0 * rate
    );
    println!("missed (first 40): {:#?}", &missed[..missed.len().min(40)]);
    assert!(rate >= 0.95, "catch rate {rate:.3}");
    for (name, (k, n)) in &per {
        assert!(*k as f64 / *n as f64 >= 0.85, "{name}: {k}/{n}");
    }
}

/// Innocent sentences that contain a listed string.
const INNOCENT: &[&str] = &[
    "시발점에서 다시 시작하자",
    "시발역에서 만나",
    "수박씨 발라 먹어",
    "수박씨발라먹다가 체했어",
    "내 십팔번은 이 노래야",
    "새끼손가락 걸고 약속해",
    "다시 발견했다",
    "마음에 새기고 살게",
    "껌 씹는 소리 좀 줄여줘",
    "고기를 꼭꼭 씹어 먹어라",
    "그 영화 보지 마",
    "아직 보지도 못했어",
    "밤새 자지 않았다",
    "한남동 카페 갔어",
    "이십만원이야",
    "깃발을 들어",
    "하루 세끼 먹어",
    "3개년 계획을 세웠다",
    "홍어삼합 맛있다",
    "자살골을 넣었다",
    "인공지능 연구실",
    "찐빵 먹자",
    "태풍이 큰 영향을 미친 지역",
    "이년 동안 준비했어",
    "십 년 만에 만났다",
    "조지 오웰의 소설",
    "The assassin was caught",
    "Our class assessment is on Monday",
    "Scunthorpe United won again",
    "Dickens wrote long novels",
    "A cocktail at the peacock bar",
    "The therapist helped a lot",
    "grape juice and rapeseed oil",
    "the cumulative document",
    "I passed the bass exam",
    "hello from the shell",
    "shiitake mushrooms are tasty",
    "keep it spick and span",
    "as I said, I was sick",
    "a chink in the armour",
    "the skilled worker",
    "we analysed the title",
];

/// Sentences of [`INNOCENT`] the model (not the lexicon) flags for review:
/// `살게` alone scores 0.47 with the shipped weights. Listed so a change shows.
const KNOWN_MODEL_FLAGS: &[&str] = &["마음에 새기고 살게"];

#[test]
fn false_positive_suite_is_allowed() {
    let c = Classifier::shared();
    let mut bad = Vec::new();
    let mut allowed = 0;
    for s in INNOCENT {
        let v = c.classify(s, Policy::Standard);
        let hits = c.entries_found(s);
        let ok = if KNOWN_MODEL_FLAGS.contains(s) {
            v.action <= Action::Flag && hits.is_empty()
        } else {
            v.action == Action::Allow
        };
        allowed += usize::from(v.action == Action::Allow);
        if !ok {
            bad.push(format!("{s}: {:?} {:.3} {hits:?}", v.action, v.score));
        }
    }
    println!(
        "false-positive suite: {allowed}/{} allowed, none masked or blocked, no lexicon hit",
        INNOCENT.len()
    );
    assert!(bad.is_empty(), "not allowed: {bad:#?}");
}
