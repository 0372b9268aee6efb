//! The domain's data types and their JSON shapes (contract §2 and §3).
//!
//! Everything here is plain data: no I/O, no locking. Ids are 64-bit integers
//! assigned by the store; times are UTC milliseconds, rendered as RFC 3339.

use serde::{Deserialize, Serialize};

pub type UserId = i64;
pub type RoomId = i64;
pub type MessageId = i64;

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 UTC with millisecond precision, e.g. `2026-11-22T01:02:03.456Z`.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The id of an uploaded file: 22 characters of URL-safe base64 (128 random
/// bits), so ids cannot be guessed or enumerated.
pub type MediaId = String;

/// Whether `s` has the shape of a [`MediaId`] (checked before any lookup).
pub fn is_media_id(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What a client may do with a file: show it inline or offer a download
/// (contract §6 `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    File,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::File => "file",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(MediaKind::Image),
            "video" => Some(MediaKind::Video),
            "audio" => Some(MediaKind::Audio),
            "file" => Some(MediaKind::File),
            _ => None,
        }
    }
}

/// An uploaded file (contract §6). Its bytes live in the media store under
/// `orig/<id>` (and `thumb/<id>` when `thumbnail`); this is its metadata row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    pub id: MediaId,
    pub owner: UserId,
    /// The sanitized (and moderated) file name.
    pub name: String,
    /// Sniffed from the bytes.
    pub mime: String,
    pub kind: MediaKind,
    /// Bytes of the stored original.
    pub size: u64,
    /// Images: as displayed (EXIF orientation applied).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A thumbnail is stored under `thumb/<id>`.
    pub thumbnail: bool,
    pub created_at: i64,
}

/// The JSON of a media item: `{"id","name","mime","size","kind","width"?,"height"?,"url","thumbnail_url"?}`.
#[derive(Serialize, utoipa::ToSchema)]
struct MediaJson<'a> {
    #[schema(value_type = String)]
    id: &'a str,
    #[schema(value_type = String)]
    name: &'a str,
    #[schema(value_type = String)]
    mime: &'a str,
    size: u64,
    kind: MediaKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail_url: Option<String>,
}

impl Media {
    /// `GET` path of the original (needs the bearer token or a signature).
    pub fn url(&self) -> String {
        format!("/api/v1/media/{}", self.id)
    }
    /// `GET` path of the thumbnail, when there is one.
    pub fn thumbnail_url(&self) -> Option<String> {
        self.thumbnail
            .then(|| format!("/api/v1/media/{}/thumbnail", self.id))
    }
}

/// A media item as clients see it (the derived `Serialize` of [`Media`] is the
/// nodes' and the pipeline's full form).
pub struct MediaView<'a>(pub &'a Media);

impl Serialize for MediaView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        MediaJson {
            id: &m.id,
            name: &m.name,
            mime: &m.mime,
            size: m.size,
            kind: m.kind,
            width: m.width,
            height: m.height,
            url: m.url(),
            thumbnail_url: m.thumbnail_url(),
        }
        .serialize(s)
    }
}

/// The OpenAPI schema of [`MediaView`] is that of the struct it serializes as.
impl utoipa::PartialSchema for MediaView<'_> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <MediaJson<'static> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for MediaView<'_> {
    fn name() -> std::borrow::Cow<'static, str> {
        "Media".into()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <MediaJson<'static> as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A message's attachments as clients see them.
struct MediaList<'a>(&'a [Media]);

