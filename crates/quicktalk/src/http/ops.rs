//! `/healthz` (503 `unavailable` while the message pipeline is down: a dead
//! sequencer, or in multi-node mode also an unreachable Kafka), `/metrics`, and
//! response counting.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::http::error::ApiError;
use crate::state::AppState;

pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.rooms.pipeline_health().status() {
        Ok(()) => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(why) => ApiError::from(AppError::Unavailable(why)).into_response(),
    }
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

pub async fn count_responses(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let res = next.run(req).await;
    let class = match res.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    state
        .metrics
        .http_requests
        .with_label_values(&[class])
        .inc();
    res
}
