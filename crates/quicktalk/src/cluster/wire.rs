//! What goes over Kafka, as JSON: requests on the messages topic, events (stored
//! messages, typing, user events, replies to the submitting node) on the events
//! topic.

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::model::{
    AppendRejected, Appended, Media, Message, MessageId, MessageKind, NewMessage, RoomId, UserId,
    UserRef,
};

/// A message accepted by `node`, waiting to be sequenced.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub node: String,
    pub req: u64,
    pub msg: NewMessage,
    /// When `node` accepted it (µs, [`now_us`](super::trace::now_us)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A stored message, for every node's subscribers.
    Message {
        m: WireMessage,
    },
    /// Messages one sequencer batch stored, for one events partition (in
    /// `seq` order per room): one record for many, and each carries the
    /// answer to its submitter, so a stored message needs no `Reply` record.
    Messages {
        ms: Vec<Stored>,
        /// When the batch committed (µs, for the hop histograms).
        #[serde(default)]
        committed: i64,
    },
    Typing {
        room_id: RoomId,
        user: UserRef,
    },
    /// A JSON body for one user's `/user/queue/events`.
    User {
        user_id: UserId,
        body: String,
    },
    /// A user's role or ban changed: every node forgets its cached copy; when
    /// `banned`, their connections close.
    UserChanged {
        user_id: UserId,
        banned: bool,
    },
    /// A stored message became a tombstone.
    MessageDeleted {
        room_id: RoomId,
        id: MessageId,
        seq: i64,
    },
    /// Whom `blocker` blocks now (the whole list).
    BlockChanged {
        blocker: UserId,
        blocked: Vec<UserId>,
    },
    /// A user's activity (push planners on every node).
    Activity {
        user_id: UserId,
        session: u64,
        focused: Option<bool>,
        read: Option<(RoomId, i64)>,
        at: i64,
    },
    /// A user's push subscriptions or levels changed.
    PushChanged {
        user_id: UserId,
    },
    /// The users of `room_id` connected to `node` (replaces what it said before).
    Presence {
        node: String,
        room_id: RoomId,
        online: Vec<UserRef>,
    },
    /// The outcome of `node`'s request `req`.
    Reply {
        node: String,
        req: u64,
        outcome: Outcome,
    },
}

/// One stored message of an [`Event::Messages`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub m: WireMessage,
    /// The request it answers, when its submitter waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyTo>,
    /// When the submitting node accepted it (µs; 0: unknown).
    #[serde(default)]
    pub at: i64,
}

/// A submitting node's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    pub node: String,
    pub req: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    New(WireMessage),
    Duplicate(WireMessage),
    Unchanged,
    RoomNotFound,
    NotMember,
    /// The store refused this record deterministically; the rest of its batch
    /// was stored and the partition moved on.
    Unstorable,
    /// A text or system message to a closed room (an ended random chat).
    RoomClosed,
    /// Could not be decided (e.g. a record below the applied offset): outcome unknown.
    Failed(String),
    /// The record failed on its own, deterministically (undecodable, or the
    /// store refused it): not stored, and retrying it as is will not help.
    Rejected(String),
}

impl From<Result<Appended, AppendRejected>> for Outcome {
    fn from(r: Result<Appended, AppendRejected>) -> Self {
        match r {
            Ok(Appended::New(m)) => Outcome::New(m.into()),
            Ok(Appended::Duplicate(m)) => Outcome::Duplicate(m.into()),
            Ok(Appended::Unchanged) => Outcome::Unchanged,
            Err(AppendRejected::RoomNotFound) => Outcome::RoomNotFound,
            Err(AppendRejected::NotMember) => Outcome::NotMember,
            Err(AppendRejected::Unstorable) => Outcome::Unstorable,
            Err(AppendRejected::RoomClosed) => Outcome::RoomClosed,
        }
    }
}

impl Outcome {
    /// What the submitter hears: a stored message, a rejection, or
    /// `outcome_unknown` when the record could not be decided.
    pub fn into_result(self) -> AppResult<Appended> {
        match self {
            Outcome::New(m) => Ok(Appended::New(m.into())),
            Outcome::Duplicate(m) => Ok(Appended::Duplicate(m.into())),
            Outcome::Unchanged => Ok(Appended::Unchanged),
            Outcome::RoomNotFound => Err(AppendRejected::RoomNotFound.into()),
            Outcome::NotMember => Err(AppendRejected::NotMember.into()),
            Outcome::Unstorable => Err(AppendRejected::Unstorable.into()),
            Outcome::RoomClosed => Err(AppendRejected::RoomClosed.into()),
            Outcome::Failed(_) => Err(AppError::OutcomeUnknown(
                "the message could not be confirmed; retry with the same client_id",
            )),
            Outcome::Rejected(reason) => Err(AppError::invalid("rejected", reason)),
        }
    }
}

