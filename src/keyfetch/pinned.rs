//! Which URLs provider keys may be fetched from: `https://` only, on a host matching a pinned
//! pattern, never with credentials, a query or (when the provider's keys have one) another
//! path suffix. A URL that fails is refused before any connection is made.
//!
//! A pattern is a host name whose `*` labels each stand for exactly one DNS label of letters,
//! digits and `-` (`sns.*.amazonaws.com` matches `sns.us-east-1.amazonaws.com`, not
//! `sns.evil.com.amazonaws.com` nor `sns.amazonaws.com`), optionally followed by `:port`;
//! without a port only the default (443) is accepted.

use http::Uri;

/// One pinned host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    labels: Vec<Label>,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Any,
    Exact(String),
}

/// Why a key URL was refused. Says what is wrong, not the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a URL.
    #[error("the key URL is not a URL")]
    NotUrl,
    /// Not `https://`.
    #[error("the key URL is not https://")]
    NotHttps,
    /// Carries a user name or password.
    #[error("the key URL carries credentials")]
    Credentials,
    /// The host (or port) matches none of the pinned patterns.
    #[error("the key URL's host is not one the provider serves keys from")]
    Host,
    /// A query string, or a path without the expected suffix.
    #[error("the key URL's path is not one the provider serves keys from")]
    Path,
}

impl HostPattern {
    /// Parses `host[:port]` with `*` labels.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a host pattern (host[:port], `*` for one label)");
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let valid =
            |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let labels = host
            .split('.')
            .map(|l| match l {
                "*" => Ok(Label::Any),
                l if valid(l) => Ok(Label::Exact(l.to_ascii_lowercase())),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if labels
            .iter()
            .filter(|l| matches!(l, Label::Exact(_)))
            .count()
            < 2
            && !matches!(labels.as_slice(), [Label::Exact(_)])
        {
            // `*.com`, `*.*`: too broad to pin anything.
            return Err(format!(
                "`{text}` is too broad: name at least two fixed labels"
            ));
        }
        Ok(HostPattern {
            labels,
            port,
            text: text.to_string(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let wanted_port = self.port.unwrap_or(443);
        if port.unwrap_or(443) != wanted_port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() == self.labels.len()
            && labels.iter().zip(&self.labels).all(|(l, p)| match p {
                Label::Any => {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }
                Label::Exact(e) => l == e,
            })
    }
}

/// Checks `url` against `patterns` and a required path suffix (`.pem` for SNS certificates);
/// returns the URL to fetch.
pub fn check(url: &str, patterns: &[HostPattern], suffix: Option<&str>) -> Result<Uri, Refused> {
    if url.len() > 2048 {
        return Err(Refused::NotUrl);
    }
    let uri: Uri = url.parse().map_err(|_| Refused::NotUrl)?;
    match uri.scheme_str() {
        Some("https") => {}
        Some(_) => return Err(Refused::NotHttps),
        None => return Err(Refused::NotUrl),
    }
    let authority = uri.authority().ok_or(Refused::NotUrl)?;
    if authority.as_str().contains('@') {
        return Err(Refused::Credentials);
    }
    let host = authority.host();
    if !patterns
        .iter()
        .any(|p| p.matches(host, authority.port_u16()))
    {
        return Err(Refused::Host);
    }
    if uri.query().is_some() || suffix.is_some_and(|s| !uri.path().ends_with(s)) {
        return Err(Refused::Path);
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sns() -> Vec<HostPattern> {
        vec![
            HostPattern::parse("sns.*.amazonaws.com").unwrap(),
            HostPattern::parse("sns.*.amazonaws.com.cn").unwrap(),
        ]
    }

    #[test]
    fn sns_certificate_urls() {
        let ok = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem";
        assert!(check(ok, &sns(), Some(".pem")).is_ok());
        let cn = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem";
        assert!(check(cn, &sns(), Some(".pem")).is_ok());
        for (url, why) in [
            (
                "http://sns.us-east-1.amazonaws.com/a.pem",
                Refused::NotHttps,
            ),
            (
                "https://sns.us-east-1.amazonaws.com.evil.com/a.pem",
                Refused::Host,
            ),
            ("https://sns.evil.com.amazonaws.com/a.pem", Refused::Host),
            ("https://sns.amazonaws.com/a.pem", Refused::Host),
            (
                "https://evil.com/sns.us-east-1.amazonaws.com/a.pem",
                Refused::Host,
            ),
            (
                "https://sns.us-east-1.amazonaws.com:8443/a.pem",
                Refused::Host,
            ),
            (
                "https://x@sns.us-east-1.amazonaws.com/a.pem",
                Refused::Credentials,
            ),
            (
                "https://sns.us-east-1.amazonaws.com/a.pem?x=1",
                Refused::Path,
            ),
            ("https://sns.us-east-1.amazonaws.com/a.txt", Refused::Path),
            ("file:///etc/passwd", Refused::NotUrl),
            ("ftp://sns.us-east-1.amazonaws.com/a.pem", Refused::NotHttps),
            ("sns.us-east-1.amazonaws.com/a.pem", Refused::NotUrl),
            ("", Refused::NotUrl),
        ] {
            assert_eq!(check(url, &sns(), Some(".pem")).err(), Some(why), "{url}");
        }
        let upper = "https://SNS.US-EAST-1.AMAZONAWS.COM/a.pem";
        assert!(check(upper, &sns(), Some(".pem")).is_ok());
        let port = "https://sns.us-east-1.amazonaws.com:443/a.pem";
        assert!(check(port, &sns(), Some(".pem")).is_ok());
    }

    #[test]
    fn patterns_with_ports_and_too_broad_ones() {
        let local = [HostPattern::parse("localhost:8443").unwrap()];
        assert!(check("https://localhost:8443/k.pem", &local, None).is_ok());
        assert_eq!(
            check("https://localhost/k.pem", &local, None).err(),
            Some(Refused::Host)
        );
        for bad in ["*.com", "*", "a..b", "a.b:x", "a_b.com", ""] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(HostPattern::parse("www.googleapis.com").is_ok());
    }
}
