//! The push planner's task: it reads committed messages (from this node's
//! pipeline: in multi-node mode the node that sequenced a message is the one
//! that pushes it, so each push is sent once) and the activity every node
//! publishes, keeps the [`Planner`], and hands what falls due to delivery.
//!
//! Per message it needs the room's push targets — members with a push
//! subscription and their levels — cached per room until a join or leave in
//! it, a [`BusEvent::PushChanged`], or a minute passes; and whether each
//! target blocks the sender (their block list, cached, kept current by
//! [`BusEvent::BlockChanged`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::delivery::Outgoing;
use super::notifier::Committed;
use super::planner::{Notice, Planner};
use crate::bus::BusEvent;
use crate::metrics::Metrics;
use crate::model::{now_ms, Message, MessageKind, RoomId, RoomKind, UserId};
use crate::store::push::{default_level, NotifyLevel, PushTarget};
use crate::store::Store;

/// A room's targets are re-read at least this often.
const TARGETS_TTL: Duration = Duration::from_secs(60);
/// Most rooms (and users' block lists) cached; past it the cache starts over.
const CACHE_MAX: usize = 10_000;
/// Longest notification body, in characters.
const BODY_CHARS: usize = 300;
/// Due notifications are looked for at least this often while some wait.
const RECHECK: Duration = Duration::from_millis(250);

/// The monotonic instant of wall-clock ms `due` (never in the past).
fn at(due: i64) -> tokio::time::Instant {
    let ms = (due - now_ms()).max(0) as u64;
    tokio::time::Instant::now() + Duration::from_millis(ms)
}

/// What the planner is told besides messages (from the hub's push watcher).
pub type Signals = mpsc::Receiver<BusEvent>;

struct RoomTargets {
    kind: RoomKind,
    name: String,
    targets: Vec<PushTarget>,
    loaded: Instant,
}

