//! The HTTP/1.1 accept loop, on hyper directly rather than `axum::serve`: an
//! upgraded WebSocket then comes back as the plain `TcpStream` (no wrapper to
//! sniff HTTP/2), which lets a WebSocket connection wait for data without
//! holding any buffer. Nagle is off on every socket; header reads time out
//! (bodies: `body::read_body`); concurrent connections per peer IP are capped;
//! each request carries its [`ClientIp`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use super::client_ip::{self, ClientIp};

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How a listener treats its peers.
#[derive(Clone, Default)]
pub struct Options {
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Most concurrent connections from one peer IP (trusted proxies exempt);
    /// `None`: no cap.
    pub max_connections_per_ip: Option<usize>,
}

/// Open connections per peer IP; a slot is given back when its guard drops.
#[derive(Clone, Default)]
struct PerIp(Arc<parking_lot::Mutex<HashMap<IpAddr, usize>>>);

struct Slot(PerIp, IpAddr);

impl PerIp {
    fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = self.0.lock();
        let n = m.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), ip))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.0 .0.lock();
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Serves `router` until `stop`, then lets in-flight requests finish (up to `grace`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    grace: Duration,
    options: Options,
) {
    let connections = TaskTracker::new();
    let per_ip = PerIp::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let proxies = options.trusted_proxies.clone();
        let slot = match options.max_connections_per_ip {
            Some(max) if !proxies.iter().any(|n| n.contains(&peer.ip())) => {
                match per_ip.take(peer.ip(), max) {
                    Some(slot) => Some(slot),
                    None => {
                        tracing::debug!(%peer, "too many HTTP connections from this IP");
                        continue; // dropping the stream closes it
                    }
                }
            }
            _ => None,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let ip = client_ip::resolve(peer.ip(), req.headers(), &proxies);
            req.extensions_mut().insert(ClientIp(ip));
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    router
                        .oneshot(req.map(axum::body::Body::new))
                        .await
                        .unwrap_or_else(|e| match e {}),
                )
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    // Finish the request in flight, then close (WebSockets have
                    // been handed off already and close on their own).
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still running at shutdown");
    }
}
