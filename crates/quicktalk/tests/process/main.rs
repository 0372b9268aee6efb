//! Process-level tests: the real `quicktalk` binary, started, killed, signalled and
//! restarted on the same data dir, driven over HTTP, WebSocket STOMP, raw TCP
//! STOMP and (when installed) the stock stomp.js client.

mod harness;

mod crash;
mod heartbeat;
mod stompjs;
mod tcp;
