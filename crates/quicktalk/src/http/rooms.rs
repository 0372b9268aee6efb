//! `/api/v1/rooms/*`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json, Path, Query};
use crate::domain::rooms::{history_query, room_list_query};
use crate::error::AppError;
use crate::limits::{Key, Limit};
use crate::model::{Appended, RoomId, RoomPolicy, RoomView, Visibility};
use crate::state::AppState;

type S = State<Arc<AppState>>;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateRoom {
    pub name: String,
    pub visibility: Option<String>,
    /// `"off"`, `"standard"` (the default) or `"strict"`.
    pub moderation: Option<String>,
}

/// `PATCH /rooms/{id}`: what to change (absent fields stay).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchRoom {
    pub moderation: Option<String>,
}

fn parse_policy(p: Option<&str>) -> Result<RoomPolicy, AppError> {
    match p {
        None => Ok(RoomPolicy::Standard),
        Some(p) => RoomPolicy::parse(p).ok_or(AppError::invalid(
            "invalid_moderation",
            "moderation must be \"off\", \"standard\" or \"strict\"",
        )),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /rooms?kind=group,direct&cursor=C&limit=N` → `{"rooms":[…],"next_cursor"?}`.
#[utoipa::path(
    get,
    path = "/rooms",
    operation_id = "rooms_list",
    tag = "rooms",
    params(
        ListParams,
    ),
    responses(
        (status = 200, description = "Public rooms and the caller's", body = super::openapi::RoomList),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): S,
    Caller(user): Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::Json<Value>> {
    let q = room_list_query(p.kind.as_deref(), p.cursor.as_deref(), p.limit)?;
    let (rooms, next) = state.rooms.list(&user, q).await?;
    let mut body = json!({ "rooms": rooms });
    if let Some(c) = next {
        body["next_cursor"] = json!(c);
    }
    Ok(axum::Json(body))
}

#[utoipa::path(
    post,
    path = "/rooms",
    operation_id = "rooms_create",
    tag = "rooms",
    request_body = CreateRoom,
    responses(
        (status = 201, description = "Created; the creator is a member", body = RoomView),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): S,
    ClientIp(ip): ClientIp,
    Caller(user): Caller,
    Json(b): Json<CreateRoom>,
) -> ApiResult<(StatusCode, axum::Json<RoomView>)> {
    state
        .limits
        .check(Limit::RoomCreateUser, Key::User(user.id))?;
    state.limits.check(Limit::RoomCreateIp, Key::Ip(ip))?;
    let visibility = match b.visibility.as_deref() {
        None => Visibility::Public,
        Some(v) => Visibility::parse(v).ok_or(AppError::invalid(
            "invalid_visibility",
            "visibility must be \"public\" or \"private\"",
        ))?,
    };
    let policy = parse_policy(b.moderation.as_deref())?;
    let room = state
        .rooms
        .create(&user, &b.name, visibility, policy)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(room)))
}

/// `PATCH /rooms/{id}` `{"moderation"}`: the room's creator or a moderator.
#[utoipa::path(
    patch,
    path = "/rooms/{id}",
    operation_id = "rooms_patch",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    request_body = PatchRoom,
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn patch(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
    Json(b): Json<PatchRoom>,
) -> ApiResult<axum::Json<RoomView>> {
    Ok(axum::Json(
        state
            .rooms
            .set_moderation(&user, id, b.moderation.as_deref())
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/rooms/{id}",
    operation_id = "rooms_get",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn get(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
) -> ApiResult<axum::Json<RoomView>> {
    Ok(axum::Json(state.rooms.get(&user, id).await?))
}

#[utoipa::path(
    post,
    path = "/rooms/{id}/join",
    operation_id = "rooms_join",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    responses(
        (status = 200, description = "Joined", body = RoomView),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn join(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
) -> ApiResult<axum::Json<RoomView>> {
    Ok(axum::Json(state.rooms.join(&user, id).await?))
}

#[utoipa::path(
    post,
    path = "/rooms/{id}/leave",
    operation_id = "rooms_leave",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    responses(
        (status = 200, description = "Left", body = super::openapi::Left),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn leave(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
) -> ApiResult<axum::Json<Value>> {
    state.rooms.leave(&user, id).await?;
    state.matching.room_left(&user, id).await?;
    Ok(axum::Json(json!({"left": id})))
}

#[utoipa::path(
    get,
    path = "/rooms/{id}/members",
    operation_id = "rooms_members",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    responses(
        (status = 200, description = "The members", body = super::openapi::MemberList),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn members(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
) -> ApiResult<axum::Json<Value>> {
    let members = state.rooms.members(&user, id).await?;
    Ok(axum::Json(json!({ "members": members })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    /// The messages around this `seq` (it included, about half the page before
    /// it, the rest after); not with `before_seq` or `after_seq`. The answer
    /// adds `has_more_after`.
    around_seq: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/rooms/{id}/messages",
    operation_id = "rooms_messages",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
        HistoryParams,
    ),
    responses(
        (status = 200, description = "A history page", body = super::openapi::History),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn messages(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
    Query(p): Query<HistoryParams>,
) -> ApiResult<axum::Json<Value>> {
    if let Some(seq) = p.around_seq {
        if p.before_seq.is_some() || p.after_seq.is_some() || seq < 1 {
            return Err(AppError::invalid(
                "invalid_query",
                "around_seq must be >= 1, without before_seq or after_seq",
            )
            .into());
        }
        let q = history_query(None, None, p.limit)?;
        let (messages, has_more, has_more_after) =
            state.rooms.history_around(&user, id, seq, q.limit).await?;
        return Ok(axum::Json(json!({
            "messages": messages,
            "has_more": has_more,
            "has_more_after": has_more_after,
        })));
    }
    let q = history_query(p.before_seq, p.after_seq, p.limit)?;
    let (messages, has_more) = state.rooms.history(&user, id, q).await?;
    Ok(axum::Json(
        json!({"messages": messages, "has_more": has_more}),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PostMessage {
    /// May be empty (or absent) when files are attached.
    #[serde(default)]
    pub text: String,
    /// Media ids (contract §6), at most 10, each uploaded by the sender.
    #[serde(default)]
    pub attachments: Vec<String>,
    pub client_id: Option<String>,
}

/// Posts a text message over REST (for clients without a socket); 201 once stored.
#[utoipa::path(
    post,
    path = "/rooms/{id}/messages",
    operation_id = "rooms_post_message",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    request_body = PostMessage,
    responses(
        (status = 201, description = "Stored", body = crate::model::Message),
        (status = 200, description = "Already stored with this client_id", body = crate::model::Message),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
        (status = 503, description = "Unavailable", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn post_message(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
    Json(b): Json<PostMessage>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    state.limits.check(Limit::SendUser, Key::User(user.id))?;
    state.limits.check(Limit::SendRoom, Key::Room(id))?;
    state.push.touched(user.id, None);
    let appended = state
        .rooms
        .post_and_wait(user.as_ref(), id, &b.text, &b.attachments, b.client_id)
        .await?;
    match appended {
        Appended::New(m) => Ok((StatusCode::CREATED, axum::Json(m.to_json_value()))),
        Appended::Duplicate(m) => Ok((StatusCode::OK, axum::Json(m.to_json_value()))),
        Appended::Unchanged => {
            Err(AppError::internal(anyhow::anyhow!("text message unchanged")).into())
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Read {
    pub seq: i64,
}

#[utoipa::path(
    post,
    path = "/rooms/{id}/read",
    operation_id = "rooms_read",
    tag = "rooms",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    request_body = Read,
    responses(
        (status = 200, description = "The caller's read cursor moved", body = super::openapi::ReadCursor),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<RoomId>,
    Json(b): Json<Read>,
) -> ApiResult<axum::Json<Value>> {
    if b.seq < 0 {
        return Err(AppError::invalid("invalid_seq", "seq must be >= 0").into());
    }
    let unread = state.rooms.mark_read(&user, id, b.seq).await?;
    // Activity, and pushes about what was just read are cancelled (contract §8).
    state.push.read(user.id, id, b.seq);
    Ok(axum::Json(json!({"room_id": id, "unread": unread})))
}
