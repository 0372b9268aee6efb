//! QuickTalk's message classifier for Korean and English: what a chat message
//! is (profanity, sexual, hate, threat, belittling, self-harm), how sure we are,
//! and what to do with it under a [`Policy`] (allow, flag, mask or block), with
//! the character ranges to mask.
//!
//! Three parts, all compiled in (no I/O, no network, nothing loaded at run time):
//! 1. **Normalization** ([`fold`], [`symbols`], [`hangul`]): NFKC, case,
//!    look-alikes, zero-width characters; Hangul spelt as basic jamo so that
//!    `시발`, `ㅅㅣㅂㅏㄹ`, `십알`, `시1발`, `tlqkf` read alike; leet and `*` in Latin.
//! 2. **Lexicon** ([`lexicon`], `data/lexicon.txt`): entries with category and
//!    severity, an allow-list of innocent words that contain them.
//! 3. **Learned model** ([`model`], `data/weights.bin`): logistic regression over
//!    hashed character n-grams of the folded text plus the lexicon hits, trained
//!    by `examples/train.rs` ([`train`]); it gives the score and gates the lexicon
//!    (a strong hit is masked unless the model is confident the message is fine).
//!
//! ```
//! use quicktalk_moderation::{classify, Action, Policy};
//! let v = classify("이 시1발 뭐하냐", Policy::Standard);
//! assert_ne!(v.action, Action::Allow);
//! assert_eq!(v.masked("이 시1발 뭐하냐"), "이 *** 뭐하냐");
//! assert_eq!(classify("시발점에서 출발", Policy::Standard).spans, vec![]);
//! ```

pub mod fold;
pub mod hangul;
pub mod lexicon;
pub mod model;
pub mod policy;
pub mod symbols;
pub mod train;

mod classifier;

pub use classifier::{classify, Analysis, Classifier};
pub use policy::{Action, Policy, Thresholds};

/// What a message (or a lexicon entry) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Swearing (`씨발`, `fuck`).
    Profanity,
    /// Sexual content (`보지`, `porn`).
    Sexual,
    /// Slurs against a group (`김치녀`, `faggot`).
    Hate,
    /// Threats of violence (`죽여버린다`, `i will kill you`).
    Threat,
    /// Insults and belittling (`병신`, `idiot`).
    Belittling,
    /// Self-harm, or urging it (`자살해`, `kys`).
    SelfHarm,
}

impl Category {
    /// Every category, in output order.
    pub const ALL: [Category; 6] = [
        Category::Profanity,
        Category::Sexual,
        Category::Hate,
        Category::Threat,
        Category::Belittling,
        Category::SelfHarm,
    ];

    /// The name used in JSON and in the lexicon file.
    pub fn name(self) -> &'static str {
        match self {
            Category::Profanity => "profanity",
            Category::Sexual => "sexual",
            Category::Hate => "hate",
            Category::Threat => "threat",
            Category::Belittling => "belittling",
            Category::SelfHarm => "self_harm",
        }
    }

    /// The category called `name`.
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of categories (a bit set: copying it allocates nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Categories(u8);

impl Categories {
    /// Adds `c`.
    pub fn insert(&mut self, c: Category) {
        self.0 |= c.bit();
    }

    /// Whether `c` is in the set.
    pub fn contains(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The categories in [`Category::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

/// How bad a lexicon entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Rude or borderline (`미친`, `damn`): at most flagged under the standard policy.
    Mild = 1,
    /// Clearly abusive (`씨발`, `fuck`): masked.
    Strong = 2,
    /// Slurs, threats, urging self-harm: blocked.
    Severe = 3,
}

/// The verdict on one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What to do with it.
    pub action: Action,
    /// The categories of the lexicon entries found.
    pub categories: Categories,
    /// How likely the message is abusive, 0..1 (the learned model).
    pub score: f32,
    /// Char ranges of the original text to replace with `*` (sorted, disjoint;
    /// empty unless the action is `mask` or `block`).
    pub spans: Vec<std::ops::Range<usize>>,
}

impl Verdict {
    /// The verdict on a message nobody looked at.
    pub fn allow() -> Verdict {
        Verdict {
            action: Action::Allow,
            categories: Categories::default(),
            score: 0.0,
            spans: Vec::new(),
        }
    }

    /// `text` with every char in [`Verdict::spans`] replaced by `*`.
    pub fn masked(&self, text: &str) -> String {
        mask(text, &self.spans)
    }
}

/// `text` with the chars in `spans` (sorted char ranges) replaced by `*`, one per char.
pub fn mask(text: &str, spans: &[std::ops::Range<usize>]) -> String {
    if spans.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut next = spans.iter().peekable();
    for (i, c) in text.chars().enumerate() {
        while next.peek().is_some_and(|r| r.end <= i) {
            next.next();
        }
        if next.peek().is_some_and(|r| r.contains(&i)) {
            out.push('*');
        } else {
            out.push(c);
        }
    }
    out
}
