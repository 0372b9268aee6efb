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
    /// unless the model finds the message fine (score below `lex`); with no
    /// such hit, block only at a score the training folds showed to be almost
    /// always right (`hard`); flag from the F1-best threshold (`flag`) or any
    /// hit the model does not clear.
    #[default]
    Standard,
    /// Random chats with strangers: every lexicon hit is masked (mild ones too,
    /// whatever the model says), severe hits and `hard` scores are blocked, and
    /// flagging starts at the lower, recall-leaning `strict_flag`.
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
    /// Standard: a lexicon hit counts at or above.
    pub lex: f32,
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
            hard: 0.9,
            strict_flag: 0.35,
        }
    }
}

/// The action for a message with model `score` and worst lexicon hit `worst`.
pub fn decide(policy: Policy, score: f32, worst: Option<Severity>, t: &Thresholds) -> Action {
    match policy {
        Policy::Off => Action::Allow,
        Policy::Standard => {
            let counts = worst.is_some() && score >= t.lex;
            if score >= t.hard || (counts && worst == Some(Severity::Severe)) {
                Action::Block
            } else if counts && worst >= Some(Severity::Strong) {
                Action::Mask
            } else if counts || score >= t.flag {
                Action::Flag
            } else {
                Action::Allow
            }
        }
        Policy::Strict => {
            if score >= t.hard || worst == Some(Severity::Severe) {
                Action::Block
            } else if worst.is_some() {
                Action::Mask
            } else if score >= t.strict_flag {
                Action::Flag
            } else {
                Action::Allow
            }
        }
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
        let s = Some(Severity::Strong);
        assert_eq!(decide(Policy::Standard, 0.1, s, &t), Action::Allow);
        assert_eq!(decide(Policy::Standard, 0.3, s, &t), Action::Mask);
        assert_eq!(decide(Policy::Standard, 0.95, None, &t), Action::Block);
        assert_eq!(decide(Policy::Standard, 0.6, None, &t), Action::Flag);
        assert_eq!(decide(Policy::Strict, 0.1, s, &t), Action::Mask);
        assert_eq!(decide(Policy::Off, 0.99, Some(Severity::Severe), &t), Action::Allow);
    }
}
