//! What the gateway's layers learn about one request, kept together in one request extension
//! instead of one extension per fact: each extension is a heap allocation, and the extension
//! map reallocates at its fourth entry (a forwarded delivery carried six). The peer address
//! (set by the server) and the routed source stay extensions of their own, as code outside
//! the layers (`decide`, the benchmarks and fuzz targets) sets them too.

use std::time::Instant;

use super::fields::BodyFields;
use super::shadow::Verdict;
use super::verify::Verified;
use super::{EventId, RequestId};

/// One request's facts; each is set by the layer that learns it.
#[derive(Debug, Clone, Default)]
pub(super) struct Facts {
    /// hookgate's id for the request (the trace layer).
    pub(super) request_id: Option<RequestId>,
    /// When the request's head had been read (the trace layer's one reading of the clock;
    /// the body's deadline counts from it).
    pub(super) received: Option<Instant>,
    /// Which secret verified the signature (the verify layer).
    pub(super) verified: Option<Verified>,
    /// The body values the source reads, from one walk of the body (the first layer to ask).
    pub(super) fields: Option<BodyFields>,
    /// The delivery's event id (the dedup layer).
    pub(super) event_id: Option<EventId>,
    /// The first check that failed, in shadow mode.
    pub(super) verdict: Option<Verdict>,
}

impl Facts {
    /// The facts of `req`, if any were recorded.
    pub(super) fn of<B>(req: &http::Request<B>) -> Option<&Facts> {
        req.extensions().get::<Facts>()
    }

    /// The facts of `req`, to record one (created on first use).
    pub(super) fn of_mut<B>(req: &mut http::Request<B>) -> &mut Facts {
        req.extensions_mut().get_or_insert_default::<Facts>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn facts_recorded_by_different_layers_share_one_extension() {
        let mut req = http::Request::new(());
        assert!(Facts::of(&req).is_none());
        Facts::of_mut(&mut req).request_id = Some(RequestId(HeaderValue::from_static("r1")));
        Facts::of_mut(&mut req).verified = Some(Verified { position: 1 });
        let facts = Facts::of(&req).expect("recorded");
        assert_eq!(facts.request_id.as_ref().unwrap().0, "r1");
        assert_eq!(facts.verified.map(|v| v.position), Some(1));
        assert_eq!(req.extensions().len(), 1);
    }
}
