//! Request bodies, read in full before any handler runs: within a total
//! deadline (`--http-body-timeout-ms`; hyper only times out headers) and up to
//! `--max-body-bytes`. A client that stalls gets 408 and the connection closes;
//! an oversized body gets the contract's 413 `too_large` JSON on every route.
//! Uploads are the exception: their handlers stream the body (`media`, `uploads`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;

use super::ApiError;
use crate::state::AppState;

fn closing(err: ApiError) -> Response {
    let mut res = err.into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

fn too_large() -> Response {
    closing(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "request body is too large",
    ))
}

/// The `Content-Length` a request declares, if it is a number.
pub fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Whether a request's body is an upload, streamed by its handler (direct
/// uploads and resumable-upload pieces) instead of read here.
fn streamed(req: &Request) -> bool {
    let path = req.uri().path();
    (req.method() == Method::POST && path == "/api/v1/media")
        || (req.method() == Method::PATCH && path.starts_with("/api/v1/uploads/"))
}

pub async fn read_body(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() || streamed(&req) {
        return next.run(req).await;
    }
    let limit = state.config.max_body_bytes;
    let declared = content_length(req.headers());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let deadline = Duration::from_millis(state.config.http_body_timeout_ms);
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                too_large()
            } else {
                closing(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "the request body could not be read",
                ))
            }
        }
        Err(_) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body took too long to arrive",
        )),
    }
}
