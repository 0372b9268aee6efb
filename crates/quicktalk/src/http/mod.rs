//! The JSON REST API and ops endpoints (contract §2): thin axum handlers over the
//! domain services. Errors are mapped to `{"error":{"code","message"}}` in one
//! place (`error`); every body, path and query input has a limit and a typed error.
//!
//! Every `/api/v1` route is registered through [`api_routes`], an
//! [`OpenApiRouter`], so it is also described in the OpenAPI 3.1 document
//! served at `GET /api/v1/openapi.json` (`openapi`). How to add a route:
//! 1. annotate the handler with `#[utoipa::path(METHOD, path = "/things/{id}",
//!    operation_id = "module_handler", tag = "…", params(…), request_body = Body, responses(…),
//!    security(("bearer" = [])))]` (the path is relative to `/api/v1`;
//!    errors use `body = openapi::ErrorBody`);
//! 2. derive `utoipa::ToSchema` on its request and response bodies
//!    (`utoipa::IntoParams` on query structs);
//! 3. add `.routes(routes!(module::handler))` in [`api_routes`] (handlers of
//!    one path go in one `routes!`, e.g. `routes!(rooms::get, rooms::patch)`).
//!
//! Never `.route(…)` an API path: `tests/api/openapi.rs` scans this directory
//! for that, and checks every documented path and method against the server.

mod accounts;
mod admin;
mod auth;
mod body;
pub mod client_ip;
mod error;
mod friends;
mod matching;
mod media;
mod messages;
mod openapi;
mod ops;
mod profiles;
mod push;
mod rooms;
mod search;
pub mod server;
mod uploads;
mod web;
mod ws;

pub use error::ApiError;
pub use openapi::{document as openapi_document, document_json as openapi_json};

/// The JSON request bodies, as the handlers parse them (public for the fuzz
/// targets in `fuzz/`).
pub mod bodies {
    pub use super::accounts::{Guest, Login, Signup};
    pub use super::admin::{BanBody, ResolveBody};
    pub use super::friends::UserTarget;
    pub use super::matching::Report;
    pub use super::messages::ReportMessage;
    pub use super::profiles::{PatchMe, Upgrade};
    pub use super::rooms::{CreateRoom, PatchRoom, PostMessage, Read};
}

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;

use crate::state::AppState;

/// `/metrics` alone, for the `--metrics-listen` listener.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(error::not_found)
        .with_state(state)
}

/// Every `/api/v1` route (paths relative to it), each with its OpenAPI
/// description. Register API routes only here, only with `routes!`.
fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(openapi::serve))
        .routes(routes!(accounts::signup))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::guest))
        .routes(routes!(profiles::upgrade))
        .routes(routes!(accounts::me, profiles::patch_me))
        .routes(routes!(accounts::user))
        .routes(routes!(profiles::by_username))
        .routes(routes!(profiles::avatar))
        .routes(routes!(friends::list))
        .routes(routes!(friends::unfriend))
        .routes(routes!(friends::requests, friends::request))
        .routes(routes!(friends::cancel))
        .routes(routes!(friends::accept))
        .routes(routes!(friends::decline))
        .routes(routes!(friends::blocks, friends::block))
        .routes(routes!(friends::unblock))
        .routes(routes!(friends::direct))
        .routes(routes!(rooms::list, rooms::create))
        .routes(routes!(rooms::get, rooms::patch))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::leave))
        .routes(routes!(rooms::members))
        .routes(routes!(rooms::messages, rooms::post_message))
        .routes(routes!(rooms::read))
        .routes(routes!(search::search))
        .routes(routes!(push::level, push::set_level))
        .routes(routes!(push::key))
        .routes(routes!(push::subscribe, push::unsubscribe))
        .routes(routes!(matching::get))
        .routes(routes!(matching::connect))
        .routes(routes!(matching::next))
        .routes(routes!(matching::disconnect))
        .routes(routes!(matching::report))
        .routes(routes!(admin::queue))
        .routes(routes!(admin::resolve))
        .routes(routes!(admin::ban, admin::unban))
        .routes(routes!(admin::bans))
        .routes(routes!(admin::delete_message))
        .routes(routes!(messages::report))
        // Streamed bodies: no buffering (see `body`), no extractor limit; the
        // media service enforces `--max-upload-bytes`.
        .routes(routes!(media::upload).layer(DefaultBodyLimit::disable()))
        .routes(routes!(media::sign))
        .routes(routes!(media::original))
        .routes(routes!(media::thumbnail))
        .routes(routes!(media::info))
        .routes(routes!(uploads::create, uploads::options))
        .routes(routes!(uploads::head, uploads::patch, uploads::delete))
}

/// The public listener's routes (`/metrics` only with `--metrics-public`).
pub fn router(state: Arc<AppState>) -> Router {
    // Built and serialized once, before the first request.
    openapi::document_json();
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    let mut public = Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz));
    if state.config.metrics_public {
        public = public.route("/metrics", get(ops::metrics));
    }
    public
        .route("/ws", get(ws::upgrade))
        .route("/", get(web::index))
        .route("/sw.js", get(web::service_worker))
        .route("/assets/{*path}", get(web::asset))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body::read_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::count_responses,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .with_state(state)
}
