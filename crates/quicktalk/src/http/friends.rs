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
#[derive(Debug, Deserialize)]
pub struct UserTarget {
    pub user_id: UserId,
}

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

pub async fn accept(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RequestView>> {
    answer(&state, &me, id, FriendAnswer::Accept).await
}

pub async fn decline(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RequestView>> {
    answer(&state, &me, id, FriendAnswer::Decline).await
}

/// `DELETE /friends/requests/{id}`: the sender takes their request back.
pub async fn cancel(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<RequestView>> {
    answer(&state, &me, id, FriendAnswer::Cancel).await
}

pub async fn list(State(state): S, Caller(me): Caller) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(
        json!({"friends": state.people.friends(&me).await?}),
    ))
}

pub async fn unfriend(
    State(state): S,
    Caller(me): Caller,
    Path(user_id): Path<UserId>,
) -> ApiResult<StatusCode> {
    state.people.unfriend(&me, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn block(
    State(state): S,
    Caller(me): Caller,
    Json(b): Json<UserTarget>,
) -> ApiResult<StatusCode> {
    state.people.block(&me, b.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unblock(
    State(state): S,
    Caller(me): Caller,
    Path(user_id): Path<UserId>,
) -> ApiResult<StatusCode> {
    state.people.unblock(&me, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn blocks(State(state): S, Caller(me): Caller) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(
        json!({"blocks": state.people.blocks(&me).await?}),
    ))
}

/// `POST /direct`: the pair's one direct room, 201 when this call made it.
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
