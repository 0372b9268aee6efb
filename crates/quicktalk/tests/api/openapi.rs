//! The OpenAPI document (`GET /api/v1/openapi.json`) against the real router:
//! every documented path and method reaches a handler (not the fallback), every
//! other method on a documented path is 405, and no `/api/v1` route is
//! registered around the `OpenApiRouter` (which would serve it undocumented).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

/// The methods a path item may document (OpenAPI 3.1 fixed fields).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &crate::helpers::TestApp) -> Value {
    let res = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    res.json().await.unwrap()
}

/// `(method, path)` of every documented operation.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// Whether an answer is the router's own (no handler ran): the fallback's
/// `404 not_found "no such endpoint"` (a handler's 404 has another message, e.g.
/// "room not found", or the `Path` extractor's "not found") or any 405.
fn is_router_answer(status: StatusCode, body: &str) -> bool {
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return true;
    }
    if status != StatusCode::NOT_FOUND {
        return false;
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["error"]["code"] == "not_found" && v["error"]["message"] == "no such endpoint"
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_covers_the_api() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1"), "{version}");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let ops = operations(&doc);
    // Spot checks: the contract's routes, with the full /api/v1 prefix.
    for (m, p) in [
        ("post", "/api/v1/auth/signup"),
        ("get", "/api/v1/rooms/{id}/messages"),
        ("delete", "/api/v1/admin/users/{id}/ban"),
        ("head", "/api/v1/uploads/{id}"),
        ("get", "/api/v1/openapi.json"),
    ] {
        assert!(ops.contains(&(m.into(), p.into())), "{m} {p} undocumented");
    }
    // Operation ids are unique (OpenAPI requires it; generators name methods by them).
    let ids: Vec<_> = ops
        .iter()
        .map(|(m, p)| {
            doc["paths"][p][m]["operationId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate operationId in {ids:?}");
    // Every operation has a tag and at least one response; every error
    // response uses the one error schema.
    for (m, p) in &ops {
        let op = &doc["paths"][p][m];
        assert!(op["tags"][0].is_string(), "{m} {p}: no tag");
        let responses = op["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{m} {p}: no responses");
        for (status, r) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{m} {p} {status}"
                );
            }
        }
    }
    // Every `$ref` resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r.clone());
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {r}"
        );
    }
    app.stop().await;
}

/// A value for each `{param}` of `path`: the real upload for `/uploads/{id}`
/// (so `HEAD`, whose 404 has no body to tell apart, gets 200), `1` for integer
/// ids, a well-formed media id otherwise.
fn concrete(doc: &Value, method: &str, path: &str, upload: &str) -> String {
    let params = doc["paths"][path][method]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out = path.to_owned();
    for p in params.iter().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().unwrap();
        let value = if path.starts_with("/api/v1/uploads/") {
            upload.to_owned()
        } else if p["schema"]["type"] == "integer" {
            "1".to_owned()
        } else {
            "AAAAAAAAAAAAAAAAAAAAAA".to_owned()
        };
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    assert!(
        !out.contains('{'),
        "{method} {path}: undocumented path parameter"
    );
    out
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler_and_others_are_405() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let user = app
        .signup(&format!("oa{}", crate::helpers::rand_id() % 100_000))
        .await;
    // A real resumable upload, for `/uploads/{id}`.
    let res = app
        .http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&user.token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let upload = location.rsplit('/').next().unwrap().to_owned();

    let send = |method: &str, url: String| {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = app.http.request(m.clone(), url).bearer_auth(&user.token);
        if [Method::POST, Method::PUT, Method::PATCH].contains(&m) {
            req = req.header("content-type", "application/json").body("{}");
        }
        req.send()
    };

    // (b) every documented operation is served by a handler. The DELETE of the
    // upload runs last (it removes the upload the HEAD and PATCH probes use).
    let mut ordered: Vec<_> = ops.iter().collect();
    ordered.sort_by_key(|(m, p)| {
        (
            m == "delete" && p.starts_with("/api/v1/uploads/"),
            m.clone(),
        )
    });
    for (m, p) in ordered {
        let url = app.url(&concrete(&doc, m, p, &upload));
        let res = send(m, url).await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(
            !is_router_answer(status, &body),
            "{m} {p}: answered by the router, not a handler: {status} {body}"
        );
        if m == "head" {
            assert_eq!(status, StatusCode::OK, "{m} {p}");
        }
    }

    // (c) every other method on a documented path is 405 (the API's
    // `method_not_allowed` JSON; HEAD answers carry no body). HEAD counts as
    // documented wherever GET is (axum serves it with the GET handler).
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for p in paths {
        let has = |m: &str| ops.contains(&(m.to_owned(), p.clone()));
        for m in METHODS {
            if has(m) || (m == "head" && has("get")) {
                continue;
            }
            // The path parameters as one documented method declares them.
            let any = METHODS.iter().find(|x| has(x)).unwrap();
            let url = app.url(&concrete(&doc, any, p, &upload));
            let res = send(m, url).await.unwrap();
            let status = res.status();
            let body = res.text().await.unwrap();
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{m} {p}: undocumented method answered {status} {body}"
            );
            if m != "head" {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["error"]["code"], "method_not_allowed", "{m} {p}");
            }
        }
    }
    app.stop().await;
}