/// A stored message as the nodes exchange it (the client-facing JSON differs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMessage {
    pub id: i64,
    pub room_id: RoomId,
    pub seq: i64,
    pub kind: MessageKind,
    pub sender: UserRef,
    pub text: String,
    pub client_id: Option<String>,
    pub sent_at: i64,
    /// Absent in records written before moderation existed.
    #[serde(default)]
    pub masked: bool,
    /// Absent in records written before attachments existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Media>,
}

impl From<Message> for WireMessage {
    fn from(m: Message) -> Self {
        WireMessage {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            kind: m.kind,
            sender: m.sender,
            text: m.text,
            client_id: m.client_id,
            sent_at: m.sent_at,
            masked: m.masked,
            attachments: m.attachments,
        }
    }
}

impl From<WireMessage> for Message {
    fn from(m: WireMessage) -> Self {
        Message {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            kind: m.kind,
            sender: m.sender,
            text: m.text,
            client_id: m.client_id,
            sent_at: m.sent_at,
            masked: m.masked,
            attachments: m.attachments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The moderation events cross nodes intact.
    #[test]
    fn user_changes_and_deletions_travel() {
        let evs = [
            Event::UserChanged {
                user_id: 7,
                banned: true,
            },
            Event::MessageDeleted {
                room_id: 3,
                id: 40,
                seq: 12,
            },
            Event::BlockChanged {
                blocker: 5,
                blocked: vec![9, 2],
            },
            Event::Activity {
                user_id: 5,
                session: u64::MAX,
                focused: Some(false),
                read: Some((3, 40)),
                at: 1_700_000_000_000,
            },
            Event::PushChanged { user_id: 5 },
        ];
        for ev in evs {
            let json = serde_json::to_vec(&ev).unwrap();
            let back: Event = serde_json::from_slice(&json).unwrap();
            assert_eq!(format!("{back:?}"), format!("{ev:?}"));
        }
        let old: Event =
            serde_json::from_str(r#"{"t":"user_changed","user_id":7,"banned":false}"#).unwrap();
        assert!(matches!(
            old,
            Event::UserChanged {
                user_id: 7,
                banned: false
            }
        ));
    }

    #[test]
    fn stored_messages_carry_their_answers() {
        let m = WireMessage {
            id: 40,
            room_id: 3,
            seq: 12,
            kind: MessageKind::Text,
            sender: UserRef {
                id: 9,
                name: "Alice".into(),
                guest: true,
            },
            text: "안녕".into(),
            client_id: Some("c1".into()),
            sent_at: 5,
            masked: false,
            attachments: vec![],
        };
        let ev = Event::Messages {
            ms: vec![Stored {
                m,
                reply: Some(ReplyTo {
                    node: "n1".into(),
                    req: 7,
                }),
                at: 11,
            }],
            committed: 20,
        };
        let back: Event = serde_json::from_slice(&serde_json::to_vec(&ev).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{ev:?}"));
        // Without the optional parts (no submitter waiting, no stamps).
        let bare = r#"{"t":"messages","ms":[{"m":{"id":1,"room_id":3,"seq":1,"kind":"text",
            "sender":{"id":9,"name":"A"},"text":"hi","client_id":null,"sent_at":0}}]}"#;
        let Event::Messages { ms, committed } = serde_json::from_str(bare).unwrap() else {
            panic!("not a messages event");
        };
        assert_eq!((ms[0].reply.clone(), ms[0].at, committed), (None, 0, 0));
    }

    #[test]
    fn an_unstorable_record_travels_as_its_own_rejection() {
        let o: Outcome = Err(AppendRejected::Unstorable).into();
        let json = serde_json::to_string(&o).unwrap();
        let back: Outcome = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_result().unwrap_err().code(), "unstorable");
        let failed = Outcome::Failed("replayed without a row".into());
        assert_eq!(failed.into_result().unwrap_err().code(), "outcome_unknown");
    }

    #[test]
    fn the_senders_guest_status_travels_and_old_records_still_decode() {
        let req = Request {
            node: "n1".into(),
            req: 1,
            msg: NewMessage {
                room_id: 3,
                kind: MessageKind::Text,
                sender: UserRef {
                    id: 9,
                    name: "Alice".into(),
                    guest: true,
                },
                text: "hi".into(),
                client_id: None,
                sent_at: 0,
                moderation: Default::default(),
                attachments: vec![],
            },
            at: None,
        };
        let back: Request = serde_json::from_slice(&serde_json::to_vec(&req).unwrap()).unwrap();
        assert!(back.msg.sender.guest);
        // Written by a node from before the field: a registered sender.
        let old = r#"{"node":"n0","req":2,"msg":{"room_id":3,"kind":"text",
            "sender":{"id":9,"name":"Alice"},"text":"hi","client_id":null,"sent_at":0}}"#;
        let old: Request = serde_json::from_str(old).unwrap();
        assert!(!old.msg.sender.guest);
        let ev = r#"{"t":"typing","room_id":3,"user":{"id":9,"name":"Alice"}}"#;
        assert!(matches!(
            serde_json::from_str::<Event>(ev).unwrap(),
            Event::Typing { user, .. } if !user.guest
        ));
    }
}
