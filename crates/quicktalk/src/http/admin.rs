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

#[derive(Deserialize)]
pub struct QueueParams {
    limit: Option<i64>,
    after: Option<i64>,
    state: Option<String>,
}

/// `GET /admin/queue?limit=&after=&state=open|resolved|all`.
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
#[derive(Debug, Default, Deserialize)]
pub struct ResolveBody {
    pub resolution: Option<String>,
}

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
#[derive(Debug, Deserialize)]
pub struct BanBody {
    pub reason: String,
    /// RFC 3339; absent = until lifted.
    pub until: Option<String>,
}

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

pub async fn unban(
    State(app): S,
    Staff(by): Staff,
    Path(id): Path<UserId>,
) -> ApiResult<axum::Json<Value>> {
    let user = app.moderation.unban(&by, id).await?;
    Ok(axum::Json(json!({"user": user, "banned_until": null})))
}

/// `GET /admin/bans`: the bans in force.
pub async fn bans(State(app): S, Staff(by): Staff) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(json!({"bans": app.moderation.bans(&by).await?})))
}

/// `DELETE /admin/messages/{id}` → the tombstone.
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
