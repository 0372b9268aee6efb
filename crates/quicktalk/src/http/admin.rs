//! `/api/v1/admin/*` (contract §5): the moderators' review queue, bans and
//! message deletion. Every route needs a moderator or admin ([`Staff`], read
//! from the store so a role set by `quicktalk admin grant` counts at once);
//! others get `403 forbidden`, no token `401`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Staff;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use crate::domain::moderators::{QueueEntry, DEFAULT_QUEUE_PAGE, MAX_QUEUE_PAGE};
use crate::error::AppError;
use crate::model::{MessageId, UserId};
use crate::state::AppState;
use crate::store::moderation::{QueueQuery, QueueState};

type S = State<Arc<AppState>>;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    limit: Option<i64>,
    after: Option<i64>,
    state: Option<String>,
}

/// `GET /admin/queue?limit=&after=&state=open|resolved|all`.
#[utoipa::path(
    get,
    path = "/admin/queue",
    operation_id = "admin_queue",
    tag = "admin",
    params(
        QueueParams,
    ),
    responses(
        (status = 200, description = "Reports and flags, oldest first", body = super::openapi::QueuePage),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn queue(
    State(app): S,
    Staff(by): Staff,
    Query(p): Query<QueueParams>,
) -> ApiResult<axum::Json<Value>> {
    let limit = p.limit.unwrap_or(DEFAULT_QUEUE_PAGE as i64);
    if !(1..=MAX_QUEUE_PAGE as i64).contains(&limit) {
        return Err(AppError::invalid(
            "invalid_query",
            format!("limit must be between 1 and {MAX_QUEUE_PAGE}"),
        )
        .into());
    }
    if p.after.is_some_and(|a| a < 0) {
        return Err(AppError::invalid("invalid_query", "after must be >= 0").into());
    }
    let state = match p.state.as_deref() {
        None => QueueState::Open,
        Some(s) => QueueState::parse(s).ok_or(AppError::invalid(
            "invalid_query",
            "state must be open, resolved or all",
        ))?,
    };
    let q = QueueQuery {
        state,
        after: p.after,
        limit: limit as usize,
    };
    let (items, has_more) = app.moderation.queue(&by, q).await?;
    Ok(axum::Json(json!({"items": items, "has_more": has_more})))
}

/// The body of `POST /admin/queue/{id}/resolve` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ResolveBody {
    pub resolution: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/queue/{id}/resolve",
    operation_id = "admin_resolve",
    tag = "admin",
    params(
        ("id" = i64, Path, description = "queue item id"),
    ),
    request_body = Option<ResolveBody>,
    responses(
        (status = 200, description = "Resolved", body = QueueEntry),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn resolve(
    State(app): S,
    Staff(by): Staff,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<QueueEntry>> {
    let b: ResolveBody = optional_json(&body)?;
    Ok(axum::Json(
        app.moderation
            .resolve(&by, id, b.resolution.as_deref())
            .await?,
    ))
}

/// The body of `POST /admin/users/{id}/ban`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BanBody {
    pub reason: String,
    /// RFC 3339; absent = until lifted.
    pub until: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/users/{id}/ban",
    operation_id = "admin_ban",
    tag = "admin",
    params(
        ("id" = i64, Path, description = "user id"),
    ),
    request_body = BanBody,
    responses(
        (status = 200, description = "Banned", body = crate::domain::moderators::BanView),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn ban(
    State(app): S,
    Staff(by): Staff,
    Path(id): Path<UserId>,
    Json(b): Json<BanBody>,
) -> ApiResult<axum::Json<Value>> {
    let until = match &b.until {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| AppError::invalid("invalid_until", "until must be an RFC 3339 time"))?
                .timestamp_millis(),
        ),
    };
    let ban = app.moderation.ban(Some(&by), id, until, &b.reason).await?;
    Ok(axum::Json(json!(ban)))
}

#[utoipa::path(
    delete,
    path = "/admin/users/{id}/ban",
    operation_id = "admin_unban",
    tag = "admin",
    params(
        ("id" = i64, Path, description = "user id"),
    ),
    responses(
        (status = 200, description = "Unbanned", body = super::openapi::Unbanned),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn unban(
    State(app): S,
    Staff(by): Staff,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<Value>> {
    let user = app.moderation.unban(&by, id).await?;
    Ok(axum::Json(json!({"user": user, "banned_until": null})))
}

/// `GET /admin/bans`: the bans in force.
#[utoipa::path(
    get,
    path = "/admin/bans",
    operation_id = "admin_bans",
    tag = "admin",
    responses(
        (status = 200, description = "The bans in force", body = super::openapi::BanList),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn bans(State(app): S, Staff(by): Staff) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(json!({"bans": app.moderation.bans(&by).await?})))
}

/// `DELETE /admin/messages/{id}` → the tombstone.
#[utoipa::path(
    delete,
    path = "/admin/messages/{id}",
    operation_id = "admin_delete_message",
    tag = "admin",
    params(
        ("id" = i64, Path, description = "message id"),
    ),
    responses(
        (status = 200, description = "The tombstone (kind deleted)", body = crate::model::Message),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn delete_message(
    State(app): S,
    Staff(by): Staff,
    Path(id): Path<MessageId>,
) -> ApiResult<axum::Json<crate::model::Message>> {
    Ok(axum::Json(app.moderation.delete_message(&by, id).await?))
}

/// A JSON body that may be absent (empty or white space: the defaults).
fn optional_json<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))
}
