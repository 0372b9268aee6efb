//! A connection's bounded outbound queue, as seen by everything that sends to it.
//!
//! Hand-written rather than a tokio `mpsc` channel because idle connections are
//! the common case: this queue allocates nothing until something is queued and
//! gives its memory back once drained (an `mpsc` channel allocates a block of 32
//! slots per connection up front).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

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
    Frame(Box<quicktalk_stomp::Frame>),
    /// Close the connection once everything queued before it is written.
    Close,
}

impl Outbound {
    pub fn frame(f: quicktalk_stomp::Frame) -> Self {
        Outbound::Frame(Box::new(f))
    }
}

/// The sending side of one connection: a bounded queue plus a kill switch.
pub struct Outlet {
    pub id: u64,
    queue: Mutex<VecDeque<Outbound>>,
    capacity: usize,
    /// Wakes the writer when something was queued.
    queued: Notify,
    /// Wakes bulk senders when the writer made room.
    drained: Notify,
    /// Set once the connection is closing; `closed_wake` tells the waiters.
    closing: AtomicBool,
    closed_wake: Notify,
    reason: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
}

impl Outlet {
    pub fn new(id: u64, capacity: usize, metrics: Arc<Metrics>) -> Arc<Outlet> {
        Arc::new(Outlet {
            id,
            queue: Mutex::new(VecDeque::new()),
            capacity,
            queued: Notify::new(),
            drained: Notify::new(),
            closing: AtomicBool::new(false),
            closed_wake: Notify::new(),
            reason: Mutex::new(None),
            metrics,
        })
    }

    /// Queues without waiting. A full queue means the client cannot keep up: the
    /// connection is closed with an ERROR rather than buffering without bound.
    pub fn push(&self, item: Outbound) -> bool {
        if self.is_closing() {
            return false;
        }
        {
            let mut q = self.queue.lock();
            if q.len() >= self.capacity {
                drop(q);
                self.metrics.outbound_drops.inc();
                self.kill("slow consumer: outbound queue is full");
                return false;
            }
            q.push_back(item);
        }
        self.queued.notify_one();
        true
    }

    /// Waits until bulk traffic (history replay) may be queued: until at least half
    /// the queue is free, so live traffic keeps its headroom. A client that leaves
    /// it more than half full for `max_wait` is not reading: it is cut off as a slow
    /// consumer. `false` if the connection is (now) closing.
    pub async fn wait_bulk_room(&self, max_wait: Duration) -> bool {
        let give_up = tokio::time::Instant::now() + max_wait;
        loop {
            if self.is_closing() {
                return false;
            }
            if self.queue.lock().len() < self.capacity / 2 {
                return true;
            }
            tokio::select! {
                _ = self.drained.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = self.closed() => return false,
            }
            if tokio::time::Instant::now() >= give_up {
                self.metrics.outbound_drops.inc();
                self.kill("slow consumer: history replay is not being read");
                return false;
            }
        }
    }

    /// Waits until something is queued (or returns at once if something is).
    pub async fn wait_queued(&self) {
        if self.queue.lock().is_empty() {
            self.queued.notified().await;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    /// Moves up to `max` queued items into `out` (for the writer).
    pub fn take(&self, out: &mut Vec<Outbound>, max: usize) {
        let mut q = self.queue.lock();
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        // A drained queue gives its memory back: most connections are idle.
        if q.is_empty() {
            q.shrink_to_fit();
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
        self.close();
    }

    /// Closes the connection without an ERROR (client went away, server shutdown).
    /// Whatever is still queued is dropped at once: a closing connection writes
    /// nothing more from its queue, and its memory should not wait for the socket.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        {
            let mut q = self.queue.lock();
            q.clear();
            q.shrink_to_fit();
        }
        self.closed_wake.notify_waiters();
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Resolves once the connection is closing.
    pub async fn closed(&self) {
        let notified = self.closed_wake.notified();
        tokio::pin!(notified);
        // Registered before the check, so a close in between is not missed.
        notified.as_mut().enable();
        if self.is_closing() {
            return;
        }
        notified.await;
    }

    pub fn take_reason(&self) -> Option<String> {
        self.reason.lock().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> Outbound {
        Outbound::Close
    }

    #[tokio::test]
    async fn bounded_and_gives_memory_back() {
        let o = Outlet::new(1, 100, Arc::new(Metrics::new()));
        for _ in 0..100 {
            assert!(o.push(ev()));
        }
        let mut out = Vec::new();
        o.take(&mut out, 64);
        assert_eq!(out.len(), 64);
        assert!(o.push(ev()), "room again once the writer took some");
        out.clear();
        o.take(&mut out, 64);
        assert_eq!(out.len(), 37);
        assert_eq!(o.queue.lock().capacity(), 0, "drained: no memory held");
        for _ in 0..100 {
            assert!(o.push(ev()));
        }
        assert!(!o.push(ev()), "the 101st item is refused");
        assert!(o.is_closing(), "and the connection is killed");
        assert!(o.take_reason().unwrap().contains("slow consumer"));
        assert_eq!(o.queue.lock().capacity(), 0, "killed: the queue is dropped");
    }

    #[tokio::test]
    async fn closing_wakes_waiters_and_later_callers() {
        let o = Outlet::new(1, 10, Arc::new(Metrics::new()));
        let o2 = o.clone();
        let waiter = tokio::spawn(async move { o2.closed().await });
        tokio::task::yield_now().await;
        o.close();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), o.closed())
            .await
            .unwrap();
        assert!(!o.push(ev()), "nothing is queued once closing");
    }

    #[tokio::test]
    async fn bulk_traffic_waits_for_room_and_a_stuck_reader_is_cut_off() {
        let o = Outlet::new(1, 10, Arc::new(Metrics::new()));
        assert!(o.wait_bulk_room(Duration::from_secs(1)).await);
        for _ in 0..5 {
            assert!(o.push(ev()));
        }
        // Half full and nobody drains it: cut off after the wait bound.
        assert!(!o.wait_bulk_room(Duration::from_millis(200)).await);
        assert!(o.is_closing());
        assert!(o.take_reason().unwrap().contains("slow consumer"));
    }

    #[tokio::test]
    async fn the_writer_is_woken() {
        let o = Outlet::new(1, 10, Arc::new(Metrics::new()));
        let o2 = o.clone();
        let waiter = tokio::spawn(async move { o2.wait_queued().await });
        tokio::task::yield_now().await;
        o.push(ev());
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        // A push before waiting is not lost either.
        o.push(ev());
        tokio::time::timeout(Duration::from_secs(1), o.wait_queued())
            .await
            .unwrap();
    }
}
