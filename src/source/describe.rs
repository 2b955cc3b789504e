//! The text `hookgate check-config` prints for a source: everything that decides how its
//! deliveries are treated, with every timestamp and id marked signed or unsigned, and the
//! reason behind each window and timeout. Never a secret value.

use std::fmt::Write as _;

use super::Source;
use crate::scheme::Shape;

impl Source {
    /// A human-readable description without secret values, for `check-config`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "source {}", self.name);
        let _ = writeln!(out, "  path:        {}", self.path);
        if self.path_token.is_some() {
            let _ = writeln!(
                out,
                "               (senders post to {}/<path token>)",
                self.path
            );
        }
        let _ = writeln!(out, "  preset:      {}", self.preset.unwrap_or("(generic)"));
        let u = &self.upstream;
        let _ = writeln!(
            out,
            "  upstream:    {}://{}{} (timeout {})",
            u.scheme,
            u.authority,
            u.path_and_query,
            humantime::format_duration(u.timeout)
        );
        if let Some(reason) = self.timeout_reason {
            let _ = writeln!(out, "               why: {reason}");
        }
        match &self.delivery {
            super::DeliveryMode::Sync => {
                let _ = writeln!(out, "  delivery:    sync (the upstream's answer goes back)");
            }
            super::DeliveryMode::Queue { retry } => {
                let _ = writeln!(
                    out,
                    "  delivery:    queue (stored, answered 202; retry {retry})"
                );
            }
        }
        match &self.signature {
            Some(check) => {
                let s = &check.scheme;
                let shape = match &s.shape {
                    Shape::Plain { prefix } if prefix.is_empty() => "plain".to_string(),
                    Shape::Plain { prefix } => format!("plain, prefix `{prefix}`"),
                    Shape::KeyValue {
                        timestamp_key,
                        signature_key,
                        separator,
                    } => format!("key-value `{timestamp_key}=…{separator}{signature_key}=…`"),
                    Shape::Versioned { version } => format!("versioned `{version},…`"),
                };
                let method = match &check.method {
                    super::method::Method::Header => None,
                    super::method::Method::Sns(_) => {
                        Some("AWS SNS message signature, certificate from a pinned AWS host")
                    }
                    super::method::Method::Jwt(jwt) if jwt.jwks.is_some() => {
                        Some("JWT, keys fetched from the provider's JWKS")
                    }
                    super::method::Method::Jwt(_) => Some("JWT, configured public keys"),
                    super::method::Method::Paypal(_) => Some(
                        "PayPal SHA256withRSA over transmission id, time, webhook id and body \
                         CRC32, certificate from a pinned PayPal host",
                    ),
                    super::method::Method::Mailgun => {
                        Some("Mailgun HMAC-SHA256 of signature.timestamp + token in the body")
                    }
                };
                match method {
                    Some(method) => {
                        let _ = writeln!(out, "  signature:   {method}");
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "  signature:   {} {} in {} ({shape}) over `{}`",
                            s.algorithm.name(),
                            s.encoding.name(),
                            s.header,
                            s.template.as_str()
                        );
                    }
                }
                let _ = writeln!(
                    out,
                    "  secrets:     {} ({})",
                    check.keys.len(),
                    self.secret_origins.join(", ")
                );
            }
            None => {
                let _ = writeln!(out, "  signature:   none");
            }
        }
        if let Some(handshake) = &self.handshake {
            let _ = writeln!(
                out,
                "  handshake:   {} (answered by hookgate, never forwarded)",
                handshake.kind.name()
            );
        }
        if !self.enforce {
            let _ = writeln!(
                out,
                "  enforce:     false (shadow mode: failures are forwarded, marked X-Hookgate-Verification)"
            );
        }
        if let Some(token) = &self.token {
            let _ = writeln!(
                out,
                "  token:       {} `{}<token>` ({} accepted)",
                token.header,
                token.prefix,
                token.tokens.len()
            );
        }
        if let Some(list) = &self.addresses {
            let allow: Vec<String> = list.allow.iter().map(|n| n.to_string()).collect();
            let proxies: Vec<String> = list.trusted_proxies.iter().map(|n| n.to_string()).collect();
            let _ = writeln!(out, "  allow_ips:   {}", allow.join(", "));
            if !proxies.is_empty() {
                let _ = writeln!(
                    out,
                    "  trusted_proxies (X-Forwarded-For believed): {}",
                    proxies.join(", ")
                );
            }
        }
        match &self.freshness {
            Some(f) => {
                let from: Vec<String> = f
                    .from
                    .iter()
                    .map(|s| format!("{s} [{}]", signed_word(self.timestamp_signed(s))))
                    .collect();
                let _ = writeln!(
                    out,
                    "  timestamp:   {} as {}{}",
                    from.join(" or "),
                    f.format.name(),
                    if f.required { "" } else { ", optional" }
                );
                let _ = writeln!(
                    out,
                    "  window:      {} past, {} future",
                    humantime::format_duration(f.window),
                    humantime::format_duration(f.future_skew)
                );
            }
            None => {
                let _ = writeln!(out, "  timestamp:   not checked");
            }
        }
        if let Some(reason) = self.window_reason {
            let _ = writeln!(out, "               why: {reason}");
        }
        match &self.dedup {
            Some(d) => {
                let key = match &d.id {
                    Some(id) if d.id_signed => format!("{id} [signed]"),
                    Some(id) => format!("{id} [unsigned] + body digest"),
                    None => "body digest".to_string(),
                };
                let _ = writeln!(
                    out,
                    "  dedup:       {key}, kept {}; in-flight duplicates wait up to {}",
                    humantime::format_duration(d.ttl),
                    humantime::format_duration(d.inflight_wait)
                );
            }
            None => {
                let _ = writeln!(out, "  dedup:       off");
            }
        }
        let _ = writeln!(out, "  max body:    {} bytes", self.max_body);
        out
    }
}

fn signed_word(signed: bool) -> &'static str {
    if signed {
        "signed"
    } else {
        "unsigned"
    }
}