/// The routes the source registers, read from `src/http/*.rs`.
struct Registrations {
    /// `(file, first argument)` of every `.route(`/`.route_service(` call.
    routes: Vec<(String, String)>,
    /// First arguments of every `.nest(` call.
    nests: Vec<String>,
    /// Calls that would add routes no scan can see (`.merge(`, `.nest_service(`).
    opaque: Vec<String>,
    /// Handlers listed in `routes!(…)` calls.
    documented_handlers: usize,
}

fn scan_sources() -> Registrations {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut r = Registrations {
        routes: vec![],
        nests: vec![],
        opaque: vec![],
        documented_handlers: 0,
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 5, "src/http not found at {}", dir.display());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&file).unwrap();
        // Comments may mention the calls; only code counts.
        let code: String = src
            .lines()
            .map(|l| match l.find("//") {
                Some(i) => &l[..i],
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        // Every call form, with any white space before the `(`.
        let compact: String = code.split_whitespace().collect::<Vec<_>>().join("");
        for call in [".route(", ".route_service("] {
            for (i, _) in compact.match_indices(call) {
                let arg = &compact[i + call.len()..];
                let arg = arg.split(',').next().unwrap_or_default().to_owned();
                r.routes.push((name.clone(), arg));
            }
        }
        for (i, _) in compact.match_indices(".nest(") {
            let arg = &compact[i + ".nest(".len()..];
            r.nests
                .push(arg.split(',').next().unwrap_or_default().to_owned());
        }
        for call in [".merge(", ".nest_service(", ".fallback_service("] {
            for _ in compact.match_indices(call) {
                r.opaque.push(format!("{name}: {call}"));
            }
        }
        for (i, _) in compact.match_indices("routes!(") {
            let args = &compact[i + "routes!(".len()..];
            let args = &args[..args.find(')').unwrap()];
            r.documented_handlers += args.split(',').filter(|a| !a.is_empty()).count();
        }
    }
    r
}

/// No `/api/v1` route bypasses the `OpenApiRouter`: `src/http` registers plain
/// axum routes only for the listed non-API paths (string literals, so nothing
/// can hide behind a variable), nests exactly one router (the documented API
/// at `/api/v1`), and merges nothing. A new `.route("/friends", …)` anywhere
/// in `src/http` fails here; it must be a `routes!` entry (see `http/mod.rs`).
/// Then the handlers listed in `routes!` must be exactly the documented
/// operations (each handler here serves one method), so the router's
/// (method, path) set and the document's are the same set.
#[tokio::test]
async fn no_api_route_is_registered_outside_the_openapi_router() {
    const NON_API: [&str; 6] = [
        "\"/metrics\"",
        "\"/healthz\"",
        "\"/ws\"",
        "\"/\"",
        "\"/sw.js\"",
        "\"/assets/{*path}\"",
    ];
    let r = scan_sources();
    assert!(!r.routes.is_empty(), "the scan found no routes at all");
    for (file, arg) in &r.routes {
        assert!(
            NON_API.contains(&arg.as_str()),
            "{file}: `.route({arg}, …)` registers a route outside the OpenApiRouter; \
             use `#[utoipa::path]` and `routes!` (http/mod.rs explains)"
        );
    }
    assert_eq!(r.nests, ["\"/api/v1\""], "only the API router is nested");
    assert!(
        r.opaque.is_empty(),
        "unscannable registrations: {:?}",
        r.opaque
    );

    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(
        operations(&doc).len(),
        r.documented_handlers,
        "handlers in routes!(…) vs operations in the document"
    );
    app.stop().await;
}
