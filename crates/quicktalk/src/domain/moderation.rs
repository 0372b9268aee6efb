//! Moderation in the message path (issue 11, contract §5).
//!
//! Owns three things, and nothing else decides them:
//! - [`moderate_text`]: the one function every user-authored text passes
//!   before it is stored (a posted message today; any later edit path must call
//!   it too): text + the room's policy → the text to store and the
//!   [`Moderated`] record the store applies (mask flag, review-queue flag), or
//!   `moderated` (blocked: not stored). [`text_policy`] maps a room to its
//!   classifier policy (random chats are always strict).
//! - [`check_name`] and [`mask_reason`]: display names, nicknames and room
//!   names are public, so anything strict moderation would mask or block is
//!   refused (`moderated`); report reasons are stored masked (standard policy).
//! - [`Escalation`]: every blocked message is a strike (stored, so every node
//!   sees it); [`COOLDOWN_STRIKES`] within [`COOLDOWN_WINDOW_MS`] pause random
//!   matching until [`COOLDOWN_MS`] after the latest strike; the temporary ban
//!   at [`BAN_STRIKES`] within [`BAN_WINDOW_MS`] goes in
//!   [`Escalation::after_strike`] (the ban hook).
//!
//! Pure except for `Escalation`, which reads and writes strikes through the
//! [`Store`]. The classifier does no I/O and allocates nothing for an allowed
//! message (see `quicktalk_moderation`).

use std::sync::Arc;
use std::time::Duration;

use quicktalk_moderation::{Action, Classifier, Policy, Verdict};

use crate::error::{AppError, AppResult};
use crate::model::{now_ms, Flag, Moderated, RoomKind, RoomPolicy, UserId};
use crate::store::Store;

/// Blocked messages within [`COOLDOWN_WINDOW_MS`] that start a matching cool-down.
pub const COOLDOWN_STRIKES: u32 = 3;
/// The window (ms) in which [`COOLDOWN_STRIKES`] strikes start a cool-down.
pub const COOLDOWN_WINDOW_MS: i64 = 10 * 60 * 1000;
/// How long (ms) after the latest strike a cool-down lasts.
pub const COOLDOWN_MS: i64 = 5 * 60 * 1000;
/// Blocked messages within [`BAN_WINDOW_MS`] that earn a temporary ban.
pub const BAN_STRIKES: u32 = 6;
/// The window (ms) in which [`BAN_STRIKES`] strikes earn a temporary ban.
pub const BAN_WINDOW_MS: i64 = 30 * 60 * 1000;

/// The classifier policy for messages in a room of `kind` whose creator chose
/// `policy`: random chats with strangers are always strict, whatever is stored.
pub fn text_policy(kind: RoomKind, policy: RoomPolicy) -> Policy {
    if kind == RoomKind::Random {
        return Policy::Strict;
    }
    match policy {
        RoomPolicy::Off => Policy::Off,
        RoomPolicy::Standard => Policy::Standard,
        RoomPolicy::Strict => Policy::Strict,
    }
}

fn category_names(v: &Verdict) -> Vec<&'static str> {
    v.categories.iter().map(|c| c.name()).collect()
}

/// The review-queue flag for a verdict: its categories and score.
fn flag_of(v: &Verdict) -> Flag {
    Flag {
        categories: category_names(v).into_iter().map(str::to_owned).collect(),
        score_milli: (v.score.clamp(0.0, 1.0) * 1000.0).round() as u16,
    }
}

/// Moderates a user-authored text (already validated) under `policy`:
/// `allow` → as is; `flag` → as is, queued for review; `mask` → the hits
/// replaced by `*` (one per character), marked masked and queued; `block` →
/// `Err(moderated)` with the categories. [`Policy::Off`] does not run the
/// classifier.
pub fn moderate_text(text: String, policy: Policy) -> AppResult<(String, Moderated)> {
    if policy == Policy::Off {
        return Ok((text, Moderated::default()));
    }
    let v = Classifier::shared().classify(&text, policy);
    match v.action {
        Action::Allow => Ok((text, Moderated::default())),
        Action::Flag => Ok((
            text,
            Moderated {
                masked: false,
                flag: Some(flag_of(&v)),
            },
        )),
        Action::Mask => {
            let masked = v.masked(&text);
            Ok((
                masked,
                Moderated {
                    masked: true,
                    flag: Some(flag_of(&v)),
                },
            ))
        }
        Action::Block => Err(AppError::Moderated {
            message: "this message was blocked by moderation and not sent".into(),
            categories: category_names(&v),
        }),
    }
}

/// Refuses a public name (display name, nickname, username, room name) that
/// strict moderation would mask or block: `moderated` with the categories. A
/// masked name is never stored instead (the user would not have chosen it).
pub fn check_name(name: &str, what: &'static str) -> AppResult<()> {
    let v = Classifier::shared().classify(name, Policy::Strict);
    match v.action {
        Action::Mask | Action::Block => Err(AppError::Moderated {
            message: format!("this {what} is not allowed; choose another").into(),
            categories: category_names(&v),
        }),
        Action::Allow | Action::Flag => Ok(()),
    }
}

/// A report reason as stored: what the standard policy would mask (or, for a
/// reason it would block, every hit) replaced by `*`.
pub fn mask_reason(reason: &str) -> String {
    Classifier::shared()
        .classify(reason, Policy::Standard)
        .masked(reason)
}

