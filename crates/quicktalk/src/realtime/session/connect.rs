//! CONNECT / STOMP: version and heart-beat negotiation, authentication.

use std::sync::Arc;
use std::time::Duration;

use quicktalk_stomp::{negotiate_heartbeat, Command, Frame, HeartBeat, Version};

use super::{Flow, Handled, ProtocolError, Session};
use crate::domain::tokens::bearer;

impl Session {
    pub(super) async fn connect(&mut self, frame: Frame) -> Handled {
        let Some(version) = Version::negotiate(frame.header("accept-version")) else {
            let mut err =
                ProtocolError::new("supported protocol versions are 1.0, 1.1, 1.2", &frame);
            err.message.insert_str(0, "unsupported version: ");
            return Err(err);
        };
        let hb = HeartBeat::parse(frame.header("heart-beat"))
            .map_err(|e| ProtocolError::new(e.to_string(), &frame))?;
        let token = frame
            .header("Authorization")
            .or_else(|| frame.header("authorization"))
            .and_then(bearer)
            .or_else(|| frame.header("passcode").filter(|p| !p.is_empty()))
            .map(str::to_owned)
            .or_else(|| self.url_token.take());
        let Some(token) = token else {
            return Err(ProtocolError::new("unauthorized", &frame));
        };
        let user = match self.state.accounts.authenticate(&token).await {
            Ok(u) => u,
            Err(e) => return Err(refused(e, &frame)),
        };
        // Concurrent sockets per IP and per user (contract §4): over a cap, the
        // new socket is refused; the open ones stay.
        let ip = self
            .client_ip
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        match self.state.limits.open_socket(ip, Some(user.id)) {
            Ok(slot) => self._socket_slot = Some(slot),
            Err(e) => {
                let mut err = ProtocolError::new(e.public_message(), &frame);
                err.message.insert_str(0, "rate_limited: ");
                return Err(err);
            }
        }
        // Registered for bans (which close every socket of the user), then checked
        // again: a ban that came between the check above and the registration
        // found nothing to close, but it already made the cache forget the user.
        let outlet = self.replier.outlet.clone();
        self.state.hub.register_connection(user.id, outlet.clone());
        if let Err(e) = self.state.accounts.authenticate(&token).await {
            self.state.hub.unregister_connection(user.id, &outlet);
            return Err(refused(e, &frame));
        }
        // Whom the user blocks, before anything can reach them (contract §7).
        if let Err(e) = self.state.people.load_blocks(user.id).await {
            self.state.hub.unregister_connection(user.id, &outlet);
            return Err(refused(e, &frame));
        }
        self.registered = true;
        let cfg = &self.state.config;
        let (send_every, expect_every) =
            negotiate_heartbeat(hb, (cfg.heartbeat_send_ms, cfg.heartbeat_recv_ms));
        self.read_timeout =
            (expect_every > 0).then(|| Duration::from_millis(expect_every as u64 * 2));
        self.version = version;
        self.send_every = (send_every > 0).then(|| Duration::from_millis(send_every as u64));
        tracing::debug!(user = user.id, version = version.as_str(), "connected");
        self.replier.frame(
            Frame::new(Command::Connected)
                .with_header("version", version.as_str())
                .with_header("heart-beat", format!("{send_every},{expect_every}"))
                .with_header("server", concat!("QuickTalk/", env!("CARGO_PKG_VERSION")))
                .with_header("session", self.replier.outlet.id.to_string())
                .with_header("user-name", user.id.to_string()),
        );
        self.state.matching.socket_opened(user.id).await;
        self.user = Some(Arc::new(user));
        Ok(Flow::Continue)
    }
}

/// The ERROR for a CONNECT whose token was refused: `unauthorized`, `banned`
/// (contract §5), or `server error`.
fn refused(e: crate::error::AppError, frame: &Frame) -> ProtocolError {
    match e {
        crate::error::AppError::Unauthorized { .. } => ProtocolError::new("unauthorized", frame),
        e if e.code() == "banned" => ProtocolError::new(crate::fanout::BANNED, frame),
        e => {
            tracing::error!(error = %e, "authentication failed");
            ProtocolError::new("server error", frame)
        }
    }
}
