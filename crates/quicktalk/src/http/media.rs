//! `/api/v1/media*` (contract §6): direct uploads (raw body or multipart),
//! downloads with access control, Range and safe headers, file info, and
//! signed URLs. The upload bodies are streamed (these routes are exempt from
//! the buffering in `body`), each chunk within `--http-body-timeout-ms` of the
//! last, so a stalled upload is dropped but a slow steady one is not.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::error::{ApiResult, Json, Path, Query};
use crate::domain::signed_urls::{Signature, Variant};
use crate::domain::tokens::bearer;
use crate::error::AppError;
use crate::imaging::safe_inline;
use crate::limits::{Key, Limit};
use crate::media::BodyStream;
use crate::model::{rfc3339, Media, MediaView, UserId};
use crate::state::AppState;

type S = State<Arc<AppState>>;

/// Signed URLs one `POST /media/sign` may ask for.
pub const MAX_SIGN_IDS: usize = 100;

/// A request body as an upload stream: each chunk must arrive within `idle`
/// of the previous one, or the stream ends with a timeout error.
pub fn upload_stream<'a, E>(
    body: impl Stream<Item = Result<bytes::Bytes, E>> + Send + 'a,
    idle: Duration,
) -> BodyStream<'a>
where
    E: std::fmt::Display,
{
    let body = body
        .map_err(|e| std::io::Error::other(e.to_string()))
        .boxed();
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(item)) => Some((item, Some(body))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no data arrived for too long",
                )),
                None,
            )),
        }
    })
    .fuse()
    .boxed()
}

fn idle(state: &AppState) -> Duration {
    Duration::from_millis(state.config.http_body_timeout_ms)
}

/// The limits every new upload (direct or resumable) is checked against.
pub fn check_upload_rate(state: &AppState, user: UserId, ip: std::net::IpAddr) -> ApiResult<()> {
    state.limits.check(Limit::UploadUser, Key::User(user))?;
    state.limits.check(Limit::UploadIp, Key::Ip(ip))?;
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    pub name: Option<String>,
}

/// `POST /media?name=…`: the raw bytes, or `multipart/form-data` with a part `file`.
#[utoipa::path(
    post,
    path = "/media",
    operation_id = "media_upload",
    tag = "media",
    params(
        UploadParams,
    ),
    request_body(
        description = "The raw file, or a form with one part named `file`",
        content((Vec<u8> = "application/octet-stream"), (Vec<u8> = "multipart/form-data"))
    ),
    responses(
        (status = 201, description = "Stored", body = crate::model::MediaView),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 413, description = "Too large", body = super::openapi::ErrorBody),
        (status = 429, description = "Rate limited (Retry-After)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn upload(
    State(state): S,
    Caller(user): Caller,
    ClientIp(ip): ClientIp,
    Query(p): Query<UploadParams>,
    req: Request,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    check_upload_rate(&state, user.id, ip)?;
    let limit = state.config.max_upload_bytes;
    let declared = super::body::content_length(req.headers());
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    if !multipart && declared.is_some_and(|n| n > limit) {
        return Err(
            AppError::TooLarge(format!("the file is larger than {limit} bytes").into()).into(),
        );
    }
    let media = if multipart {
        let mut form = axum::extract::Multipart::from_request(req, &state)
            .await
            .map_err(|e| AppError::invalid("invalid_body", e.body_text()))?;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| AppError::invalid("invalid_body", e.body_text()))?
                .ok_or_else(|| {
                    AppError::invalid("invalid_body", "the form has no part named \"file\"")
                })?;
            if field.name() != Some("file") {
                continue;
            }
            let name = p
                .name
                .clone()
                .or_else(|| field.file_name().map(str::to_owned))
                .unwrap_or_default();
            let body = upload_stream(field, idle(&state));
            break state.media.upload(&user, &name, body).await?;
        }
    } else {
        let name = p.name.unwrap_or_default();
        let body = upload_stream(req.into_body().into_data_stream(), idle(&state));
        state.media.upload(&user, &name, body).await?
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::to_value(MediaView(&media)).expect("media serializes")),
    ))
}

