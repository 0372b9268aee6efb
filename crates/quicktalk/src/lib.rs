//! QuickTalk: a small, fast, self-hosted real-time chat server.
//!
//! Layers, outermost first (see ARCHITECTURE.md):
//! - [`http`] and [`realtime`]: adapters (REST + STOMP over WebSocket/TCP);
//! - [`domain`]: accounts, rooms, the message pipeline;
//! - [`fanout`]: who is subscribed where, and delivery to connections;
//! - [`store`], [`media`] and [`bus`]: storage (messages, file bytes) and event
//!   distribution behind narrow traits;
//! - [`model`] and [`confusables`]: plain data and pure name rules, used by all;
//! - [`imaging`]: pure functions over uploaded bytes (type, names, metadata, thumbnails);
//! - [`push`]: Web Push on the wire (VAPID, payload encryption, the push request).

pub mod admin;
pub mod bus;
pub mod cluster;
pub mod config;
pub mod confusables;
pub mod domain;
pub mod error;
pub mod fanout;
pub mod http;
pub mod imaging;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod model;
pub mod moderate;
pub mod push;
pub mod realtime;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;

pub use startup::Application;