/// Until when (ms) a user whose latest strike was at `last` is in a matching
/// cool-down at `now`, given how many strikes they have within
/// [`COOLDOWN_WINDOW_MS`] up to `last` (`last` included); `None` if not.
pub fn cooldown_until(now: i64, last: i64, strikes_in_window: u32) -> Option<i64> {
    let until = last.saturating_add(COOLDOWN_MS);
    (strikes_in_window >= COOLDOWN_STRIKES && until > now).then_some(until)
}

/// Escalation for repeat offenders: strikes, the matching cool-down, and the
/// place of the automatic temporary ban.
pub struct Escalation {
    store: Arc<dyn Store>,
}

impl Escalation {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Escalation { store }
    }

    /// Records a strike against `user` (a message of theirs was blocked) and
    /// escalates. A storage failure is logged: the message stays blocked.
    pub async fn strike(&self, user: UserId) {
        let now = now_ms();
        let recent = async {
            self.store.add_strike(user, now).await?;
            self.store.strikes_since(user, now - BAN_WINDOW_MS).await
        };
        match recent.await {
            Ok(n) => self.after_strike(user, n).await,
            Err(e) => tracing::error!(error = %e, user, "recording a moderation strike"),
        }
    }

    /// Called after every strike with the user's strikes in the last
    /// [`BAN_WINDOW_MS`] (this one included).
    async fn after_strike(&self, user: UserId, strikes_in_30_min: u32) {
        if strikes_in_30_min >= BAN_STRIKES {
            // ban hook: a temporary ban (the ban service, issue 11 part 4) goes here.
            tracing::info!(
                user,
                strikes = strikes_in_30_min,
                "repeat offender: temporary ban due"
            );
        } else if strikes_in_30_min >= COOLDOWN_STRIKES {
            tracing::info!(
                user,
                strikes = strikes_in_30_min,
                "repeat offender: matching cool-down"
            );
        }
    }

    /// `cooldown` (with the wait) while `user` may not enter random matching:
    /// their latest strike is less than [`COOLDOWN_MS`] old and at least
    /// [`COOLDOWN_STRIKES`] fall within the [`COOLDOWN_WINDOW_MS`] up to it.
    pub async fn check_cooldown(&self, user: UserId) -> AppResult<()> {
        let Some(last) = self.store.last_strike(user).await? else {
            return Ok(());
        };
        let now = now_ms();
        if last.saturating_add(COOLDOWN_MS) <= now {
            return Ok(());
        }
        let n = self
            .store
            .strikes_since(user, last - COOLDOWN_WINDOW_MS)
            .await?;
        match cooldown_until(now, last, n) {
            Some(until) => Err(AppError::Cooldown {
                retry_after: Duration::from_millis((until - now) as u64),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_chats_are_always_strict() {
        for p in [RoomPolicy::Off, RoomPolicy::Standard, RoomPolicy::Strict] {
            assert_eq!(text_policy(RoomKind::Random, p), Policy::Strict);
        }
        assert_eq!(text_policy(RoomKind::Group, RoomPolicy::Off), Policy::Off);
        assert_eq!(
            text_policy(RoomKind::Direct, RoomPolicy::Standard),
            Policy::Standard
        );
    }

    #[test]
    fn each_action_is_applied() {
        let (t, m) = moderate_text("hello there".into(), Policy::Standard).unwrap();
        assert_eq!((t.as_str(), m), ("hello there", Moderated::default()));
        let (t, m) = moderate_text("fuck you".into(), Policy::Standard).unwrap();
        assert_eq!(t, "**** you");
        assert!(m.masked);
        assert_eq!(m.flag.unwrap().categories, vec!["profanity"]);
        let (t, m) = moderate_text("this is damn good".into(), Policy::Standard).unwrap();
        assert_eq!(t, "this is damn good");
        assert!(!m.masked && m.flag.is_some());
        let e = moderate_text("kill yourself".into(), Policy::Standard).unwrap_err();
        assert_eq!(e.code(), "moderated");
        assert_eq!(e.categories(), Some(&["self_harm"][..]));
        let (t, m) = moderate_text("kill yourself".into(), Policy::Off).unwrap();
        assert_eq!((t.as_str(), m), ("kill yourself", Moderated::default()));
    }

    #[test]
    fn names_are_checked_strictly_and_reasons_masked() {
        assert!(check_name("Alice 님", "display name").is_ok());
        assert_eq!(
            check_name("damn", "display name").unwrap_err().code(),
            "moderated"
        );
        assert_eq!(mask_reason("he said fuck you"), "he said **** you");
        assert_eq!(mask_reason("spam links"), "spam links");
    }

    #[test]
    fn a_cooldown_needs_enough_strikes_and_ends_after_the_latest() {
        let last = 1_000_000;
        assert_eq!(cooldown_until(last, last, 2), None);
        assert_eq!(cooldown_until(last, last, 3), Some(last + COOLDOWN_MS));
        assert_eq!(
            cooldown_until(last + COOLDOWN_MS - 1, last, 4),
            Some(last + COOLDOWN_MS)
        );
        assert_eq!(cooldown_until(last + COOLDOWN_MS, last, 4), None);
    }
}
