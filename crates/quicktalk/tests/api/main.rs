//! Integration tests: the real server (in-process, `127.0.0.1:0`, fresh data dir
//! per test) driven over real HTTP and real WebSocket STOMP clients.

mod accounts;
mod backpressure;
mod helpers;
mod http_hardening;
mod limits;
mod matching;
mod messaging;
mod presence;
mod protocol;
mod recovery;
mod rooms;
