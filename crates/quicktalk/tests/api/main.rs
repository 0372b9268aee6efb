//! Integration tests: the real server (in-process, `127.0.0.1:0`, fresh data dir
//! per test) driven over real HTTP and real WebSocket STOMP clients.

#[path = "../common/cluster_env.rs"]
mod cluster_env;
#[path = "../common/push_service.rs"]
mod push_service;
#[path = "../common/s3_env.rs"]
mod s3_env;
#[path = "../common/skip.rs"]
mod skip;

mod accounts;
mod admin;
mod authz;
mod backpressure;
mod blocks;
mod cluster;
mod guests;
mod helpers;
mod http_hardening;
mod leave_race;
mod limits;
mod matching;
mod media;
mod messaging;
mod moderation;
mod openapi;
mod people;
mod pipeline_faults;
mod presence;
mod protocol;
mod push;
mod push_service_selftest;
mod rawws;
mod receipts;
mod recovery;
mod replay;
mod rooms;
mod search;
mod timeouts;
