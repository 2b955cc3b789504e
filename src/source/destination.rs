//! Where a source's deliveries go, parsed once when the configuration is loaded: the absolute
//! URI a connection is opened to, the origin-form URI a request is written with, and the
//! number of the upstream connection pool, shared by every source (and every reload) with the
//! same scheme and authority.
//!
//! Built once so the proxy path clones nothing the configuration owns for the pool and the
//! request line: each such clone is a reference count that every serving thread writes (the
//! 16-core profile showed it growing from one core to four), and the pool key was hashed from
//! the authority's text on every request.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use http::Uri;

/// A source's upstream address.
#[derive(Debug, Clone)]
pub struct Destination {
    /// `scheme://authority/path?query`, what a new connection is opened to.
    pub uri: Uri,
    /// `/path?query`, the request line of a delivery without a forwarded query.
    pub origin: Uri,
    /// The connection pool: the same number for the same scheme and authority.
    pub pool: u64,
}

impl Destination {
    /// The target of `uri`, which must be absolute (scheme and authority).
    pub fn new(uri: Uri) -> Option<Destination> {
        let pool = pool_number(uri.scheme_str()?, uri.authority()?.as_str());
        let origin = uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| pq.clone().into());
        Some(Destination { uri, origin, pool })
    }

    /// The request line's URI with `query` (from the incoming request) appended to the
    /// configured path and query.
    pub fn origin_with(&self, query: &str) -> Result<Uri, http::Error> {
        let configured = self.origin.path_and_query().map_or("/", |pq| pq.as_str());
        let separator = if configured.contains('?') { '&' } else { '?' };
        Ok(Uri::try_from(format!("{configured}{separator}{query}"))?)
    }
}

/// The pool number of `scheme://authority`: numbers are handed out in order and never reused,
/// so sources of one upstream share a pool across reloads. The text is compared exactly (two
/// spellings of one host in different case get a pool each, nothing worse).
fn pool_number(scheme: &str, authority: &str) -> u64 {
    static NUMBERS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    let mut numbers = NUMBERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let next = numbers.len() as u64;
    *numbers
        .entry(format!("{scheme}://{authority}"))
        .or_insert(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(text: &str) -> Destination {
        Destination::new(text.parse().unwrap()).unwrap()
    }

    #[test]
    fn one_pool_per_scheme_and_authority() {
        let a = destination("http://127.0.0.1:9000/hooks/a");
        let b = destination("http://127.0.0.1:9000/hooks/b?x=1");
        let tls = destination("https://127.0.0.1:9000/hooks/a");
        let other = destination("http://127.0.0.1:9001/hooks/a");
        assert_eq!(a.pool, b.pool);
        assert_ne!(a.pool, tls.pool);
        assert_ne!(a.pool, other.pool);
        assert_ne!(tls.pool, other.pool);
        assert_eq!(destination("http://127.0.0.1:9000/").pool, a.pool);
    }

    #[test]
    fn the_request_line_is_the_path_with_the_forwarded_query() {
        let plain = destination("http://u.example/hooks/a");
        assert_eq!(plain.origin, "/hooks/a");
        assert_eq!(plain.origin_with("q=1").unwrap(), "/hooks/a?q=1");
        let with_query = destination("http://u.example/hooks/a?team=7");
        assert_eq!(with_query.origin, "/hooks/a?team=7");
        assert_eq!(
            with_query.origin_with("q=1").unwrap(),
            "/hooks/a?team=7&q=1"
        );
        assert_eq!(destination("http://u.example").origin, "/");
        assert!(Destination::new("/relative".parse().unwrap()).is_none());
    }
}
