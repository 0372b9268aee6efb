//! One STOMP session's state and the dispatch of client frames to the command
//! modules (`connect`, `subscribe`, `send`). Transport-free: frames in, outbound
//! items and domain calls out.

mod connect;
mod send;
mod subscribe;

pub use send::PostBody;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quicktalk_stomp::{Command, Frame, Version};
use tokio_util::sync::CancellationToken;

use super::replier::Replier;
use crate::fanout::{RoomSubscription, UserSubscription};
use crate::model::{RoomId, User};
use crate::state::AppState;

/// Most subscriptions one connection may hold.
const MAX_SUBSCRIPTIONS: usize = 256;
/// `since-seq` replays of one connection that run at once (each holds one page
/// of history); more wait their turn.
const REPLAYS_RUNNING: usize = 2;
/// Most `since-seq` replays one connection may have pending (running or
/// waiting); a SUBSCRIBE beyond that is rejected with `too_many_replays`.
const MAX_REPLAYS: usize = 64;

/// A protocol violation: ERROR frame, then close.
#[derive(Debug)]
pub struct ProtocolError {
    pub message: String,
    pub receipt: Option<String>,
}

impl ProtocolError {
    pub fn new(message: impl Into<String>, frame: &Frame) -> Self {
        ProtocolError {
            message: message.into(),
            receipt: frame.header("receipt").map(str::to_owned),
        }
    }
}

pub type Handled = Result<Flow, ProtocolError>;

#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The client sent DISCONNECT: stop reading.
    Disconnect,
}

/// A connection's subscriptions by id: a short list (a handful per connection,
/// at most [`MAX_SUBSCRIPTIONS`]), so a vector beats a hash map in memory.
#[derive(Default)]
struct Subs(Vec<(Box<str>, Sub)>);

