//! `/api/v1/match/*`: REST mirrors of random matching, for clients that cannot hold
//! a socket open while queuing (they poll `GET /api/v1/match`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json};
use crate::domain::matching::{state_json, PrefsInput};
use crate::limits::{Key, Limit};
use crate::model::RoomId;
use crate::state::AppState;

type S = State<Arc<AppState>>;

#[utoipa::path(
    get,
    path = "/match",
    operation_id = "matching_get",
    tag = "matching",
    responses(
        (status = 200, description = "The caller's matching state", body = super::openapi::MatchState),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn get(State(state): S, Caller(user): Caller) -> axum::Json<Value> {
    axum::Json(state_json(&state.matching.state(&user).await))
}

#[utoipa::path(
    post,
    path = "/match/connect",
    operation_id = "matching_connect",
    tag = "matching",
    request_body = Option<PrefsInput>,
    responses(
        (status = 200, description = "Queued or matched", body = super::openapi::MatchState),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn connect(
    State(state): S,
    Caller(user): Caller,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<Value>> {
    let input: PrefsInput = if body.iter().all(u8::is_ascii_whitespace) {
        PrefsInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            super::ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string())
        })?
    };
    state.limits.check(Limit::MatchUser, Key::User(user.id))?;
    let s = state.matching.connect(&user, input).await?;
    Ok(axum::Json(state_json(&s)))
}

#[utoipa::path(
    post,
    path = "/match/next",
    operation_id = "matching_next",
    tag = "matching",
    responses(
        (status = 200, description = "Queued again", body = super::openapi::MatchState),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn next(State(state): S, Caller(user): Caller) -> ApiResult<axum::Json<Value>> {
    state.limits.check(Limit::MatchUser, Key::User(user.id))?;
    Ok(axum::Json(state_json(&state.matching.next(&user).await?)))
}

#[utoipa::path(
    post,
    path = "/match/disconnect",
    operation_id = "matching_disconnect",
    tag = "matching",
    responses(
        (status = 200, description = "Out of matching", body = super::openapi::MatchState),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn disconnect(State(state): S, Caller(user): Caller) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(state_json(
        &state.matching.disconnect(&user).await?,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub room_id: RoomId,
    pub reason: String,
}

#[utoipa::path(
    post,
    path = "/match/report",
    operation_id = "matching_report",
    tag = "matching",
    request_body = Report,
    responses(
        (status = 201, description = "Queued for review", body = super::openapi::Reported),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn report(
    State(state): S,
    ClientIp(ip): ClientIp,
    Caller(user): Caller,
    Json(b): Json<Report>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    state.limits.check(Limit::ReportUser, Key::User(user.id))?;
    state.limits.check(Limit::ReportIp, Key::Ip(ip))?;
    let id = state.matching.report(&user, b.room_id, &b.reason).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"reported": true, "id": id})),
    ))
}
