//! Process-level tests: the real `quicktalk` binary, started, killed, signalled and
//! restarted on the same data dir, driven over HTTP, WebSocket STOMP, raw TCP
//! STOMP, `quicktalk moderate`, (when installed) the stock stomp.js client, the web UI in chromium,
//! and Web Push to the tests' own push service, cross-checked with Python's `http_ece`.

#[path = "../common/cluster_env.rs"]
mod cluster_env;
#[path = "../common/push_service.rs"]
mod push_service;
#[path = "../common/s3_env.rs"]
mod s3_env;
#[path = "../common/skip.rs"]
mod skip;

mod harness;

mod cluster;
mod crash;
mod heartbeat;
mod moderate;
mod push;
mod search;
mod stompjs;
mod tcp;
mod web_ui;
