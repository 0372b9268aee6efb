//! Domain services: accounts, rooms, the message pipeline, matching and
//! moderators' tools (`moderators`). They know nothing of
//! HTTP or STOMP; the `http` and `realtime` adapters call them and map
//! [`crate::error::AppError`] to their wire.

pub mod accounts;
pub mod avatars;
pub mod matching;
pub mod media;
pub mod moderation;
pub mod moderators;
pub mod people;
pub mod pipeline;
pub mod profiles;
pub mod push;
pub mod rooms;
pub mod search;
pub mod signed_urls;
pub mod tokens;
pub mod uploads;
pub mod validate;