impl Serialize for MediaList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(MediaView))
    }
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    /// `None` for guests.
    pub username: Option<String>,
    pub display_name: String,
    pub guest: bool,
    /// What the user may do beyond chatting (contract §5).
    #[serde(default)]
    pub role: Role,
    /// Banned until this time (ms; [`BAN_FOREVER`] = until lifted); `None` when not banned.
    /// Not shown in user JSON.
    #[serde(default, skip_serializing)]
    pub banned_until: Option<i64>,
    /// A short line under the name (contract §7); `None` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// The avatar's id (its objects are `avatar/<id>_256` and `avatar/<id>_64`);
    /// shown as `"avatar_url"` ([`avatar_url`]).
    #[serde(
        default,
        rename = "avatar_url",
        skip_serializing_if = "Option::is_none",
        serialize_with = "avatar_url_ser",
        deserialize_with = "avatar_url_de"
    )]
    pub avatar: Option<String>,
    /// Who may open a direct room with this user.
    #[serde(default)]
    pub dm_policy: DmPolicy,
    /// Bumped when the user's tokens must stop working (a guest upgrade); a
    /// token carries the epoch it was issued in. Not shown.
    #[serde(default, skip)]
    pub token_epoch: i64,
}

/// Where an avatar is served: `?size=64` gives the small one.
pub fn avatar_url(id: &str) -> String {
    format!("/api/v1/avatars/{id}")
}

fn avatar_url_ser<S: serde::Serializer>(id: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(&avatar_url(id)),
        None => s.serialize_none(),
    }
}

fn avatar_url_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let url = Option::<String>::deserialize(d)?;
    Ok(url.map(|u| match u.strip_prefix("/api/v1/avatars/") {
        Some(id) => id.to_owned(),
        None => u,
    }))
}

/// Who may open (and post to) a direct room with a user (contract §7).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Everyone,
    Friends,
}

impl DmPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DmPolicy::Everyone => "everyone",
            DmPolicy::Friends => "friends",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "everyone" => Some(DmPolicy::Everyone),
            "friends" => Some(DmPolicy::Friends),
            _ => None,
        }
    }
}

/// `banned_until` of a ban without an expiry.
pub const BAN_FOREVER: i64 = i64::MAX;

impl User {
    /// Whether the user is banned at `now` (ms).
    pub fn banned_at(&self, now: i64) -> bool {
        self.banned_until.is_some_and(|until| until > now)
    }
}

/// A user's role (contract §5): moderators work the review queue and ban;
/// admins also grant roles.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    /// Moderators and admins.
    pub fn moderates(self) -> bool {
        self >= Role::Moderator
    }
}

/// A room's moderation policy (contract §5): group rooms choose (their creator
/// sets it); random chats are always `strict`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RoomPolicy {
    Off,
    #[default]
    Standard,
    Strict,
}

impl RoomPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomPolicy::Off => "off",
            RoomPolicy::Standard => "standard",
            RoomPolicy::Strict => "strict",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(RoomPolicy::Off),
            "standard" => Some(RoomPolicy::Standard),
            "strict" => Some(RoomPolicy::Strict),
            _ => None,
        }
    }
}

impl User {
    pub fn as_ref(&self) -> UserRef {
        UserRef {
            id: self.id,
            name: self.display_name.clone(),
            guest: self.guest,
        }
    }
}

/// The short form of a user inside messages and events: `{"id","name","guest"}`.
/// `guest` lets every reader mark guests, so a guest named like a registered
/// user is told apart; in a stored message it is the sender's status when sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRef {
    pub id: UserId,
    pub name: String,
    /// Absent in records written before it existed (cluster wire, matcher state).
    #[serde(default)]
    pub guest: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Group,
    Random,
    Direct,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Group => "group",
            RoomKind::Random => "random",
            RoomKind::Direct => "direct",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(RoomKind::Group),
            "random" => Some(RoomKind::Random),
            "direct" => Some(RoomKind::Direct),
            _ => None,
        }
    }
}

/// A room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub visibility: Visibility,
    pub kind: RoomKind,
    pub member_count: i64,
    pub last_seq: i64,
    pub created_at: i64,
    /// Time of the newest message, if any.
    pub last_message_at: Option<i64>,
    /// When the room stopped taking messages (a random chat whose match ended).
    pub closed_at: Option<i64>,
    /// The moderation policy its creator chose (random chats: always strict).
    pub moderation: RoomPolicy,
    /// Who made it (for a random chat: one of the pair).
    pub created_by: UserId,
}

