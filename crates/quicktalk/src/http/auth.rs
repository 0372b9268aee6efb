//! The `Authorization: Bearer <token>` extractors: [`Caller`] (anyone signed
//! in, from the authentication cache), [`FreshCaller`] (read from the store:
//! `GET /me` shows a role change at once) and [`Staff`] (moderators and admins,
//! read from the store). Each refuses a banned user with `403 banned`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ApiError;
use crate::domain::tokens::bearer;
use crate::error::AppError;
use crate::model::User;
use crate::state::AppState;

/// The signed-in caller.
pub struct Caller(pub User);

fn token(parts: &Parts) -> Result<&str, AppError> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(AppError::unauthorized(
            "unauthorized",
            "missing Authorization: Bearer token",
        ))
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = token(parts)?;
        Ok(Caller(state.accounts.authenticate(token).await?))
    }
}

/// The signed-in caller as stored right now (not from the cache).
pub struct FreshCaller(pub User);

impl FromRequestParts<Arc<AppState>> for FreshCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = token(parts)?;
        Ok(FreshCaller(state.accounts.authenticate_fresh(token).await?))
    }
}

/// A signed-in moderator or admin, as stored right now; others get `403 forbidden`.
pub struct Staff(pub User);

impl FromRequestParts<Arc<AppState>> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let FreshCaller(user) = FreshCaller::from_request_parts(parts, state).await?;
        if !user.role.moderates() {
            return Err(AppError::forbidden("moderators only").into());
        }
        Ok(Staff(user))
    }
}
