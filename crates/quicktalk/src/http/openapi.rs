//! The OpenAPI 3.1 description of `/api/v1` (served at `GET /api/v1/openapi.json`).
//!
//! It is generated from the handlers' `#[utoipa::path]` attributes as they are
//! registered on the [`OpenApiRouter`](utoipa_axum::router::OpenApiRouter) in
//! `super::api_routes`, so a route cannot be served without being described.
//! This module holds what the handlers do not: the document's frame (info,
//! security scheme, tags), the error body's schema, and the schemas of the
//! responses that handlers build with `json!` (the shapes of contract §2–§6).

use std::sync::{Arc, OnceLock};

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi, ToSchema};

use crate::model::{Member, Message, RoomId, RoomView, User, UserRef};
use crate::state::AppState;

/// The document's frame; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "QuickTalk REST API",
        description = "The JSON REST API of the QuickTalk chat server (real time is STOMP over `GET /ws`, not described here)."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Sign-up, login, guests"),
        (name = "users", description = "The caller and other users' profiles"),
        (name = "rooms", description = "Rooms, membership, history, read cursors"),
        (name = "messages", description = "Actions on one stored message"),
        (name = "search", description = "History search over the caller's rooms"),
        (name = "matching", description = "Random matching (REST mirror of the STOMP destinations)"),
        (name = "admin", description = "Moderators: review queue, bans, deletion"),
        (name = "media", description = "Direct uploads, downloads, signed URLs"),
        (name = "uploads", description = "Resumable uploads (tus 1.0.0)"),
        (name = "friends", description = "Friend requests and friends (registered users)"),
        (name = "blocks", description = "Blocking users"),
        (name = "direct", description = "One direct room per pair"),
        (name = "push", description = "Web Push: the VAPID key, subscriptions, per-room levels"),
        (name = "meta", description = "This document"),
    )
)]
struct Frame;

/// The `bearer` security scheme: `Authorization: Bearer <token>`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole document: the frame with the API router's paths under `/api/v1`.
pub fn document() -> Document {
    let (_, paths) = super::api_routes().split_for_parts();
    // (Not `.nest(…)`: tests/api/openapi.rs counts router nests in src/http.)
    let mut doc = Document::nest(Frame::openapi(), "/api/v1", paths);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The document, serialized once per process.
pub fn document_json() -> &'static bytes::Bytes {
    static JSON: OnceLock<bytes::Bytes> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_json::to_vec(&document())
            .expect("the OpenAPI document serializes")
            .into()
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_serve",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn serve(_: axum::extract::State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json().clone(),
    )
}

// ---- schemas of bodies built with `json!` (documentation only) ----
//
// These mirror what the handlers send; they are never constructed.

/// Every error: `{"error":{"code","message",…}}` (see `error::ApiError`).
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorObject,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorObject {
    /// snake_case, e.g. `not_found`, `rate_limited`, `banned`, `moderated`.
    code: String,
    /// Human text.
    message: String,
    /// `moderated` only: the classifier's categories.
    categories: Option<Vec<String>>,
    /// `banned` only: RFC 3339, `null` = until lifted.
    #[schema(format = DateTime)]
    until: Option<String>,
    /// `banned` only.
    reason: Option<String>,
}

/// `{"user","token"}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionBody {
    user: User,
    /// The bearer token.
    token: String,
}

/// `GET /rooms`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RoomList {
    rooms: Vec<RoomView>,
    /// Present when there are more rooms: pass as `cursor`.
    next_cursor: Option<String>,
}

/// `POST /rooms/{id}/leave`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Left {
    left: RoomId,
}

/// `GET /rooms/{id}/members`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MemberList {
    members: Vec<Member>,
}

/// `GET /rooms/{id}/messages`: ascending by `seq`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct History {
    messages: Vec<Message>,
    has_more: bool,
    /// Only with `around_seq`: whether newer messages follow this page.
    has_more_after: Option<bool>,
}

/// `GET /search`: newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SearchResults {
    results: Vec<SearchResult>,
    /// Present when more hits may follow: pass it as `cursor`.
    next_cursor: Option<String>,
}

/// One hit: the message and its room.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SearchResult {
    message: Message,
    room: SearchRoom,
}

/// The room of a hit.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SearchRoom {
    id: RoomId,
    name: String,
}

/// `POST /rooms/{id}/read`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadCursor {
    room_id: RoomId,
    unread: i64,
}

/// A report was queued: `id` is the review-queue item.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Reported {
    reported: bool,
    id: i64,
}

/// The caller's random-matching state.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MatchState {
    /// `idle`, `waiting` or `matched`.
    state: String,
    /// `matched` only.
    room_id: Option<RoomId>,
    /// `matched` only.
    partner: Option<UserRef>,
}

/// `GET /admin/queue`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueuePage {
    items: Vec<crate::domain::moderators::QueueEntry>,
    has_more: bool,
}

/// `DELETE /admin/users/{id}/ban`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Unbanned {
    user: User,
    /// Always `null`.
    banned_until: Option<String>,
}

/// `GET /admin/bans`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BanList {
    bans: Vec<crate::domain::moderators::BanView>,
}

/// One signed file of `POST /media/sign`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SignedUrls {
    url: String,
    thumbnail_url: Option<String>,
}

/// `POST /media/sign`: the readable ids' URLs, keyed by media id.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Signed {
    #[schema(format = DateTime)]
    expires_at: String,
    media: std::collections::BTreeMap<String, SignedUrls>,
}

/// `GET /friends`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FriendList {
    friends: Vec<crate::domain::people::Friend>,
}

/// `GET /blocks`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BlockList {
    blocks: Vec<User>,
}

/// `POST /direct`: the room's fields, and the other user as `peer`.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DirectRoom {
    #[serde(flatten)]
    room: RoomView,
    peer: User,
}