/// A room as the API shows it, optionally with the caller's unread count.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoomView {
    pub id: RoomId,
    pub name: String,
    pub visibility: Visibility,
    pub kind: RoomKind,
    pub member_count: i64,
    pub last_seq: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_message_at: Option<String>,
    /// The room takes no more messages (an ended random chat); history stays readable.
    pub ended: bool,
    /// Present when the caller is a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<i64>,
    /// Whether the caller is a member.
    pub member: bool,
    /// The room's moderation policy.
    pub moderation: RoomPolicy,
    /// Who made it (the one who may change its policy, with moderators).
    pub created_by: UserId,
}

impl RoomView {
    pub fn new(room: &Room, membership: Option<i64>) -> Self {
        RoomView {
            id: room.id,
            name: room.name.clone(),
            visibility: room.visibility,
            kind: room.kind,
            member_count: room.member_count,
            last_seq: room.last_seq,
            created_at: rfc3339(room.created_at),
            last_message_at: room.last_message_at.map(rfc3339),
            ended: room.closed_at.is_some(),
            unread: membership,
            member: membership.is_some(),
            moderation: room.moderation,
            created_by: room.created_by,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    Join,
    Leave,
    System,
    /// A message a moderator removed: text gone, `seq` kept.
    Deleted,
    /// A message from someone the reader blocks (contract §7), as that reader
    /// gets it: no sender, text or files, `seq` kept. Never stored.
    Hidden,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Join => "join",
            MessageKind::Leave => "leave",
            MessageKind::System => "system",
            MessageKind::Deleted => "deleted",
            MessageKind::Hidden => "hidden",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(MessageKind::Text),
            "join" => Some(MessageKind::Join),
            "leave" => Some(MessageKind::Leave),
            "system" => Some(MessageKind::System),
            "deleted" => Some(MessageKind::Deleted),
            _ => None,
        }
    }
}

/// A stored room message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub room_id: RoomId,
    pub seq: i64,
    pub kind: MessageKind,
    pub sender: UserRef,
    pub text: String,
    pub client_id: Option<String>,
    pub sent_at: i64,
    /// Moderation replaced spans of the text with `*`.
    pub masked: bool,
    /// Files the message carries, in the sender's order (contract §6).
    pub attachments: Vec<Media>,
}

/// The JSON body of a stored message (contract §3, `"type":"message"`).
#[derive(Serialize, utoipa::ToSchema)]
struct MessageJson<'a> {
    /// Always `"message"`.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^message$")]
    ty: &'static str,
    id: i64,
    room_id: RoomId,
    seq: i64,
    kind: MessageKind,
    #[schema(value_type = UserRef)]
    sender: &'a UserRef,
    #[schema(value_type = String)]
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    client_id: Option<&'a str>,
    #[schema(format = DateTime)]
    sent_at: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    masked: bool,
    #[schema(value_type = Vec<MediaView>)]
    attachments: MediaList<'a>,
}

/// The JSON body of a [`MessageKind::Hidden`] message: what a blocker gets
/// of a blocked user's message.
#[derive(Serialize)]
struct HiddenJson {
    #[serde(rename = "type")]
    ty: &'static str,
    id: i64,
    room_id: RoomId,
    seq: i64,
    kind: MessageKind,
    sent_at: String,
}

