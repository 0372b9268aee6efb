//! Random 1:1 matching (contract §3 "Random matching").
//!
//! - `matcher`: the pure matching core (rules, fairness, grace, memory).
//! - `engine`: [`MatchEngine`], where matching state lives; `LocalMatchEngine`
//!   keeps it in this process. A multi-node engine can move it to a shared store
//!   without touching the adapters.
//! - [`MatchService`]: what the adapters call: input checks, rate limits, room
//!   creation, user events on the bus, metrics.

pub mod engine;
pub mod matcher;
mod service;

pub use engine::{LocalMatchEngine, MatchEngine};
pub use matcher::{MatcherConfig, Prefs, State};
pub use service::{state_json, MatchService, PrefsInput};
