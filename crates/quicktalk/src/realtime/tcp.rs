//! Raw STOMP over TCP (`--stomp-listen`), through the same codec and session.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::connection;
use super::transport::{TcpRead, TcpWrite};
use crate::limits::{Key, Limit};
use crate::state::AppState;

/// Accepts connections until `stop`.
pub async fn serve(listener: TcpListener, state: Arc<AppState>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let limited = state.limits.check(Limit::ConnectIp, Key::Ip(peer.ip()));
                if limited.is_err() {
                    continue; // dropping the stream closes it
                }
                let _ = stream.set_nodelay(true);
                let (r, w) = stream.into_split();
                tokio::spawn(connection::run(
                    state.clone(),
                    TcpRead(r),
                    TcpWrite::new(w),
                    None,
                    peer.to_string(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "STOMP TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
