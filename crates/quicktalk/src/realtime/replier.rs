//! Replies a session sends from anywhere, including tasks that outlive the frame
//! that caused them: RECEIPTs and application errors on `/user/queue/errors`.
//! A RECEIPT means the frame took effect (contract v2): a rejected frame gets its
//! error event, carrying `receipt_id`, and no RECEIPT.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use quicktalk_stomp::{Command, Frame};
use serde_json::json;

use crate::error::AppError;
use crate::fanout::{Hub, Outbound, Outlet, USER_ERRORS};

#[derive(Clone)]
pub struct Replier {
    pub outlet: Arc<Outlet>,
    hub: Arc<Hub>,
    /// The subscription id of `/user/queue/errors`, once the client subscribed.
    errors_sub: Arc<Mutex<Option<Arc<str>>>>,
}

impl Replier {
    pub fn new(outlet: Arc<Outlet>, hub: Arc<Hub>) -> Self {
        Replier {
            outlet,
            hub,
            errors_sub: Arc::default(),
        }
    }

    pub fn set_errors_sub(&self, sub: Option<Arc<str>>) {
        *self.errors_sub.lock() = sub;
    }

    pub fn errors_sub(&self) -> Option<Arc<str>> {
        self.errors_sub.lock().clone()
    }

    pub fn frame(&self, f: Frame) {
        self.outlet.push(Outbound::frame(f));
    }

    pub fn receipt(&self, receipt: Option<&str>) {
        if let Some(r) = receipt {
            self.frame(Frame::new(Command::Receipt).with_header("receipt-id", r));
        }
    }

    /// Sends an application rejection to `/user/queue/errors` (if subscribed), with
    /// the frame's `receipt` as `receipt_id`; no RECEIPT follows.
    pub fn app_error(&self, err: &AppError, destination: &str, receipt: Option<&str>) {
        if let AppError::Internal(cause) = err {
            tracing::error!(error = %format!("{cause:#}"), destination, "internal error");
        }
        if let Some(sub) = self.errors_sub() {
            let mut body = json!({
                "type": "error",
                "code": err.code(),
                "message": err.public_message(),
                "destination": destination,
            });
            if let Some(r) = receipt {
                body["receipt_id"] = r.into();
            }
            if let Some(c) = err.categories() {
                body["categories"] = c.into();
            }
            if let Some(wait) = err.retry_after() {
                body["retry_after_ms"] = (wait.as_micros().div_ceil(1000).max(1) as u64).into();
            }
            let event = self
                .hub
                .event(USER_ERRORS.into(), None, Bytes::from(body.to_string()));
            self.outlet.push(Outbound::Event { sub, event });
        }
    }
}
