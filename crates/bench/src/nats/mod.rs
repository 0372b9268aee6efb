//! The NATS target's protocol and process: `proto` (the text protocol, no I/O),
//! `client` (a connection over WebSocket), `server` (the bench's own
//! nats-server: binary, generated config, process). How the scenarios use it
//! (subjects, JetStream stream) is in [`crate::target`] and [`crate::conn`].

pub mod client;
pub mod proto;
pub mod server;

pub use client::NatsClient;
