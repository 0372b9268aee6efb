//! The JSON REST API and ops endpoints (contract §2): thin axum handlers over the
//! domain services. Errors are mapped to `{"error":{"code","message"}}` in one
//! place (`error`); every body, path and query input has a limit and a typed error.

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
mod ops;
mod profiles;
mod rooms;
pub mod server;
mod uploads;
mod web;
mod ws;

pub use error::ApiError;

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
use axum::routing::{delete, get, head, post};
use axum::Router;

use crate::state::AppState;

/// `/metrics` alone, for the `--metrics-listen` listener.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(error::not_found)
        .with_state(state)
}

/// The public listener's routes (`/metrics` only with `--metrics-public`).
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/auth/signup", post(accounts::signup))
        .route("/auth/login", post(accounts::login))
        .route("/auth/guest", post(accounts::guest))
        .route("/auth/upgrade", post(profiles::upgrade))
        .route("/me", get(accounts::me).patch(profiles::patch_me))
        .route("/users/{id}", get(accounts::user))
        .route("/users/by-username/{username}", get(profiles::by_username))
        .route("/avatars/{id}", get(profiles::avatar))
        .route("/friends", get(friends::list))
        .route("/friends/{user_id}", delete(friends::unfriend))
        .route(
            "/friends/requests",
            get(friends::requests).post(friends::request),
        )
        .route("/friends/requests/{id}", delete(friends::cancel))
        .route("/friends/requests/{id}/accept", post(friends::accept))
        .route("/friends/requests/{id}/decline", post(friends::decline))
        .route("/blocks", get(friends::blocks).post(friends::block))
        .route("/blocks/{user_id}", delete(friends::unblock))
        .route("/direct", post(friends::direct))
        .route("/rooms", get(rooms::list).post(rooms::create))
        .route("/rooms/{id}", get(rooms::get).patch(rooms::patch))
        .route("/rooms/{id}/join", post(rooms::join))
        .route("/rooms/{id}/leave", post(rooms::leave))
        .route("/rooms/{id}/members", get(rooms::members))
        .route(
            "/rooms/{id}/messages",
            get(rooms::messages).post(rooms::post_message),
        )
        .route("/rooms/{id}/read", post(rooms::read))
        .route("/match", get(matching::get))
        .route("/match/connect", post(matching::connect))
        .route("/match/next", post(matching::next))
        .route("/match/disconnect", post(matching::disconnect))
        .route("/match/report", post(matching::report))
        .route("/admin/queue", get(admin::queue))
        .route("/admin/queue/{id}/resolve", post(admin::resolve))
        .route(
            "/admin/users/{id}/ban",
            post(admin::ban).delete(admin::unban),
        )
        .route("/admin/bans", get(admin::bans))
        .route("/admin/messages/{id}", delete(admin::delete_message))
        .route("/messages/{id}/report", post(messages::report))
        // Streamed bodies: no buffering (see `body`), no extractor limit; the
        // media service enforces `--max-upload-bytes`.
        .route(
            "/media",
            post(media::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/media/sign", post(media::sign))
        .route("/media/{id}", get(media::original))
        .route("/media/{id}/thumbnail", get(media::thumbnail))
        .route("/media/{id}/info", get(media::info))
        .route("/uploads", post(uploads::create).options(uploads::options))
        .route(
            "/uploads/{id}",
            head(uploads::head)
                .patch(uploads::patch)
                .delete(uploads::delete),
        )
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
