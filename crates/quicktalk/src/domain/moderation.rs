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
//!   matching until [`COOLDOWN_MS`] after the latest strike (a strike during a
//!   cool-down extends it: [`cooldown_until`]); the temporary ban
//!   at [`BAN_STRIKES`] within [`BAN_WINDOW_MS`] ([`AUTO_BAN_MS`] long) goes
//!   through an [`AutoBan`] (the moderators' ban service, set once at start:
//!   that module depends on matching, which depends on this one).
//!
//! Pure except for `Escalation`, which reads and writes strikes through the
//! [`Store`]. The classifier does no I/O and allocates nothing for an allowed
//! message (see `quicktalk_moderation`).

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;

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
/// How long (ms) the automatic ban lasts.
pub const AUTO_BAN_MS: i64 = 60 * 60 * 1000;
/// The reason an automatic ban gives.
pub const AUTO_BAN_REASON: &str = "automatic: repeated blocked messages";

/// Bans a user without a moderator (the escalation's temporary ban).
pub trait AutoBan: Send + Sync {
    /// Bans `user` until `until` (ms) for `reason`, everywhere at once.
    fn auto_ban<'a>(
        &'a self,
        user: UserId,
        until: i64,
        reason: &'a str,
    ) -> BoxFuture<'a, AppResult<()>>;
}

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

/// Strikes [`Escalation::check_cooldown`] looks back over.
const STRIKE_HISTORY: u32 = 100;

/// Until when (ms) a user with these strike times (ascending) is in a
/// matching cool-down, if they ever were: a strike starts one when it is the
/// [`COOLDOWN_STRIKES`]th within [`COOLDOWN_WINDOW_MS`], or extends a running
/// one; either way it then lasts until [`COOLDOWN_MS`] after that strike. (So a
/// further blocked message never shortens a cool-down.)
pub fn cooldown_until(strikes: &[i64]) -> Option<i64> {
    let mut until: Option<i64> = None;
    for (i, &s) in strikes.iter().enumerate() {
        let running = until.is_some_and(|u| s < u);
        let from = s - COOLDOWN_WINDOW_MS;
        let in_window = strikes[..=i]
            .iter()
            .rev()
            .take_while(|&&t| t >= from)
            .count();
        if running || in_window >= COOLDOWN_STRIKES as usize {
            until = Some(s.saturating_add(COOLDOWN_MS));
        }
    }
    until
}

/// Escalation for repeat offenders: strikes, the matching cool-down, and the
/// place of the automatic temporary ban.
pub struct Escalation {
    store: Arc<dyn Store>,
    banner: OnceLock<Weak<dyn AutoBan>>,
}

impl Escalation {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Escalation {
            store,
            banner: OnceLock::new(),
        }
    }

    /// Who carries out the automatic ban (set once, at start).
    pub fn set_banner(&self, banner: Weak<dyn AutoBan>) {
        let _ = self.banner.set(banner);
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
            tracing::info!(
                user,
                strikes = strikes_in_30_min,
                "repeat offender: temporary ban"
            );
            let Some(banner) = self.banner.get().and_then(Weak::upgrade) else {
                tracing::error!(user, "no ban service: the temporary ban is not applied");
                return;
            };
            let until = now_ms() + AUTO_BAN_MS;
            if let Err(e) = banner.auto_ban(user, until, AUTO_BAN_REASON).await {
                // Moderators and admins are never banned automatically (403).
                tracing::warn!(error = %e, user, "automatic ban not applied");
            }
        } else if strikes_in_30_min >= COOLDOWN_STRIKES {
            tracing::info!(
                user,
                strikes = strikes_in_30_min,
                "repeat offender: matching cool-down"
            );
        }
    }

    /// `cooldown` (with the wait) while `user` may not enter random matching
    /// (see [`cooldown_until`]; computed from the stored strikes, so every node
    /// agrees).
    pub async fn check_cooldown(&self, user: UserId) -> AppResult<()> {
        let mut strikes = self.store.last_strikes(user, STRIKE_HISTORY).await?;
        let now = now_ms();
        // A cool-down ends at most COOLDOWN_MS after the latest strike.
        if strikes
            .first()
            .is_none_or(|&latest| latest.saturating_add(COOLDOWN_MS) <= now)
        {
            return Ok(());
        }
        strikes.reverse();
        match cooldown_until(&strikes) {
            Some(until) if until > now => Err(AppError::Cooldown {
                retry_after: Duration::from_millis((until - now) as u64),
            }),
            _ => Ok(()),
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
        const MIN: i64 = 60_000;
        assert_eq!(cooldown_until(&[]), None);
        assert_eq!(cooldown_until(&[0, MIN]), None);
        // The third within 10 minutes starts it, until 5 minutes after it.
        assert_eq!(cooldown_until(&[0, MIN, 2 * MIN]), Some(7 * MIN));
        assert_eq!(cooldown_until(&[0, 5 * MIN, 10 * MIN]), Some(15 * MIN));
        assert_eq!(cooldown_until(&[0, 5 * MIN, 10 * MIN + 1]), None);
        // A strike during a cool-down extends it, even with no other strike in
        // the 10 minutes before it.
        assert_eq!(
            cooldown_until(&[0, 30_000, 10 * MIN, 11 * MIN]),
            Some(16 * MIN)
        );
        assert_eq!(
            cooldown_until(&[0, 30_000, 10 * MIN, 14 * MIN, 18 * MIN]),
            Some(23 * MIN)
        );
        // After one ends, a lone strike starts nothing.
        assert_eq!(cooldown_until(&[0, MIN, 2 * MIN, 20 * MIN]), Some(7 * MIN));
    }
}
