//! `/api/v1/auth/*`, `/api/v1/me` and `/api/v1/users/{id}` (a profile).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Caller, FreshCaller};
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json, Path};

use crate::domain::accounts::Session;
use crate::limits::{Key, Limit};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Signup {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Guest {
    pub nickname: Option<String>,
}

fn session_json(s: Session) -> axum::Json<Value> {
    axum::Json(json!({"user": s.user, "token": s.token}))
}

#[utoipa::path(
    post,
    path = "/auth/signup",
    operation_id = "accounts_signup",
    tag = "auth",
    request_body = Signup,
    responses(
        (status = 201, description = "Signed up", body = super::openapi::SessionBody),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
)]
pub async fn signup(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    Json(b): Json<Signup>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    state.limits.check(Limit::SignupIp, Key::Ip(ip))?;
    let s = state
        .accounts
        .signup(&b.username, &b.password, b.display_name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, session_json(s)))
}

#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "accounts_login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Logged in", body = super::openapi::SessionBody),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    Json(b): Json<Login>,
) -> ApiResult<axum::Json<Value>> {
    Ok(session_json(
        state.accounts.login(&b.username, &b.password, ip).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/auth/guest",
    operation_id = "accounts_guest",
    tag = "auth",
    request_body = Option<Guest>,
    responses(
        (status = 201, description = "A new guest", body = super::openapi::SessionBody),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
)]
pub async fn guest(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    state.limits.check(Limit::GuestIp, Key::Ip(ip))?;
    // The body is optional here: none at all means "no nickname".
    let nickname = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Guest>(&body)
            .map_err(|e| {
                super::ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string())
            })?
            .nickname
    };
    let s = state.accounts.guest(nickname.as_deref()).await?;
    Ok((StatusCode::CREATED, session_json(s)))
}

/// `GET /me`: read from the store, so a new role shows at once.
#[utoipa::path(
    get,
    path = "/me",
    operation_id = "accounts_me",
    tag = "users",
    responses(
        (status = 200, description = "The caller", body = crate::model::User),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn me(FreshCaller(user): FreshCaller) -> axum::Json<crate::model::User> {
    axum::Json(user)
}

/// `GET /users/{id}`: any signed-in user may see anyone's profile (what a
/// profile card shows: display name, `@username`, guest or not).
#[utoipa::path(
    get,
    path = "/users/{id}",
    operation_id = "accounts_user",
    tag = "users",
    params(
        ("id" = i64, Path, description = "user id"),
    ),
    responses(
        (status = 200, description = "A profile", body = crate::model::User),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn user(
    State(state): State<Arc<AppState>>,
    Caller(_): Caller,
    Path(id): Path<crate::model::UserId>,
) -> ApiResult<axum::Json<crate::model::User>> {
    Ok(axum::Json(state.accounts.profile(id).await?))
}