impl Message {
    pub fn to_json_value(&self) -> serde_json::Value {
        match self.kind {
            MessageKind::Hidden => serde_json::to_value(self.hidden_json()),
            _ => serde_json::to_value(self.json()),
        }
        .expect("message serializes")
    }
    pub fn to_json_bytes(&self) -> Vec<u8> {
        match self.kind {
            MessageKind::Hidden => serde_json::to_vec(&self.hidden_json()),
            _ => serde_json::to_vec(&self.json()),
        }
        .expect("message serializes")
    }
    /// This message as someone who blocks its sender gets it.
    pub fn hidden(&self) -> Message {
        Message {
            kind: MessageKind::Hidden,
            sender: UserRef {
                id: 0,
                name: String::new(),
                guest: false,
            },
            text: String::new(),
            client_id: None,
            masked: false,
            attachments: Vec::new(),
            ..self.clone()
        }
    }
    fn hidden_json(&self) -> HiddenJson {
        HiddenJson {
            ty: "message",
            id: self.id,
            room_id: self.room_id,
            seq: self.seq,
            kind: MessageKind::Hidden,
            sent_at: rfc3339(self.sent_at),
        }
    }
    fn json(&self) -> MessageJson<'_> {
        MessageJson {
            ty: "message",
            id: self.id,
            room_id: self.room_id,
            seq: self.seq,
            kind: self.kind,
            sender: &self.sender,
            text: &self.text,
            client_id: self.client_id.as_deref(),
            sent_at: rfc3339(self.sent_at),
            masked: self.masked,
            attachments: MediaList(&self.attachments),
        }
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.kind {
            MessageKind::Hidden => self.hidden_json().serialize(s),
            _ => self.json().serialize(s),
        }
    }
}

/// The OpenAPI schema of [`Message`] is that of the struct it serializes as.
impl utoipa::PartialSchema for Message {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <MessageJson<'static> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Message {
    fn name() -> std::borrow::Cow<'static, str> {
        "Message".into()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <MessageJson<'static> as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A message accepted from a client (or a membership change) that still has to be
/// sequenced and stored. This is what travels through the message pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub kind: MessageKind,
    pub sender: UserRef,
    pub text: String,
    pub client_id: Option<String>,
    pub sent_at: i64,
    /// What moderation decided (absent in records written before it existed).
    #[serde(default)]
    pub moderation: Moderated,
    /// Files the message carries, checked by the sender's node (each one the
    /// sender's own upload); stored with the message in one transaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Media>,
}

/// Moderation's outcome for an accepted message, applied when it is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderated {
    /// `text` already has its spans masked.
    #[serde(default)]
    pub masked: bool,
    /// Queue the stored message for moderator review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<Flag>,
}

/// Why a message is queued for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// The classifier's category names.
    pub categories: Vec<String>,
    /// The classifier's score in thousandths (0..=1000).
    pub score_milli: u16,
}

/// The result of appending one [`NewMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now with the next `seq`.
    New(Message),
    /// The same `client_id` was already stored by this sender in this room: the earlier message.
    Duplicate(Message),
    /// A `join` by a member or a `leave` by a non-member: nothing to store.
    Unchanged,
}

/// Why one message of a batch was not stored (the rest of the batch is unaffected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendRejected {
    #[error("room not found")]
    RoomNotFound,
    #[error("not a member of this room")]
    NotMember,
    /// The database refused this item deterministically (e.g. PostgreSQL's
    /// SQLSTATE classes 22/23, a SQLite constraint): retrying cannot help.
    #[error("the message cannot be stored")]
    Unstorable,
    /// A text or system message to a closed room (an ended random chat).
    #[error("this chat has ended")]
    RoomClosed,
}

/// One row of `GET /rooms/{id}/members`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub id: UserId,
    pub name: String,
    pub online: bool,
    pub guest: bool,
    /// `None` (JSON `null`) for guests.
    pub username: Option<String>,
}

/// Filters of a history page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    pub before_seq: Option<i64>,
    pub after_seq: Option<i64>,
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_json_has_contract_fields() {
        let m = Message {
            id: 7,
            room_id: 3,
            seq: 1,
            kind: MessageKind::Text,
            sender: UserRef {
                id: 1,
                name: "민수".into(),
                guest: true,
            },
            text: "안녕".into(),
            client_id: None,
            sent_at: 0,
            masked: false,
            attachments: vec![],
        };
        let v = m.to_json_value();
        assert_eq!(v["type"], "message");
        assert_eq!(v["kind"], "text");
        assert_eq!(v["sender"]["name"], "민수");
        assert_eq!(v["sender"]["guest"], true);
        assert_eq!(v["sent_at"], "1970-01-01T00:00:00.000Z");
        assert!(v.get("client_id").is_none());
    }
}
