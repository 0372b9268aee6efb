//! Policies: from the evidence (the model's score, the worst lexicon severity)
//! to an [`Action`]. The thresholds are learned with the weights (see
//! [`crate::train`]) and travel in the same file.

use crate::Severity;

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Store and deliver as is.
    Allow,
    /// Store and deliver, and queue for moderator review.
    Flag,
    /// Store and deliver with the spans replaced by `*`.
    Mask,
    /// Do not store.
    Block,
}

impl Action {
    /// The name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Flag => "flag",
            Action::Mask => "mask",
            Action::Block => "block",
        }
    }
}

/// How strict to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// Group rooms. A strong lexicon hit is masked and a severe one blocked
    /// unless the model finds the message fine (a Korean hit at a score below
    /// `lex`) and a mild one is masked when the model is fairly sure (`mild`);
    /// with nothing to mask, block only at a score the training folds
    /// showed to be almost always right (`hard`); flag from the F1-best
    /// threshold (`flag`), or a Korean hit from a lower one (`hit_flag`).
    #[default]
    Standard,
    /// Random chats with strangers: every lexicon hit is masked (mild ones too,
    /// whatever the model says), severe hits and `hard` scores are blocked, and
    /// flagging starts at `strict_flag` (F1-best under this policy).
    Strict,
    /// No moderation: everything is allowed, nothing is computed.
    Off,
}

impl Policy {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Standard => "standard",
            Policy::Strict => "strict",
            Policy::Off => "off",
        }
    }

    /// The policy called `name`.
    pub fn from_name(name: &str) -> Option<Policy> {
        [Policy::Standard, Policy::Strict, Policy::Off]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// Score thresholds, all in 0..1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Standard: flag at or above (F1-best on held-out scores).
    pub flag: f32,
    /// Standard: a strong or severe lexicon hit is masked or blocked at or above.
    pub lex: f32,
    /// Standard: any lexicon hit is flagged at or above.
    pub hit_flag: f32,
    /// Standard: a mild Korean hit is masked at or above.
    pub mild: f32,
    /// Block at or above without any hit (precision-first).
    pub hard: f32,
    /// Strict: flag at or above.
    pub strict_flag: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            flag: 0.5,
            lex: 0.2,
            hit_flag: 0.2,
            mild: 0.8,
            hard: 0.9,
            strict_flag: 0.35,
        }
    }
}

/// The worst lexicon severities found in a message, by how far the model is
/// trusted to overrule them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Worst {
    /// Korean hits: the model was trained on Korean, so under the standard
    /// policy they count only at a score of at least `lex` (or `hit_flag`).
    pub gated: Option<Severity>,
    /// English hits: the model knows little English, so they always count.
    pub direct: Option<Severity>,
}

impl Worst {
    /// Both kinds together.
    pub fn any(self) -> Option<Severity> {
        self.gated.max(self.direct)
    }
}

/// The action for a message with model `score` and lexicon hits `worst`.
/// Where both masking and blocking would do, a message with something to
/// mask is masked.
pub fn decide(policy: Policy, score: f32, worst: Worst, t: &Thresholds) -> Action {
    match policy {
        Policy::Off => Action::Allow,
        Policy::Standard => {
            let gated = if score >= t.lex { worst.gated } else { None };
            let counted = gated.max(worst.direct);
            if counted == Some(Severity::Severe) {
                Action::Block
            } else if counted == Some(Severity::Strong)
                || (worst.gated == Some(Severity::Mild) && score >= t.mild)
            {
                Action::Mask
            } else if score >= t.hard {
                Action::Block
            } else if counted.is_some()
                || (worst.gated.is_some() && score >= t.hit_flag)
                || score >= t.flag
            {
                Action::Flag
            } else {
                Action::Allow
            }
        }
        Policy::Strict => match worst.any() {
            Some(Severity::Severe) => Action::Block,
            Some(_) => Action::Mask,
            None if score >= t.hard => Action::Block,
            None if score >= t.strict_flag => Action::Flag,
            None => Action::Allow,
        },
    }
}

/// The lowest severity whose hits are masked under `policy`.
pub fn mask_from(policy: Policy) -> Severity {
    match policy {
        Policy::Strict => Severity::Mild,
        _ => Severity::Strong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_gates_hits_by_score() {
        let t = Thresholds::default();
        let s = Worst {
            gated: Some(Severity::Strong),
            direct: None,
        };
        let none = Worst::default();
        assert_eq!(decide(Policy::Standard, 0.1, s, &t), Action::Allow);
        assert_eq!(decide(Policy::Standard, 0.3, s, &t), Action::Mask);
        assert_eq!(decide(Policy::Standard, 0.95, none, &t), Action::Block);
        assert_eq!(decide(Policy::Standard, 0.6, none, &t), Action::Flag);
        assert_eq!(decide(Policy::Standard, 0.95, s, &t), Action::Mask);
        assert_eq!(decide(Policy::Strict, 0.1, s, &t), Action::Mask);
        let english = Worst {
            gated: None,
            direct: Some(Severity::Strong),
        };
        assert_eq!(decide(Policy::Standard, 0.01, english, &t), Action::Mask);
        assert_eq!(decide(Policy::Off, 0.99, s, &t), Action::Allow);
    }
}
