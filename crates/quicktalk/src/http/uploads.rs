//! `/api/v1/uploads*`: resumable uploads speaking tus 1.0.0 (core, `creation`,
//! `termination`; <https://tus.io/protocols/resumable-upload>). Chosen over an
//! upload-session API of our own because it is a published protocol with
//! clients in every language (tus-js-client, Uppy, TUSKit…), and its core is
//! small: create with the length, `HEAD` for the offset, `PATCH` from the offset.
//!
//! Differences a client may notice: the `PATCH` that brings the last byte
//! answers `200` with the file's JSON (the spec's "204" for the others); the
//! finished upload's id is the file's id, and `HEAD` on it answers with
//! `Upload-Offset` = `Upload-Length` = the stored size and a
//! `QuickTalk-Media-Id` header (so a client whose last answer was lost knows).
//! The domain side is `domain::uploads`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Path};
use super::media::{check_upload_rate, upload_stream};
use crate::domain::uploads::UploadState;
use crate::error::AppError;
use crate::model::MediaView;
use crate::state::AppState;

type S = State<Arc<AppState>>;

const VERSION: &str = "1.0.0";
const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const MEDIA_ID: HeaderName = HeaderName::from_static("quicktalk-media-id");
/// Longest `Upload-Metadata` header read.
const MAX_METADATA: usize = 4096;

fn tus_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Result<u64, AppError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            AppError::invalid(
                "invalid_header",
                format!("{name} must be a non-negative integer"),
            )
        })
}

/// A request without `Tus-Resumable: 1.0.0`: 412 with the versions we speak.
fn check_version(headers: &HeaderMap) -> Option<Response> {
    let ok = headers
        .get(&TUS_RESUMABLE)
        .is_some_and(|v| v.as_bytes() == VERSION.as_bytes());
    if ok {
        return None;
    }
    let mut h = tus_headers();
    h.insert("tus-version", HeaderValue::from_static(VERSION));
    Some((StatusCode::PRECONDITION_FAILED, h).into_response())
}

/// The `filename` (or `name`) of `Upload-Metadata: key base64,key base64`.
fn file_name(headers: &HeaderMap) -> Result<String, AppError> {
    let Some(raw) = headers.get(&UPLOAD_METADATA) else {
        return Ok(String::new());
    };
    let bad = || AppError::invalid("invalid_header", "Upload-Metadata is malformed");
    if raw.len() > MAX_METADATA {
        return Err(bad());
    }
    let raw = raw.to_str().map_err(|_| bad())?;
    for pair in raw.split(',') {
        let mut it = pair.trim().splitn(2, ' ');
        let key = it.next().unwrap_or_default();
        if key == "filename" || key == "name" {
            let value = it.next().unwrap_or_default().trim();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| bad())?;
            return String::from_utf8(bytes).map_err(|_| bad());
        }
    }
    Ok(String::new())
}

/// `OPTIONS /uploads`: what this server speaks.
#[utoipa::path(
    options,
    path = "/uploads",
    operation_id = "uploads_options",
    tag = "uploads",
    responses(
        (status = 204, description = "Tus-Version, Tus-Extension, Tus-Max-Size"),
    ),
)]
pub async fn options(State(state): S) -> Response {
    let mut h = tus_headers();
    h.insert("tus-version", HeaderValue::from_static(VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,termination"),
    );
    h.insert(
        "tus-max-size",
        HeaderValue::from(state.config.max_upload_bytes),
    );
    (StatusCode::NO_CONTENT, h).into_response()
}

/// `POST /uploads` with `Upload-Length` (and `Upload-Metadata: filename …`).
#[utoipa::path(
    post,
    path = "/uploads",
    operation_id = "uploads_create",
    tag = "uploads",
    params(
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Length" = u64, Header, description = "Total bytes"),
        ("Upload-Metadata" = Option<String>, Header, description = "`filename <base64>`"),
    ),
    responses(
        (status = 201, description = "Created: Location, Upload-Offset 0"),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 412, description = "Tus-Resumable missing or unsupported", body = super::openapi::ErrorBody),
        (status = 413, description = "Too large", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): S,
    Caller(user): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(r) = check_version(&headers) {
        return Ok(r);
    }
    check_upload_rate(&state, user.id, ip)?;
    let length = number(&headers, &UPLOAD_LENGTH)?;
    let name = file_name(&headers)?;
    let upload = state.media.start_upload(&user, &name, length).await?;
    let mut h = tus_headers();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/uploads/{}", upload.id)).expect("ascii"),
    );
    h.insert(UPLOAD_OFFSET, HeaderValue::from(0));
    Ok((StatusCode::CREATED, h).into_response())
}

