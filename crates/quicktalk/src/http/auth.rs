//! The `Authorization: Bearer <token>` extractor.

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

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(AppError::unauthorized(
                "unauthorized",
                "missing Authorization: Bearer token",
            ))?;
        Ok(Caller(state.accounts.authenticate(token).await?))
    }
}
