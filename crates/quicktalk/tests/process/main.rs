//! Process-level tests: the real `quicktalk` binary, started, killed, signalled and
//! restarted on the same data dir, driven over HTTP, WebSocket STOMP, raw TCP
//! STOMP, `quicktalk moderate`, (when installed) the stock stomp.js client, and the web UI in chromium.

#[path = "../common/cluster_env.rs"]
mod cluster_env;
#[path = "../common/s3_env.rs"]
mod s3_env;
#[path = "../common/skip.rs"]
mod skip;

mod harness;

mod cluster;
mod crash;
mod heartbeat;
mod moderate;
mod stompjs;
mod tcp;
mod web_ui;
