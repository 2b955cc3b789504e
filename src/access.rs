//! Authentication without a signature: a static header token (`Authorization: Bearer …`,
//! `Basic …`, `Splunk …`), a secret path token, a client address allowlist with an explicit
//! set of trusted proxies for `X-Forwarded-For`, and the admin listener's bearer tokens. Token comparisons hash both sides with SHA-256
//! and compare the digests in constant time, so neither content nor length leaks.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::extract::{header_value, HeaderLookup};
use crate::secret::Secret;

/// Any of several secret strings, compared in constant time (several allow rotation).
#[derive(Debug, Clone)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl TokenSet {
    pub fn new(tokens: &[Secret]) -> Self {
        TokenSet {
            digests: tokens
                .iter()
                .map(|t| Sha256::digest(t.expose()).into())
                .collect(),
        }
    }

    /// True when `presented` equals one of the tokens. Every token is compared.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut any = Choice::from(0u8);
        for expected in &self.digests {
            any |= expected.ct_eq(&digest);
        }
        bool::from(any)
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

/// A static token carried in a header, e.g. `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct HeaderToken {
    pub header: HeaderName,
    /// Text before the token, e.g. `Bearer ` (part of the compared value).
    pub prefix: String,
    pub tokens: TokenSet,
}

impl HeaderToken {
    pub fn check(&self, headers: &HeaderMap) -> bool {
        let HeaderLookup::Value(value) = header_value(headers, &self.header) else {
            return false;
        };
        match value.strip_prefix(self.prefix.as_str()) {
            Some(token) => self.tokens.matches(token.as_bytes()),
            // Still spend the comparison so a wrong scheme word is not faster to detect.
            None => {
                let _ = self.tokens.matches(b"");
                false
            }
        }
    }
}

/// Who may call the admin listener: a bearer token for the endpoints that change state, and
/// optionally one for the read-only endpoints too (the admin token is accepted there as well).
#[derive(Debug, Clone, Default)]
pub struct AdminAuth {
    /// Required by `POST /reload`, `POST /dedup/forget` and every future mutating endpoint;
    /// without it those endpoints are off.
    pub token: Option<TokenSet>,
    /// Required by `/metrics`, `/healthz` and `/readyz` when set.
    pub metrics_token: Option<TokenSet>,
}

impl AdminAuth {
    /// The token of an `Authorization: Bearer <token>` header, if there is exactly one.
    fn bearer(headers: &HeaderMap) -> Option<&str> {
        let HeaderLookup::Value(value) = header_value(headers, &http::header::AUTHORIZATION) else {
            return None;
        };
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// Whether the request carries the admin token.
    pub fn allows_changes(&self, headers: &HeaderMap) -> bool {
        let presented = Self::bearer(headers).unwrap_or("");
        self.token
            .as_ref()
            .is_some_and(|t| t.matches(presented.as_bytes()))
    }

    /// Whether the request may read metrics and health (open unless `metrics_token` is set).
    pub fn allows_reads(&self, headers: &HeaderMap) -> bool {
        let Some(metrics_token) = &self.metrics_token else {
            return true;
        };
        let presented = Self::bearer(headers).unwrap_or("");
        // Both comparisons always run, so which token matched does not show in the timing.
        let reads = metrics_token.matches(presented.as_bytes());
        let admin = self
            .token
            .as_ref()
            .is_some_and(|t| t.matches(presented.as_bytes()));
        reads | admin
    }
}

/// Which client addresses may deliver to a source.
#[derive(Debug, Clone)]
pub struct AddressAllowlist {
    pub allow: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` is believed. Empty: the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
}

impl AddressAllowlist {
    /// The address the request came from: the TCP peer, or, when the peer is a trusted proxy,
    /// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        if !contains(&self.trusted_proxies, peer) {
            return Some(peer);
        }
        let mut hops: Vec<IpAddr> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let text = value.to_str().ok()?;
            for part in text.split(',') {
                hops.push(part.trim().parse().ok()?);
            }
        }
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            client = hop;
            if !contains(&self.trusted_proxies, hop) {
                break;
            }
        }
        Some(client)
    }

    pub fn allows(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        self.client_address(peer, headers)
            .is_some_and(|client| contains(&self.allow, client))
    }
}

/// Whether `addr` (an IPv4-mapped IPv6 address counting as IPv4) is in one of `nets`.
pub fn contains(nets: &[IpNet], addr: IpAddr) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    };
    nets.iter().any(|net| net.contains(&addr))
}

/// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a single host).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_net(s).unwrap()).collect()
    }

    #[test]
    fn token_set_matches_any_and_only_exact() {
        let set = TokenSet::new(&[Secret::new("old"), Secret::new("new")]);
        assert!(set.matches(b"old"));
        assert!(set.matches(b"new"));
        assert!(!set.matches(b"ne"));
        assert!(!set.matches(b"new "));
        assert!(!set.matches(b""));
    }

    #[test]
    fn header_token_needs_prefix() {
        let token = HeaderToken {
            header: HeaderName::from_static("authorization"),
            prefix: "Bearer ".into(),
            tokens: TokenSet::new(&[Secret::new("t0k")]),
        };
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t0k".parse().unwrap());
        assert!(token.check(&headers));
        headers.insert("authorization", "Basic t0k".parse().unwrap());
        assert!(!token.check(&headers));
        headers.append("authorization", "Bearer t0k".parse().unwrap());
        assert!(!token.check(&headers), "repeated header is refused");
    }

    #[test]
    fn forwarded_for_is_only_believed_from_trusted_proxies() {
        let list = AddressAllowlist {
            allow: nets(&["54.152.176.29", "192.0.2.0/24"]),
            trusted_proxies: nets(&["10.0.0.0/8"]),
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "54.152.176.29".parse().unwrap());
        // Direct from an untrusted peer: the header is ignored.
        assert!(!list.allows("203.0.113.9".parse().unwrap(), &headers));
        // Through a trusted proxy: the right-most untrusted hop counts.
        assert!(list.allows("10.1.2.3".parse().unwrap(), &headers));
        headers.insert(
            "x-forwarded-for",
            "54.152.176.29, 203.0.113.9, 10.0.0.7".parse().unwrap(),
        );
        assert!(!list.allows("10.1.2.3".parse().unwrap(), &headers));
        assert!(list.allows("192.0.2.77".parse().unwrap(), &HeaderMap::new()));
        assert!(list.allows("::ffff:192.0.2.77".parse().unwrap(), &HeaderMap::new()));
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert!(!list.allows("10.1.2.3".parse().unwrap(), &headers));
    }
}
