//! Push notifications over REST (contract §8): the VAPID public key, browser
//! subscriptions, and per-room notification levels.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json, Path};
use crate::error::AppError;
use crate::model::RoomId;
use crate::state::AppState;
use crate::store::push::NotifyLevel;

type S = State<Arc<AppState>>;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// The server's VAPID key: an uncompressed P-256 point, base64url (the
    /// browser's `applicationServerKey`).
    pub public_key: String,
}

/// The keys of a browser's `PushSubscription.toJSON()`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// Its 16-byte authentication secret, base64url.
    pub auth: String,
}

/// `PushSubscription.toJSON()` (other fields, e.g. `expirationTime`, ignored).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Subscribe {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Unsubscribe {
    pub endpoint: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Level {
    /// `all`, `mentions` (the text contains `@username`) or `none`.
    pub level: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Subscribed {
    pub endpoint: String,
}

#[utoipa::path(
    get,
    path = "/push/key",
    operation_id = "push_key",
    tag = "push",
    responses(
        (status = 200, description = "The VAPID public key", body = PublicKey),
    ),
)]
pub async fn key(State(state): S) -> axum::Json<PublicKey> {
    axum::Json(PublicKey {
        public_key: state.push.public_key().to_owned(),
    })
}

#[utoipa::path(
    post,
    path = "/push/subscriptions",
    operation_id = "push_subscribe",
    tag = "push",
    request_body = Subscribe,
    responses(
        (status = 201, description = "Recorded (a known endpoint moves to the caller)", body = Subscribed),
        (status = 400, description = "Bad input (`invalid_endpoint`, `invalid_keys`)", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn subscribe(
    State(state): S,
    ClientIp(ip): ClientIp,
    Caller(me): Caller,
    Json(b): Json<Subscribe>,
) -> ApiResult<(StatusCode, axum::Json<Subscribed>)> {
    state
        .push
        .subscribe(&me, Some(ip), &b.endpoint, &b.keys.p256dh, &b.keys.auth)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Subscribed {
            endpoint: b.endpoint,
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/push/subscriptions",
    operation_id = "push_unsubscribe",
    tag = "push",
    request_body = Unsubscribe,
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "The caller has no subscription with this endpoint", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn unsubscribe(
    State(state): S,
    Caller(me): Caller,
    Json(b): Json<Unsubscribe>,
) -> ApiResult<StatusCode> {
    if state.push.unsubscribe(&me, &b.endpoint).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound("push subscription").into())
    }
}

#[utoipa::path(
    get,
    path = "/rooms/{id}/notifications",
    operation_id = "push_level",
    tag = "push",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    responses(
        (status = 200, description = "The caller's level for the room (a member's)", body = Level),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not a member (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn level(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<RoomId>,
) -> ApiResult<axum::Json<Level>> {
    let level = state.push.level(&me, id).await?;
    Ok(axum::Json(Level {
        level: level.as_str().into(),
    }))
}

#[utoipa::path(
    put,
    path = "/rooms/{id}/notifications",
    operation_id = "push_set_level",
    tag = "push",
    params(
        ("id" = i64, Path, description = "room id"),
    ),
    request_body = Level,
    responses(
        (status = 200, description = "The caller's level for the room now", body = Level),
        (status = 400, description = "Bad input (`invalid_level`)", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not a member (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn set_level(
    State(state): S,
    Caller(me): Caller,
    Path(id): Path<RoomId>,
    Json(b): Json<Level>,
) -> ApiResult<axum::Json<Level>> {
    let level = NotifyLevel::parse(&b.level).ok_or_else(|| {
        AppError::invalid(
            "invalid_level",
            "level must be \"all\", \"mentions\" or \"none\"",
        )
    })?;
    let level = state.push.set_level(&me, id, level).await?;
    Ok(axum::Json(Level {
        level: level.as_str().into(),
    }))
}
