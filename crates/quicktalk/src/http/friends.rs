//! Friends, blocks and direct rooms (contract §7): `/friends…`, `/blocks…`,
//! `POST /direct`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json, Path};
use crate::domain::people::RequestView;
use crate::model::UserId;
use crate::state::AppState;
use crate::store::people::FriendAnswer;

type S = State<Arc<AppState>>;

/// `{"user_id"}`: the body of a friend request, a block and `POST /direct`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UserTarget {
    pub user_id: UserId,
}

#[utoipa::path(
    post,
    path = "/friends/requests",
    operation_id = "friends_request",
    tag = "friends",
    request_body = UserTarget,
    responses(
        (status = 201, description = "A new pending request", body = crate::domain::people::RequestView),
        (status = 200, description = "Already pending, or accepted (they had asked)", body = crate::domain::people::RequestView),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn request(
    State(state): S,
    ClientIp(ip): ClientIp,
    Caller(me): Caller,
    Json(b): Json<UserTarget>,
) -> ApiResult<(StatusCode, axum::Json<RequestView>)> {
    let (r, created) = state.people.request_friend(&me, b.user_id, ip).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(r)))
}

#[utoipa::path(
    get,
    path = "/friends/requests",
    operation_id = "friends_requests",
    tag = "friends",
    responses(
        (status = 200, description = "Pending requests", body = crate::domain::people::Requests),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn requests(State(state): S, Caller(me): Caller) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(json!(state.people.requests(&me).await?)))
}

async fn answer(
    state: &AppState,
    me: &crate::model::User,
    id: i64,
    a: FriendAnswer,
) -> ApiResult<axum::Json<RequestView>> {
    Ok(axum::Json(state.people.answer(me, id, a).await?))
}

#[utoipa::path(
    post,
    path = "/friends/requests/{id}/accept",
    operation_id = "friends_accept",
    tag = "friends",
    params(
        ("id" = i64, Path, description = "friend request id"),
    ),
    responses(
        (status = 200, description = "Accepted", body = crate::domain::people::RequestView),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn accept(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RequestView>> {
    answer(&state, &me, id, FriendAnswer::Accept).await
}

#[utoipa::path(
    post,
    path = "/friends/requests/{id}/decline",
    operation_id = "friends_decline",
    tag = "friends",
    params(
        ("id" = i64, Path, description = "friend request id"),
    ),
    responses(
        (status = 200, description = "Declined", body = crate::domain::people::RequestView),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn decline(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RequestView>> {
    answer(&state, &me, id, FriendAnswer::Decline).await
}

/// `DELETE /friends/requests/{id}`: the sender takes their request back.
#[utoipa::path(
    delete,
    path = "/friends/requests/{id}",
    operation_id = "friends_cancel",
    tag = "friends",
    params(
        ("id" = i64, Path, description = "friend request id"),
    ),
    responses(
        (status = 200, description = "Cancelled", body = crate::domain::people::RequestView),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn cancel(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RequestView>> {
    answer(&state, &me, id, FriendAnswer::Cancel).await
}

#[utoipa::path(
    get,
    path = "/friends",
    operation_id = "friends_list",
    tag = "friends",
    responses(
        (status = 200, description = "Friends with online state", body = super::openapi::FriendList),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(State(state): S, Caller(me): Caller) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(
        json!({"friends": state.people.friends(&me).await?}),
    ))
}

#[utoipa::path(
    delete,
    path = "/friends/{user_id}",
    operation_id = "friends_unfriend",
    tag = "friends",
    params(
        ("user_id" = i64, Path, description = "user id"),
    ),
    responses(
        (status = 204, description = "No longer friends"),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn unfriend(
    State(state): S,
    Caller(me): Caller,
    Path(user_id): Path<UserId>,
) -> ApiResult<StatusCode> {
    state.people.unfriend(&me, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/blocks",
    operation_id = "friends_block",
    tag = "blocks",
    request_body = UserTarget,
    responses(
        (status = 204, description = "Blocked"),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn block(
    State(state): S,
    Caller(me): Caller,
    Json(b): Json<UserTarget>,
) -> ApiResult<StatusCode> {
    state.people.block(&me, b.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/blocks/{user_id}",
    operation_id = "friends_unblock",
    tag = "blocks",
    params(
        ("user_id" = i64, Path, description = "user id"),
    ),
    responses(
        (status = 204, description = "Not blocked (any more)"),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn unblock(
    State(state): S,
    Caller(me): Caller,
    Path(user_id): Path<UserId>,
) -> ApiResult<StatusCode> {
    state.people.unblock(&me, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/blocks",
    operation_id = "friends_blocks",
    tag = "blocks",
    responses(
        (status = 200, description = "Whom the caller blocks", body = super::openapi::BlockList),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn blocks(State(state): S, Caller(me): Caller) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(
        json!({"blocks": state.people.blocks(&me).await?}),
    ))
}

/// `POST /direct`: the pair's one direct room, 201 when this call made it.
#[utoipa::path(
    post,
    path = "/direct",
    operation_id = "friends_direct",
    tag = "direct",
    request_body = UserTarget,
    responses(
        (status = 201, description = "Created for this pair", body = super::openapi::DirectRoom),
        (status = 200, description = "The pair's existing room", body = super::openapi::DirectRoom),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn direct(
    State(state): S,
    ClientIp(ip): ClientIp,
    Caller(me): Caller,
    Json(b): Json<UserTarget>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let (room, peer, created) = state.people.direct(&me, b.user_id, ip).await?;
    let mut body = serde_json::to_value(&room).map_err(crate::error::AppError::internal)?;
    body["peer"] = json!(peer);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(body)))
}
