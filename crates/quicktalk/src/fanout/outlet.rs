//! A connection's bounded outbound queue, as seen by everything that sends to it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// A MESSAGE body built once and shared by every subscriber it goes to.
#[derive(Debug)]
pub struct Event {
    /// The room `seq` of a stored message; `None` for ephemeral events.
    pub seq: Option<i64>,
    pub destination: Arc<str>,
    pub message_id: Arc<str>,
    /// JSON, `content-type: application/json`.
    pub body: Bytes,
}

/// One item of a connection's outbound queue.
#[derive(Debug)]
pub enum Outbound {
    /// A MESSAGE for subscription `sub`.
    Event { sub: Arc<str>, event: Arc<Event> },
    /// Any other frame (CONNECTED, RECEIPT, ERROR).
    Frame(quicktalk_stomp::Frame),
    /// Close the connection once everything queued before it is written.
    Close,
}

/// The sending side of one connection: a bounded queue plus a kill switch.
pub struct Outlet {
    pub id: u64,
    tx: mpsc::Sender<Outbound>,
    capacity: usize,
    closing: CancellationToken,
    reason: Mutex<Option<String>>,
    drained: Notify,
    metrics: Arc<Metrics>,
}

impl Outlet {
    pub fn new(
        id: u64,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> (Arc<Outlet>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        let outlet = Arc::new(Outlet {
            id,
            tx,
            capacity,
            closing: CancellationToken::new(),
            reason: Mutex::new(None),
            drained: Notify::new(),
            metrics,
        });
        (outlet, rx)
    }

    /// Queues without waiting. A full queue means the client cannot keep up: the
    /// connection is closed with an ERROR rather than buffering without bound.
    pub fn push(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.outbound_drops.inc();
                self.kill("slow consumer: outbound queue is full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues bulk traffic (history replay): waits until at least half the queue is
    /// free, so live traffic keeps its headroom. `false` if the connection is closing.
    pub async fn push_bulk(&self, mut item: Outbound) -> bool {
        loop {
            if self.closing.is_cancelled() {
                return false;
            }
            if self.tx.capacity() > self.capacity / 2 {
                match self.tx.try_send(item) {
                    Ok(()) => return true,
                    Err(mpsc::error::TrySendError::Full(back)) => item = back,
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            tokio::select! {
                _ = self.drained.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = self.closing.cancelled() => return false,
            }
        }
    }

    /// Called by the writer after it has written a batch.
    pub fn notify_drained(&self) {
        self.drained.notify_waiters();
    }

    /// Closes the connection; the first reason given is sent in the ERROR frame.
    pub fn kill(&self, reason: &str) {
        {
            let mut r = self.reason.lock();
            if r.is_none() {
                *r = Some(reason.to_owned());
            }
        }
        self.closing.cancel();
    }

    /// Closes the connection without an ERROR (client went away, server shutdown).
    pub fn close(&self) {
        self.closing.cancel();
    }

    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    pub fn take_reason(&self) -> Option<String> {
        self.reason.lock().take()
    }
}
