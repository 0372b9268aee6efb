//! `GET /api/v1/search`: history search (contract §9) over the caller's rooms
//! or one room, newest first, paged by `next_cursor`.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Query};
use crate::domain::search::{self, SearchRequest};
use crate::limits::{Key, Limit};
use crate::model::RoomId;
use crate::state::AppState;

type S = State<Arc<AppState>>;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// 1–100 characters; case-insensitive substring of the message text (NFC).
    q: Option<String>,
    /// Only this room (readable by the caller); all the caller's rooms when absent.
    room_id: Option<RoomId>,
    /// 1–50, default 20.
    limit: Option<i64>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// Finds text messages containing `q`, newest first.
#[utoipa::path(
    get,
    path = "/search",
    operation_id = "search_messages",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of hits", body = super::openapi::SearchResults),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn search(
    State(state): S,
    ClientIp(ip): ClientIp,
    Caller(user): Caller,
    Query(p): Query<SearchParams>,
) -> ApiResult<axum::Json<Value>> {
    let q = search::query(
        user.id,
        &SearchRequest {
            q: p.q.as_deref(),
            room_id: p.room_id,
            limit: p.limit,
            cursor: p.cursor.as_deref(),
        },
    )?;
    state.limits.check(Limit::SearchUser, Key::User(user.id))?;
    state.limits.check(Limit::SearchIp, Key::Ip(ip))?;
    let page = state.rooms.search(&user, q).await?;
    let next = search::next_cursor(&page);
    let results: Vec<Value> = page
        .hits
        .into_iter()
        .map(|h| {
            json!({
                "message": h.message,
                "room": {"id": h.message.room_id, "name": h.room_name},
            })
        })
        .collect();
    let mut body = json!({ "results": results });
    if let Some(c) = next {
        body["next_cursor"] = Value::String(c);
    }
    Ok(axum::Json(body))
}
