//! Metrics of the gateway's edge, where attacks show first: open connections against their cap,
//! connections refused at the cap or closed by a deadline, requests refused from their head
//! before any body byte was read, and the bytes of unauthenticated bodies being received
//! against their budget.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

use super::{Metrics, Name};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceReasonLabels {
    source: Name,
    reason: &'static str,
}

/// The edge metrics, registered beside the others.
pub(super) struct Edge {
    open: Gauge,
    max: Gauge,
    refused: Counter,
    closed: Family<ReasonLabels, Counter>,
    refused_before_body: Family<SourceReasonLabels, Counter>,
    pending_body_bytes: Gauge,
    pending_body_budget: Gauge,
}

impl Edge {
    pub(super) fn register(registry: &mut Registry) -> Edge {
        let edge = Edge {
            open: Gauge::default(),
            max: Gauge::default(),
            refused: Counter::default(),
            closed: Family::default(),
            refused_before_body: Family::default(),
            pending_body_bytes: Gauge::default(),
            pending_body_budget: Gauge::default(),
        };
        registry.register(
            "connections_open",
            "Open connections on the gateway listener",
            edge.open.clone(),
        );
        registry.register(
            "connections_max",
            "The configured cap on open connections (limits.max_connections)",
            edge.max.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept because max_connections were open",
            edge.refused.clone(),
        );
        registry.register(
            "connections_closed",
            "Connections the gateway closed by a deadline (first_request_timeout, idle_timeout)",
            edge.closed.clone(),
        );
        registry.register(
            "requests_refused_before_body",
            "Requests answered from their head alone, without reading the body, by reason",
            edge.refused_before_body.clone(),
        );
        registry.register(
            "pending_body_bytes",
            "Bytes of request bodies being received before verification (all requests)",
            edge.pending_body_bytes.clone(),
        );
        registry.register(
            "pending_body_budget_bytes",
            "The configured budget for pending_body_bytes (limits.max_pending_body_bytes)",
            edge.pending_body_budget.clone(),
        );
        edge
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// The listener's connection cap.
    pub fn connection_cap(&self, max: usize) {
        self.edge.max.set(gauge_value(max));
    }

    pub fn connection_opened(&self) {
        self.edge.open.inc();
    }

    /// A connection ended (however it ended).
    pub fn connection_closed(&self) {
        self.edge.open.dec();
    }

    /// A deadline (`first_request_timeout`, `idle_timeout`, `header_read_timeout`) is closing
    /// a connection. Counted when the deadline fires, before the socket is closed, so a peer
    /// that sees the close also sees the count.
    pub fn connection_deadline(&self, reason: &'static str) {
        self.edge
            .closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// A connection closed at accept because the cap was reached.
    pub fn connection_refused(&self) {
        self.edge.refused.inc();
    }

    /// A request refused from its head, before its body was read.
    pub fn refused_before_body(&self, source: &Arc<str>, reason: &'static str) {
        self.edge
            .refused_before_body
            .get_or_create(&SourceReasonLabels {
                source: Name(source.clone()),
                reason,
            })
            .inc();
    }

    /// The pending body bytes and their budget, as read at scrape time.
    pub fn pending_bodies(&self, bytes: usize, budget: usize) {
        self.edge.pending_body_bytes.set(gauge_value(bytes));
        self.edge.pending_body_budget.set(gauge_value(budget));
    }
}
