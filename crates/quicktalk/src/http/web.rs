//! The web UI: static files from `crates/quicktalk/web/`, compiled into the
//! binary, served at `/` and `/assets/…`, and the service worker (Web Push) at
//! `/sw.js`, where its scope is the whole site. No build step and nothing fetched from
//! elsewhere at run time (the vendored `@stomp/stompjs` bundle included). Each
//! response carries a content hash as its `ETag` (a repeat visit costs a 304),
//! and the page gets a strict Content-Security-Policy: scripts, styles and
//! connections only to this origin; the service worker runs under the same policy.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha1::{Digest, Sha1};

use super::ApiError;

struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!("../../web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("attachments.js", JS),
    asset!("chat.js", JS),
    asset!("dom.js", JS),
    asset!("i18n.js", JS),
    asset!("live.js", JS),
    asset!("moderation.js", JS),
    asset!("people.js", JS),
    asset!("people_views.js", JS),
    asset!("profile.js", JS),
    asset!("report.js", JS),
    asset!("search.js", JS),
    asset!("tray.js", JS),
    asset!("upload.js", JS),
    asset!("notify.js", JS),
    asset!("sw.js", JS),
    asset!("icon.svg", "image/svg+xml"),
    asset!("vendor/stomp.umd.min.js", JS),
    asset!("vendor/stompjs-LICENSE", "text/plain; charset=utf-8"),
];

/// Same-origin only. `connect-src 'self'` covers ws:// and wss:// to this host;
/// `blob:` images are the previews of files still being uploaded and avatars
/// (fetched with the bearer token), `media-src`
/// lets the players load (signed) files from this origin; `worker-src` is the
/// service worker (`/sw.js`).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data: blob:; media-src 'self' blob:; \
                   connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(Sha1::digest(a.body))[..20]))
            .collect()
    })
}

fn serve(i: usize, headers: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime))],
            asset.body,
        )
            .into_response()
    };
    let h = res.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex etag"));
    // Revalidate every time: a new binary must never run with old scripts.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.mime.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    } else if asset.path == SERVICE_WORKER {
        // A worker's policy is the one its script was served with.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    res
}

const SERVICE_WORKER: &str = "sw.js";

pub async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `/sw.js`: at the root, so that its default scope is `/`.
pub async fn service_worker(headers: HeaderMap) -> Response {
    let i = ASSETS
        .iter()
        .position(|a| a.path == SERVICE_WORKER)
        .expect("the service worker is embedded");
    serve(i, &headers)
}

pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    match ASSETS
        .iter()
        .position(|a| a.path == path && a.path != "index.html" && a.path != SERVICE_WORKER)
    {
        Some(i) => Ok(serve(i, &headers)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such file",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_served_as_javascript() {
        for a in ASSETS {
            if a.path.ends_with(".js") {
                assert_eq!(a.mime, JS, "{}", a.path);
            }
        }
    }

    #[tokio::test]
    async fn the_service_worker_is_served_at_the_root_under_the_page_policy() {
        let res = service_worker(HeaderMap::new()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert!(CSP.contains("worker-src 'self'"));
        // Only at the root: under /assets/ its scope could not cover the app.
        assert!(asset(Path("sw.js".into()), HeaderMap::new()).await.is_err());
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        // A module imported by another one but missing here would 404 at run time.
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).expect("utf-8");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let from = line.rsplit("from \"./").next().unwrap_or("");
                let file = from.split('"').next().unwrap_or("");
                assert!(
                    ASSETS.iter().any(|b| b.path == file),
                    "{} imports {file}, which is not embedded",
                    a.path
                );
            }
        }
    }
}
