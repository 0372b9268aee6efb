//! The classifier: lexicon and model compiled in, built once, then
//! [`Classifier::classify`] per message. Work buffers are per thread and reused,
//! so a message that is allowed costs no allocation; one with spans allocates
//! only its span list.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use crate::fold::{fold_into, Folded};
use crate::lexicon::{Hit, Lexicon, Stream};
use crate::model::{self, FeatureScratch, Model};
use crate::policy::{self, Policy, Worst};
use crate::symbols::{self, Streams};
use crate::{Categories, Severity, Verdict};

/// The lexicon source compiled in.
pub const LEXICON: &str = include_str!("../data/lexicon.txt");
/// The weights compiled in (written by `examples/train.rs`).
pub const WEIGHTS: &[u8] = include_bytes!("../data/weights.bin");

/// Lexicon + model.
#[derive(Debug)]
pub struct Classifier {
    lexicon: Lexicon,
    model: Model,
}

#[derive(Default)]
struct Scratch {
    folded: Vec<Folded>,
    streams: Streams,
    hits: Vec<Hit>,
    allowed: Vec<Hit>,
    allowed_ranges: Vec<Range<u32>>,
    features: Vec<(u32, f32)>,
    feature_scratch: FeatureScratch,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Everything the classifier found in a message, before any policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The model's score.
    pub score: f32,
    /// The worst severities among the lexicon hits.
    pub worst: Worst,
    /// The hits' categories.
    pub categories: Categories,
    /// Each hit: its severity and char range in the original text.
    pub hits: Vec<(Severity, Range<usize>)>,
    /// The features (for training).
    pub features: Vec<(u32, f32)>,
}

/// The verdict on `text` under `policy`, from the compiled-in classifier.
pub fn classify(text: &str, policy: Policy) -> Verdict {
    Classifier::shared().classify(text, policy)
}

impl Classifier {
    /// The compiled-in classifier, built on first use.
    pub fn shared() -> &'static Classifier {
        static SHARED: OnceLock<Classifier> = OnceLock::new();
        SHARED.get_or_init(|| {
            Classifier::new(LEXICON, WEIGHTS)
                .expect("the compiled-in lexicon and weights are valid")
        })
    }

    /// A classifier from a lexicon source and a weights file.
    pub fn new(
        lexicon: &str,
        weights: &[u8],
    ) -> Result<Classifier, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Classifier {
            lexicon: Lexicon::parse(lexicon)?,
            model: Model::decode(weights)?,
        })
    }

    /// The same lexicon with another model (training and evaluation).
    pub fn with_model(&self, model: Model) -> Classifier {
        Classifier {
            lexicon: Lexicon::parse(LEXICON).expect("the compiled-in lexicon is valid"),
            model,
        }
    }

    /// The lexicon.
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs normalization, lexicon and features on `text`, then calls `f`.
    fn run<R>(&self, text: &str, f: impl FnOnce(&Classifier, &Scratch, f32) -> R) -> R {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let s = &mut *guard;
            fold_into(text, &mut s.folded);
            symbols::build(&s.folded, &mut s.streams);
            self.lexicon.find(&s.streams, &mut s.hits, &mut s.allowed);
            s.allowed_ranges.clear();
            for h in &s.allowed {
                let r = Self::hit_range(&s.streams, h);
                s.allowed_ranges.push(r.start as u32..r.end as u32);
            }
            model::features(
                &s.folded,
                &s.streams.hangul,
                &s.hits,
                &s.allowed_ranges,
                &self.lexicon,
                &mut s.feature_scratch,
                &mut s.features,
            );
            let score = self.model.score(&s.features);
            f(self, s, score)
        })
    }

    fn hit_range(s: &Streams, h: &Hit) -> Range<usize> {
        let syms = match h.stream {
            Stream::Hangul => &s.hangul,
            Stream::Latin => &s.latin,
        };
        syms[h.start as usize].origin as usize..syms[h.last as usize].origin as usize + 1
    }

    /// The verdict on `text` under `policy`.
    pub fn classify(&self, text: &str, policy: Policy) -> Verdict {
        if policy == Policy::Off {
            return Verdict::allow();
        }
        self.run(text, |c, s, score| {
            let mut categories = Categories::default();
            let mut worst = Worst::default();
            for h in &s.hits {
                let e = c.lexicon.entries[h.entry as usize];
                if let Some(cat) = e.category {
                    categories.insert(cat);
                }
                worst.add(h.stream, e.severity);
            }
            let action = policy::decide(policy, score, worst, &c.model.thresholds);
            let mut spans = Vec::new();
            if action >= crate::Action::Mask {
                let from = if action == crate::Action::Block {
                    Severity::Mild
                } else {
                    policy::mask_from(policy)
                };
                for h in &s.hits {
                    if c.lexicon.entries[h.entry as usize].severity >= from {
                        spans.push(Self::hit_range(&s.streams, h));
                    }
                }
                if spans.is_empty() {
                    // Masked for a mild hit the model is sure about.
                    spans.extend(s.hits.iter().map(|h| Self::hit_range(&s.streams, h)));
                }
                merge(&mut spans);
            }
            Verdict {
                action,
                categories,
                score,
                spans,
            }
        })
    }

    /// Everything found in `text`, before any policy.
    pub fn analyze(&self, text: &str) -> Analysis {
        self.run(text, |c, s, score| {
            let mut categories = Categories::default();
            let mut worst = Worst::default();
            let mut hits = Vec::new();
            for h in &s.hits {
                let e = c.lexicon.entries[h.entry as usize];
                if let Some(cat) = e.category {
                    categories.insert(cat);
                }
                worst.add(h.stream, e.severity);
                hits.push((e.severity, Self::hit_range(&s.streams, h)));
            }
            Analysis {
                score,
                worst,
                categories,
                hits,
                features: s.features.clone(),
            }
        })
    }

    /// The texts of the lexicon entries found in `text` (tests, tuning).
    pub fn entries_found(&self, text: &str) -> Vec<String> {
        self.run(text, |c, s, _| {
            s.hits
                .iter()
                .map(|h| c.lexicon.texts[h.entry as usize].clone())
                .collect()
        })
    }
}

impl Worst {
    fn add(&mut self, stream: Stream, severity: Severity) {
        let slot = match stream {
            Stream::Hangul => &mut self.gated,
            Stream::Latin => &mut self.direct,
        };
        *slot = (*slot).max(Some(severity));
    }
}

/// Sorts ranges and merges overlapping or touching ones.
fn merge(spans: &mut Vec<Range<usize>>) {
    spans.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for r in spans.drain(..) {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    *spans = out;
}