pub struct Worker {
    pub store: Arc<dyn Store>,
    pub planner: Planner,
    pub out: mpsc::Sender<Outgoing>,
    pub metrics: Arc<Metrics>,
    /// Notifications say only "New message" (the operator's privacy choice).
    pub hide_text: bool,
    rooms: HashMap<RoomId, Arc<RoomTargets>>,
    blocks: HashMap<UserId, Arc<HashSet<UserId>>>,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        planner: Planner,
        out: mpsc::Sender<Outgoing>,
        metrics: Arc<Metrics>,
        hide_text: bool,
    ) -> Self {
        Worker {
            store,
            planner,
            out,
            metrics,
            hide_text,
            rooms: HashMap::new(),
            blocks: HashMap::new(),
        }
    }

    /// Wakes when the earliest pending notification falls due (as the planner
    /// says after each change), and at least every [`RECHECK`] while any
    /// waits (a deferred one's new time is only known inside the planner).
    pub async fn run(
        mut self,
        mut committed: Committed,
        mut signals: Signals,
        stop: CancellationToken,
    ) {
        let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
        let mut wake = far();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                m = committed.recv() => match m {
                    Some(m) => {
                        self.metrics.push_queue_depth.dec();
                        if let Some(due) = self.message(&m).await {
                            wake = wake.min(at(due));
                        }
                    }
                    None => break,
                },
                s = signals.recv() => match s {
                    Some(s) => self.signal(s),
                    None => break,
                },
                _ = tokio::time::sleep_until(wake) => {
                    self.send_due();
                    wake = match self.planner.next_due() {
                        Some(due) => at(due).min(tokio::time::Instant::now() + RECHECK),
                        None => far(),
                    };
                }
            }
        }
    }

    fn send_due(&mut self) {
        for due in self.planner.due(now_ms()) {
            match self.out.try_send(Outgoing::from(due)) {
                Ok(()) => self.metrics.push_queue_depth.inc(),
                Err(_) => self
                    .metrics
                    .push_failed
                    .with_label_values(&["dropped"])
                    .inc(),
            }
        }
    }

    pub fn signal(&mut self, ev: BusEvent) {
        match ev {
            BusEvent::Activity {
                user_id,
                session,
                focused,
                read,
                at,
            } => {
                let session = (session != 0).then_some(session);
                self.planner.activity(user_id, session, focused, at);
                if let Some((room, seq)) = read {
                    self.planner.read(user_id, room, seq, at);
                }
            }
            BusEvent::PushChanged { .. } => self.rooms.clear(),
            BusEvent::BlockChanged { blocker, blocked } if self.blocks.contains_key(&blocker) => {
                self.blocks
                    .insert(blocker, Arc::new(blocked.into_iter().collect()));
            }
            _ => {}
        }
    }

    /// A committed message: membership changes drop the room's targets; a
    /// text message becomes a notice for each target it concerns.
    /// The earliest due time of a notification it started, if any.
    pub async fn message(&mut self, m: &Message) -> Option<i64> {
        match m.kind {
            MessageKind::Join | MessageKind::Leave => {
                self.rooms.remove(&m.room_id);
                return None;
            }
            MessageKind::Text => {}
            _ => return None,
        }
        let now = now_ms();
        self.planner
            .posted(m.sender.id, m.room_id, m.sent_at.min(now));
        let room = self.targets(m.room_id).await?;
        let mut first_due: Option<i64> = None;
        for t in &room.targets {
            if t.user_id == m.sender.id {
                continue;
            }
            let level = t.level.unwrap_or_else(|| default_level(room.kind));
            let mentioned = t.username.as_deref().is_some_and(|u| mentions(&m.text, u));
            let wanted = match level {
                NotifyLevel::All => true,
                NotifyLevel::Mentions => mentioned,
                NotifyLevel::None => false,
            };
            if !wanted || self.blocks_sender(t.user_id, m.sender.id).await {
                continue;
            }
            let high = mentioned || room.kind != RoomKind::Group;
            let (title, body) = self.texts(&room, m);
            let due = self.planner.message(
                t.user_id,
                Notice {
                    room: m.room_id,
                    seq: m.seq,
                    title,
                    body,
                    high,
                    sent_at: m.sent_at,
                },
                now,
            );
            first_due = match (first_due, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        first_due
    }

    fn texts(&self, room: &RoomTargets, m: &Message) -> (String, String) {
        if self.hide_text {
            return ("New message".into(), String::new());
        }
        let mut text = m.text.trim().to_owned();
        if text.is_empty() && !m.attachments.is_empty() {
            let names: Vec<&str> = m.attachments.iter().map(|a| a.name.as_str()).collect();
            text = format!("📎 {}", names.join(", "));
        }
        let text = shorten(&text, BODY_CHARS);
        match room.kind {
            RoomKind::Group => (room.name.clone(), format!("{}: {text}", m.sender.name)),
            _ => (m.sender.name.clone(), text),
        }
    }

    async fn targets(&mut self, room: RoomId) -> Option<Arc<RoomTargets>> {
        if let Some(t) = self.rooms.get(&room) {
            if t.loaded.elapsed() < TARGETS_TTL {
                return Some(t.clone());
            }
        }
        let (info, targets) =
            match tokio::try_join!(self.store.room(room), self.store.push_targets(room)) {
                Ok((Some(info), targets)) => (info, targets),
                Ok((None, _)) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, room, "reading a room's push targets");
                    return None;
                }
            };
        if self.rooms.len() >= CACHE_MAX {
            self.rooms.clear();
        }
        let t = Arc::new(RoomTargets {
            kind: info.kind,
            name: info.name,
            targets,
            loaded: Instant::now(),
        });
        self.rooms.insert(room, t.clone());
        Some(t)
    }

    async fn blocks_sender(&mut self, target: UserId, sender: UserId) -> bool {
        if let Some(b) = self.blocks.get(&target) {
            return b.contains(&sender);
        }
        match self.store.blocked_by(target).await {
            Ok(list) => {
                if self.blocks.len() >= CACHE_MAX {
                    self.blocks.clear();
                }
                let set: Arc<HashSet<UserId>> = Arc::new(list.into_iter().collect());
                let hit = set.contains(&sender);
                self.blocks.insert(target, set);
                hit
            }
            // Unknown: say nothing rather than push a blocked user's words.
            Err(_) => true,
        }
    }
}

/// Whether `text` mentions `@username` (case-insensitive; the name must end
/// there: `@bob` is not in `@bobby`).
pub fn mentions(text: &str, username: &str) -> bool {
    let lower = text.to_lowercase();
    let needle = format!("@{}", username.to_lowercase());
    lower.match_indices(&needle).any(|(i, _)| {
        let before_ok = lower[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_name_char(c));
        // A name may not end in a dot, so one right after it is punctuation.
        let mut rest = lower[i + needle.len()..].chars();
        let after_ok = match rest.next() {
            None => true,
            Some('.') => rest.next().is_none_or(|c| !is_name_char(c)),
            Some(c) => !is_name_char(c),
        };
        before_ok && after_ok
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_is_the_whole_name() {
        assert!(mentions("hi @Bob!", "bob"));
        assert!(mentions("@bob", "bob"));
        assert!(mentions("@bob. see you", "bob"));
        assert!(mentions("안녕 @bob님", "bob"));
        assert!(!mentions("hi @bobby", "bob"));
        assert!(!mentions("mail me: x@bob", "bob"));
        assert!(!mentions("bob", "bob"));
        assert!(mentions("@al.ice yes", "al.ice"));
        assert!(!mentions("@al.ice yes", "al"));
    }

    #[test]
    fn bodies_are_cut_on_a_character() {
        assert_eq!(shorten("안녕하세요", 2), "안녕…");
        assert_eq!(shorten("ab", 2), "ab");
    }
}
