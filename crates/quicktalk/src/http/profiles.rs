//! Profiles (contract §7): `PATCH /me`, `GET /users/by-username/{username}`,
//! `GET /avatars/{id}` and the guest upgrade `POST /auth/upgrade`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::auth::{Caller, FreshCaller};
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json, Path, Query};
use crate::domain::avatars::AvatarSize;
use crate::domain::profiles::ProfileChange;
use crate::limits::{Key, Limit};
use crate::model::User;
use crate::state::AppState;

type S = State<Arc<AppState>>;

/// A field that may be absent (`None`), `null` (`Some(None)`) or set.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /me`: only the fields present change; `null` clears a status
/// message or an avatar.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchMe {
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub status_message: Option<Option<String>>,
    /// A media id of the caller's own uploaded image, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar: Option<Option<String>>,
    pub dm_policy: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Upgrade {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvatarQuery {
    /// `64` or `256` (the default).
    pub size: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/me",
    operation_id = "profiles_patch_me",
    tag = "users",
    request_body = PatchMe,
    responses(
        (status = 200, description = "The caller as now", body = crate::model::User),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn patch_me(
    State(state): S,
    FreshCaller(me): FreshCaller,
    Json(b): Json<PatchMe>,
) -> ApiResult<axum::Json<User>> {
    let change = ProfileChange {
        display_name: b.display_name,
        status_message: b.status_message,
        avatar: b.avatar,
        dm_policy: b.dm_policy,
    };
    Ok(axum::Json(state.profiles.update(&me, change).await?))
}

/// `GET /users/by-username/{username}`: exact (case-insensitive) lookup only.
#[utoipa::path(
    get,
    path = "/users/by-username/{username}",
    operation_id = "profiles_by_username",
    tag = "users",
    params(
        ("username" = String, Path, description = "exact username, case-insensitive"),
    ),
    responses(
        (status = 200, description = "A profile", body = crate::model::User),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn by_username(
    State(state): S,
    Caller(_): Caller,
    Path(username): Path<String>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        state.accounts.profile_by_username(&username).await?,
    ))
}

/// `POST /auth/upgrade`: a guest keeps their id, rooms and history and gets
/// an account; the guest token stops working on every node.
#[utoipa::path(
    post,
    path = "/auth/upgrade",
    operation_id = "profiles_upgrade",
    tag = "auth",
    request_body = Upgrade,
    responses(
        (status = 200, description = "Registered in place; the old token no longer works", body = super::openapi::SessionBody),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn upgrade(
    State(state): S,
    ClientIp(ip): ClientIp,
    FreshCaller(me): FreshCaller,
    Json(b): Json<Upgrade>,
) -> ApiResult<axum::Json<Value>> {
    // A sign-up in all but name: the same per-IP limit.
    state.limits.check(Limit::SignupIp, Key::Ip(ip))?;
    let s = state
        .accounts
        .upgrade(&me, &b.username, &b.password)
        .await?;
    state.profiles.changed(me.id);
    Ok(axum::Json(json!({"user": s.user, "token": s.token})))
}

/// `GET /avatars/{id}?size=64|256`: any signed-in user may load any avatar.
/// An avatar never changes under its id, so it may be cached for good.
#[utoipa::path(
    get,
    path = "/avatars/{id}",
    operation_id = "profiles_avatar",
    tag = "users",
    params(
        ("id" = String, Path, description = "avatar id"),
        AvatarQuery,
    ),
    responses(
        (status = 200, description = "A square JPEG", content_type = "image/jpeg", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn avatar(
    State(state): S,
    Caller(_): Caller,
    Path(id): Path<String>,
    Query(q): Query<AvatarQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let size = AvatarSize::parse(q.size.as_deref())?;
    let etag = format!("\"{id}-{}\"", q.size.as_deref().unwrap_or("256"));
    let mut out = HeaderMap::new();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    let read = state.media.open_avatar(&id, size).await?;
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(read.total_size));
    let body = Body::from_stream(read.body.map_err(|e| std::io::Error::other(e.to_string())));
    Ok((StatusCode::OK, out, body).into_response())
}
