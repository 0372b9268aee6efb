//! The client's IP address: the TCP peer, or — when the peer is a trusted proxy
//! (`--trusted-proxies`) — the rightmost `X-Forwarded-For` hop that is not a
//! trusted proxy itself. Resolved once per request by `server` and stored as a
//! request extension; handlers take it with the [`ClientIp`] extractor.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client IP that abuse limits count against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    proxies.iter().any(|n| n.contains(&ip))
}

/// The client IP for a request from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if proxies.is_empty() || !trusted(peer, proxies) {
        return peer;
    }
    // Hops in order, across repeated headers; walk from the right.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted(ip, proxies) {
                    break;
                }
            }
            // Garbage from the client side: trust nothing further left.
            Err(_) => break,
        }
    }
    client
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(IpAddr::from([127, 0, 0, 1])));
        Ok(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rightmost_untrusted_hop_wins_only_behind_a_trusted_proxy() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 1.2.3.4".parse().unwrap());
        h.append("x-forwarded-for", "10.0.0.7".parse().unwrap());
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(
            resolve(proxy, &h, &proxies),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(resolve(stranger, &h, &proxies), stranger);
        assert_eq!(resolve(proxy, &HeaderMap::new(), &proxies), proxy);
        assert_eq!(resolve(proxy, &h, &[]), proxy);
        let mut bad = HeaderMap::new();
        bad.append("x-forwarded-for", "1.2.3.4, junk".parse().unwrap());
        assert_eq!(resolve(proxy, &bad, &proxies), proxy);
    }
}
