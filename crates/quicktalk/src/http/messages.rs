//! `/api/v1/messages/*`: actions on one stored message (reports).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json, Path};
use crate::limits::{Key, Limit};
use crate::model::MessageId;
use crate::state::AppState;

type S = State<Arc<AppState>>;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReportMessage {
    pub reason: String,
}

/// `POST /messages/{id}/report` `{"reason"}` → 201 `{"reported":true,"id"}` (the
/// queue id; the same for a repeat by the same user).
#[utoipa::path(
    post,
    path = "/messages/{id}/report",
    operation_id = "messages_report",
    tag = "messages",
    params(
        ("id" = i64, Path, description = "message id"),
    ),
    request_body = ReportMessage,
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
    Path(id): Path<MessageId>,
    Json(b): Json<ReportMessage>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    state.limits.check(Limit::ReportUser, Key::User(user.id))?;
    state.limits.check(Limit::ReportIp, Key::Ip(ip))?;
    let queued = state.rooms.report_message(&user, id, &b.reason).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"reported": true, "id": queued})),
    ))
}
