//! The body values a source reads (timestamp candidates, event id), from **one** walk of the
//! JSON body per delivery: the freshness and dedup layers both read them from here, and the
//! first of them to ask computes them and leaves them in the request's extensions.

use std::sync::Arc;

use bytes::Bytes;

use super::facts::Facts;
use crate::extract::{json_fields, JsonError, JsonPath, Scalar};
use crate::source::Source;

/// The values at each of the source's body paths (`Source::body_paths`), or why the body
/// could not be read.
#[derive(Debug, Clone)]
pub(super) struct BodyFields(Arc<Result<Vec<Option<Scalar>>, JsonError>>);

impl BodyFields {
    /// Reads every body path of `source` in one walk of `body`.
    pub(super) fn read(source: &Source, body: &[u8]) -> BodyFields {
        let values = if source.body_paths.is_empty() {
            Ok(Vec::new())
        } else {
            json_fields(body, &source.body_paths)
        };
        BodyFields(Arc::new(values))
    }

    /// The fields of `req` (for the source it was routed to): the ones already read for it, or
    /// read now and kept with it.
    pub(super) fn of(req: &mut http::Request<Bytes>) -> BodyFields {
        if let Some(fields) = Facts::of(req).and_then(|f| f.fields.as_ref()) {
            return fields.clone();
        }
        let fields = BodyFields::read(super::routed(req), req.body());
        Facts::of_mut(req).fields = Some(fields.clone());
        fields
    }

    /// The value at `path` (one of the source's body paths).
    pub(super) fn get(
        &self,
        source: &Source,
        path: &JsonPath,
    ) -> Result<Option<&Scalar>, JsonError> {
        let values = self.0.as_ref().as_ref().map_err(Clone::clone)?;
        let index = source
            .body_paths
            .iter()
            .position(|p| p == path)
            .expect("every body path a source reads is in body_paths");
        Ok(values[index].as_ref())
    }
}
