//! Web Push on the wire (contract §8): the VAPID key that signs every request
//! ([`vapid`], RFC 8292) and the HTTP client that encrypts a payload for one
//! browser subscription (RFC 8291 `aes128gcm`) and delivers it to its push
//! service (RFC 8030), classifying the answer ([`deliver`]). What is pushed,
//! to whom and when is decided in `domain::push`; nothing here knows users or
//! rooms.

pub mod deliver;
pub mod vapid;