impl Subs {
    fn contains_key(&self, id: &str) -> bool {
        self.0.iter().any(|(k, _)| &**k == id)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn insert(&mut self, id: String, sub: Sub) {
        // Grow one slot at a time: most connections hold one to three.
        self.0.reserve_exact(1);
        self.0.push((id.into_boxed_str(), sub));
    }
    fn remove(&mut self, id: &str) -> Option<Sub> {
        let pos = self.0.iter().position(|(k, _)| &**k == id)?;
        Some(self.0.swap_remove(pos).1)
    }
}

enum Sub {
    /// With the replay's token while a `since-seq` replay is pending: cancelled
    /// by UNSUBSCRIBE and on close, and by the replay itself when it ends.
    Room(Arc<RoomSubscription>, Option<CancellationToken>),
    Events(Arc<UserSubscription>),
    Errors,
}

pub struct Session {
    state: Arc<AppState>,
    replier: Replier,
    url_token: Option<String>,
    /// Shared, so handling a frame does not copy the user's strings.
    user: Option<Arc<User>>,
    version: Version,
    /// How long the client may stay silent before it is dropped (2x its heart-beat).
    read_timeout: Option<Duration>,
    /// How often we must send something (negotiated heart-beat).
    send_every: Option<Duration>,
    subs: Subs,
    typing_sent: HashMap<RoomId, tokio::time::Instant>,
    /// Permits for running replays ([`REPLAYS_RUNNING`]); made on first use.
    replay_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// The client's IP (abuse limits), and the socket slot held after CONNECT.
    client_ip: Option<std::net::IpAddr>,
    _socket_slot: Option<crate::limits::SocketGuard>,
    /// Registered with the hub by user (bans close it), from CONNECT to close.
    registered: bool,
    /// This session in activity reports (contract §8): random, so sessions of
    /// every node differ.
    activity_id: u64,
}

impl Session {
    pub fn new(
        state: Arc<AppState>,
        replier: Replier,
        url_token: Option<String>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Self {
        Session {
            state,
            replier,
            url_token,
            user: None,
            version: Version::V1_2,
            read_timeout: None,
            send_every: None,
            subs: Subs::default(),
            typing_sent: HashMap::new(),
            replay_slots: None,
            client_ip,
            _socket_slot: None,
            registered: false,
            activity_id: rand::random::<u64>() | 1,
        }
    }

    pub fn connected(&self) -> bool {
        self.user.is_some()
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    pub fn send_every(&self) -> Option<Duration> {
        self.send_every
    }

    pub async fn handle(&mut self, frame: Frame) -> Handled {
        let Some(user) = self.user.clone() else {
            return match frame.command {
                Command::Connect | Command::Stomp => self.connect(frame).await,
                _ => Err(ProtocolError::new(
                    "expected CONNECT or STOMP first",
                    &frame,
                )),
            };
        };
        let receipt = frame.header("receipt").map(str::to_owned);
        match frame.command {
            Command::Send => self.send(&user, frame).await,
            Command::Subscribe => self.subscribe(&user, frame).await,
            Command::Unsubscribe => self.unsubscribe(frame),
            Command::Disconnect => {
                self.replier.receipt(receipt.as_deref());
                Ok(Flow::Disconnect)
            }
            // Subscriptions are auto-acknowledged: ACK/NACK have nothing to do.
            Command::Ack | Command::Nack => {
                self.replier.receipt(receipt.as_deref());
                Ok(Flow::Continue)
            }
            Command::Begin | Command::Commit | Command::Abort => {
                self.replier.app_error(
                    &crate::error::AppError::invalid(
                        "unsupported",
                        "STOMP transactions are not supported",
                    ),
                    frame.header("transaction").unwrap_or(""),
                    receipt.as_deref(),
                );
                Ok(Flow::Continue)
            }
            Command::Connect | Command::Stomp => {
                Err(ProtocolError::new("already connected", &frame))
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                Err(ProtocolError::new(
                    format!("{} is a server frame", frame.command.as_str()),
                    &frame,
                ))
            }
        }
    }

    /// Removes every subscription (the connection is closing).
    pub fn close(&mut self) {
        if let Some(user) = &self.user {
            if std::mem::take(&mut self.registered) {
                self.state
                    .hub
                    .unregister_connection(user.id, &self.replier.outlet);
            }
        }
        if let Some(user) = self.user.take() {
            self.state.push.session_closed(user.id, self.activity_id);
            let matching = self.state.matching.clone();
            tokio::spawn(async move { matching.socket_closed(user.id).await });
        }
        for (_, sub) in std::mem::take(&mut self.subs.0) {
            self.end_sub(sub);
        }
    }

    /// Ends one subscription: a pending replay is cancelled and nothing more is
    /// queued for it.
    fn end_sub(&mut self, sub: Sub) {
        match sub {
            Sub::Room(s, replay) => {
                if let Some(t) = replay {
                    t.cancel();
                }
                self.state.hub.unsubscribe_room(&s);
            }
            Sub::Events(s) => self.state.hub.unsubscribe_user(&s),
            Sub::Errors => {
                // Another subscription to the errors queue (if any) takes over.
                let other = self
                    .subs
                    .0
                    .iter()
                    .find(|(_, s)| matches!(s, Sub::Errors))
                    .map(|(id, _)| Arc::from(&**id));
                self.replier.set_errors_sub(other);
            }
        }
    }

    /// Replays pending (running or waiting) on this connection.
    fn pending_replays(&self) -> usize {
        self.subs
            .0
            .iter()
            .filter(|(_, s)| matches!(s, Sub::Room(_, Some(t)) if !t.is_cancelled()))
            .count()
    }
}

/// The first header of `name`, or a protocol error naming it.
fn required<'f>(frame: &'f Frame, name: &str) -> Result<&'f str, ProtocolError> {
    frame
        .header(name)
        .ok_or_else(|| ProtocolError::new(format!("missing header: {name}"), frame))
}