fn state_headers(s: &UploadState) -> HeaderMap {
    let mut h = tus_headers();
    match s {
        UploadState::InProgress(u) => {
            h.insert(UPLOAD_OFFSET, HeaderValue::from(u.offset));
            h.insert(UPLOAD_LENGTH, HeaderValue::from(u.length));
        }
        UploadState::Done(m) => {
            h.insert(UPLOAD_OFFSET, HeaderValue::from(m.size));
            h.insert(UPLOAD_LENGTH, HeaderValue::from(m.size));
            h.insert(MEDIA_ID, HeaderValue::from_str(&m.id).expect("ascii"));
        }
    }
    h
}

/// `HEAD /uploads/{id}`: how far it got.
#[utoipa::path(
    head,
    path = "/uploads/{id}",
    operation_id = "uploads_head",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "upload id (or, once finished, the media id)"),
    ),
    responses(
        (status = 200, description = "Upload-Offset and Upload-Length (and QuickTalk-Media-Id when finished)"),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn head(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let s = state.media.upload_state(&user, &id).await?;
    Ok((StatusCode::OK, state_headers(&s)).into_response())
}

/// `PATCH /uploads/{id}` with `Upload-Offset` and the next bytes.
#[utoipa::path(
    patch,
    path = "/uploads/{id}",
    operation_id = "uploads_patch",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "upload id (or, once finished, the media id)"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Offset" = u64, Header, description = "Where this piece starts"),
    ),
    request_body(content((Vec<u8> = "application/offset+octet-stream"))),
    responses(
        (status = 204, description = "Piece stored; Upload-Offset"),
        (status = 200, description = "The last piece: the stored file", body = crate::model::MediaView),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 409, description = "Conflict", body = super::openapi::ErrorBody),
        (status = 412, description = "Tus-Resumable missing or unsupported", body = super::openapi::ErrorBody),
        (status = 413, description = "Too large", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn patch(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let headers = req.headers();
    if let Some(r) = check_version(headers) {
        return Ok(r);
    }
    let offset_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "application/offset+octet-stream");
    if !offset_ct {
        return Err(AppError::invalid(
            "unsupported_media_type",
            "a PATCH body must be Content-Type: application/offset+octet-stream",
        )
        .into());
    }
    let offset = number(headers, &UPLOAD_OFFSET)?;
    let idle = std::time::Duration::from_millis(state.config.http_body_timeout_ms);
    let body = upload_stream(req.into_body().into_data_stream(), idle);
    let s = state.media.append_piece(&user, &id, offset, body).await?;
    let h = state_headers(&s);
    Ok(match s {
        UploadState::InProgress(_) => (StatusCode::NO_CONTENT, h).into_response(),
        UploadState::Done(m) => (
            StatusCode::OK,
            h,
            axum::Json(serde_json::to_value(MediaView(&m)).expect("media serializes")),
        )
            .into_response(),
    })
}

/// `DELETE /uploads/{id}`: cancel; what was stored goes.
#[utoipa::path(
    delete,
    path = "/uploads/{id}",
    operation_id = "uploads_delete",
    tag = "uploads",
    params(
        ("id" = String, Path, description = "upload id (or, once finished, the media id)"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
    ),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 412, description = "Tus-Resumable missing or unsupported", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(r) = check_version(&headers) {
        return Ok(r);
    }
    state.media.cancel_upload(&user, &id).await?;
    Ok((StatusCode::NO_CONTENT, tus_headers()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(UPLOAD_METADATA, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn the_file_name_comes_from_upload_metadata() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("사진 1.jpg");
        assert_eq!(
            file_name(&meta(&format!("filetype aW1hZ2U=,filename {b64}"))).unwrap(),
            "사진 1.jpg"
        );
        assert_eq!(
            file_name(&meta(&format!("name {b64}"))).unwrap(),
            "사진 1.jpg"
        );
        assert_eq!(file_name(&meta("is_private")).unwrap(), "");
        assert_eq!(file_name(&HeaderMap::new()).unwrap(), "");
        assert!(file_name(&meta("filename !!!")).is_err());
        let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe]);
        assert!(file_name(&meta(&format!("filename {not_utf8}"))).is_err());
        let long = format!("filename {}", "A".repeat(MAX_METADATA + 1));
        assert!(file_name(&meta(&long)).is_err());
    }

    #[test]
    fn numbers_and_versions_are_checked() {
        let mut h = HeaderMap::new();
        assert!(number(&h, &UPLOAD_OFFSET).is_err());
        h.insert(UPLOAD_OFFSET, HeaderValue::from_static("-1"));
        assert!(number(&h, &UPLOAD_OFFSET).is_err());
        h.insert(UPLOAD_OFFSET, HeaderValue::from_static("42"));
        assert_eq!(number(&h, &UPLOAD_OFFSET).unwrap(), 42);
        assert!(check_version(&h).is_some());
        h.insert(TUS_RESUMABLE, HeaderValue::from_static("0.2.2"));
        assert_eq!(
            check_version(&h).unwrap().status(),
            StatusCode::PRECONDITION_FAILED
        );
        h.insert(TUS_RESUMABLE, HeaderValue::from_static("1.0.0"));
        assert!(check_version(&h).is_none());
    }
}