/// `GET /media/{id}/info`: the file's JSON, for whoever may read it.
#[utoipa::path(
    get,
    path = "/media/{id}/info",
    operation_id = "media_info",
    tag = "media",
    params(
        ("id" = String, Path, description = "media id"),
    ),
    responses(
        (status = 200, description = "The file", body = crate::model::MediaView),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn info(
    State(state): S,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let media = state.media.readable(user.id, &id).await?;
    Ok(axum::Json(
        serde_json::to_value(MediaView(&media)).expect("media serializes"),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignBody {
    pub ids: Vec<String>,
}

/// `POST /media/sign {"ids":[…]}` → short-lived URLs for the readable ones.
#[utoipa::path(
    post,
    path = "/media/sign",
    operation_id = "media_sign",
    tag = "media",
    request_body = SignBody,
    responses(
        (status = 200, description = "Short-lived URLs of the readable ids", body = super::openapi::Signed),
        (status = 400, description = "Bad input", body = super::openapi::ErrorBody),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn sign(
    State(state): S,
    Caller(user): Caller,
    Json(b): Json<SignBody>,
) -> ApiResult<axum::Json<Value>> {
    if b.ids.len() > MAX_SIGN_IDS {
        return Err(AppError::invalid(
            "too_many_ids",
            format!("at most {MAX_SIGN_IDS} ids per request"),
        )
        .into());
    }
    let (exp, signed) = state.media.sign(user.id, &b.ids).await?;
    let mut out = Map::new();
    for s in signed {
        let mut entry = json!({"url": s.url});
        if let Some(t) = s.thumbnail_url {
            entry["thumbnail_url"] = json!(t);
        }
        out.insert(s.media.id.clone(), entry);
    }
    Ok(axum::Json(
        json!({"expires_at": rfc3339(exp * 1000), "media": out}),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignedQuery {
    pub exp: Option<i64>,
    pub uid: Option<UserId>,
    pub sig: Option<String>,
}

/// `GET /media/{id}`: the stored original.
#[utoipa::path(
    get,
    path = "/media/{id}",
    operation_id = "media_original",
    tag = "media",
    params(
        ("id" = String, Path, description = "media id"),
        SignedQuery,
    ),
    responses(
        (status = 200, description = "The stored original", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
        (status = 416, description = "Range not satisfiable", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = []), ()),
)]
pub async fn original(
    State(state): S,
    Path(id): Path<String>,
    Query(q): Query<SignedQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download(&state, &id, Variant::Original, q, &headers).await
}

/// `GET /media/{id}/thumbnail`: the JPEG thumbnail of an image.
#[utoipa::path(
    get,
    path = "/media/{id}/thumbnail",
    operation_id = "media_thumbnail",
    tag = "media",
    params(
        ("id" = String, Path, description = "media id"),
        SignedQuery,
    ),
    responses(
        (status = 200, description = "The JPEG thumbnail", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No or invalid token", body = super::openapi::ErrorBody),
        (status = 403, description = "Not allowed (or banned)", body = super::openapi::ErrorBody),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = []), ()),
)]
pub async fn thumbnail(
    State(state): S,
    Path(id): Path<String>,
    Query(q): Query<SignedQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download(&state, &id, Variant::Thumbnail, q, &headers).await
}

/// Who is asking: a valid signature's user, or the bearer token's.
async fn reader(
    state: &AppState,
    id: &str,
    variant: Variant,
    q: SignedQuery,
    headers: &HeaderMap,
) -> ApiResult<UserId> {
    if let (Some(exp), Some(uid), Some(sig)) = (q.exp, q.uid, q.sig) {
        let s = Signature { exp, uid, sig };
        // A bad or expired link looks like a missing file: nothing to learn.
        let uid = state
            .media
            .check_signature(id, variant, &s)
            .ok_or(AppError::NotFound("media"))?;
        // A banned user's links stop working with their token.
        return Ok(state.accounts.active(uid).await?.id);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(AppError::unauthorized(
            "unauthorized",
            "missing Authorization: Bearer token (or a signed URL)",
        ))?;
    Ok(state.accounts.authenticate(token).await?.id)
}

/// `filename*=` of RFC 6266 / RFC 8187, plus an ASCII `filename=` fallback.
fn disposition(inline: bool, name: &str) -> HeaderValue {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const ATTR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    let v = format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The one byte range asked for, if any and if satisfiable; `Err` = 416.
/// Several ranges are answered with the whole file (RFC 9110 allows it).
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Ok(parsed) = http_range_header::parse_range_header(v) else {
        // Not a bytes range we understand: ignored, as RFC 9110 says.
        return Ok(None);
    };
    let ranges = parsed.validate(size).map_err(|_| ())?;
    match ranges.as_slice() {
        [one] => Ok(Some(*one.start()..one.end() + 1)),
        _ => Ok(None),
    }
}

async fn download(
    state: &AppState,
    id: &str,
    variant: Variant,
    q: SignedQuery,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let user = reader(state, id, variant, q, headers).await?;
    let media = state.media.readable(user, id).await?;
    let etag = match variant {
        Variant::Original => format!("\"{}\"", media.id),
        Variant::Thumbnail => format!("\"{}-t\"", media.id),
    };
    let mut out = HeaderMap::new();
    let (mime, inline) = match variant {
        Variant::Thumbnail => ("image/jpeg", true),
        Variant::Original if safe_inline(&media.mime) => (media.mime.as_str(), true),
        Variant::Original => ("application/octet-stream", false),
    };
    set_headers(&mut out, &media, mime, inline, &etag);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    // The thumbnail's size is not recorded: ranges apply to originals only.
    let range = match variant {
        Variant::Original => match requested_range(headers, media.size) {
            Ok(r) => r,
            Err(()) => {
                out.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{}", media.size)).expect("ascii"),
                );
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
            }
        },
        Variant::Thumbnail => None,
    };
    if media.size == 0 && variant == Variant::Original {
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        return Ok((StatusCode::OK, out, Body::empty()).into_response());
    }
    let read = state.media.open(&media, variant, range.clone()).await?;
    let len = read.range.end - read.range.start;
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let status = if range.is_some() {
        out.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!(
                "bytes {}-{}/{}",
                read.range.start,
                read.range.end - 1,
                read.total_size
            ))
            .expect("ascii"),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let body = Body::from_stream(read.body.map_err(|e| std::io::Error::other(e.to_string())));
    Ok((status, out, body).into_response())
}

fn set_headers(out: &mut HeaderMap, media: &Media, mime: &str, inline: bool, etag: &str) {
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    out.insert(
        header::CONTENT_DISPOSITION,
        disposition(inline, &media.name),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Opened directly, nothing in a file can run or reach anything.
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; media-src 'self'"),
    );
    out.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Files never change under an id; access can, so caches are private and short.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    out.insert(header::ETAG, HeaderValue::from_str(etag).expect("ascii"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        requested_range(&h, size)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-5", 100), Ok(Some(95..100)));
        assert_eq!(range("bytes=50-500", 100), Ok(Some(50..100)));
        assert_eq!(range("bytes=100-", 100), Err(()));
        // Several ranges: the whole file; a unit we do not know: ignored.
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
        assert_eq!(requested_range(&HeaderMap::new(), 100), Ok(None));
    }

    #[test]
    fn dispositions_encode_any_name() {
        let d = disposition(true, "사진 \"1\".jpg");
        let d = d.to_str().unwrap();
        assert!(d.starts_with("inline; filename=\"__ _1_.jpg\""), "{d}");
        assert!(
            d.contains("filename*=UTF-8''%EC%82%AC%EC%A7%84%20%221%22.jpg"),
            "{d}"
        );
        let d = disposition(false, "a\r\nb.txt");
        assert!(d.to_str().unwrap().starts_with("attachment;"));
        assert!(!d.to_str().unwrap().contains('\n'));
    }
}
