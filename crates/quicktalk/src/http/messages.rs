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

#[derive(Deserialize)]
pub struct ReportMessage {
    pub reason: String,
}

/// `POST /messages/{id}/report` `{"reason"}` → 201 `{"reported":true,"id"}` (the
/// queue id; the same for a repeat by the same user).
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
