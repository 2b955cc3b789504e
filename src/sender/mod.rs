//! The outbound sender: signs deliveries with the same [`Scheme`] the gateway verifies with,
//! adding every header the provider sends (timestamp, event and delivery ids, event type,
//! User-Agent), and delivers them with the provider's retry schedule.
//!
//! - [`retry`]: retry policies and how a response is classified.
//! - [`deliver`]: one delivery with its attempts recorded.
//! - [`format`](mod@format): payload renderings (CertifyClouds' Slack/Teams/generic, body templates).
//! - [`sample`]: example events per preset, for `send`, `sign` and `demo`.
//! - [`outbound`]: the outbound targets' configuration (the sidecar endpoint is `sidecar`).

pub mod deliver;
pub mod format;
pub mod outbound;
pub mod retry;
pub mod sample;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::extract::ValueSource;
use crate::presets::{self, Preset};
use crate::scheme::{Part, Scheme, SignInput, SigningKey};
use crate::secret::{Secret, SecretEncoding};
use crate::timestamp::TimeFormat;

/// One event to send.
#[derive(Debug, Clone)]
pub struct OutboundEvent {
    /// The exact bytes to send (signed as they are).
    pub body: Bytes,
    /// The event id (stable across attempts).
    pub id: String,
    /// The event type, sent in the preset's event type header where it has one.
    pub event_type: Option<String>,
}

/// Signs events the way one provider does.
#[derive(Debug, Clone)]
pub struct Signer {
    preset: Preset,
    scheme: Option<(Scheme, SigningKey)>,
    /// Bearer token for senders that authenticate without a signature (never printed).
    token: Option<Secret>,
    /// Headers that carry the event id.
    id_headers: Vec<HeaderName>,
    /// The URL deliveries are sent to, for schemes that sign it (`{url}`).
    url: Option<String>,
    /// Mailgun's key: the signature goes inside the body ([`Signer::seal`]).
    body_key: Option<SigningKey>,
}

/// Why a signer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignerError(pub String);

impl Signer {
    /// A signer for `preset`. `secret` is the signing secret; for presets without a signature
    /// it is sent as `Authorization: Bearer <secret>` when given.
    pub fn for_preset(preset: &str, secret: Option<&str>) -> Result<Self, SignerError> {
        let preset = presets::find(preset).ok_or_else(|| {
            SignerError(format!(
                "unknown preset `{preset}` (known: {})",
                presets::NAMES.join(", ")
            ))
        })?;
        let mut id_headers = Vec::new();
        let mut body_key = None;
        let scheme = match &preset.signature {
            Some(spec) if spec.method == Some(crate::scheme::SignatureMethod::Mailgun) => {
                let secret = secret.ok_or_else(|| {
                    SignerError(format!(
                        "preset `{}` signs: a secret is needed",
                        preset.name
                    ))
                })?;
                let key = SecretEncoding::Raw.decode(secret).map_err(SignerError)?;
                body_key = Some(SigningKey::new(
                    spec.algorithm.unwrap_or(crate::scheme::Algorithm::Sha256),
                    &key,
                ));
                None
            }
            Some(spec) => {
                if let Some(method) = spec
                    .method
                    .filter(|m| *m != crate::scheme::SignatureMethod::Header)
                {
                    // Mailgun (the other method with a shared secret) is handled above.
                    let why = "is signed with the provider's private key; hookgate can only \
                               send as providers that sign with a shared secret";
                    return Err(SignerError(format!(
                        "preset `{}` {why} ({})",
                        preset.name,
                        method.name()
                    )));
                }
                let scheme = Scheme::from_spec(spec).map_err(SignerError)?;
                if let Some(kind) = scheme.verifier {
                    return Err(SignerError(format!(
                        "preset `{}` is signed with the provider's private key ({}); hookgate \
                         can only send as providers that sign with a shared secret",
                        preset.name,
                        kind.name()
                    )));
                }
                let secret = secret.ok_or_else(|| {
                    SignerError(format!(
                        "preset `{}` signs: a secret is needed",
                        preset.name
                    ))
                })?;
                let key = spec
                    .secret_encoding
                    .unwrap_or(SecretEncoding::Raw)
                    .decode(secret)
                    .map_err(SignerError)?;
                if let Some(ValueSource::Header(name)) = &scheme.id {
                    id_headers.push(name.clone());
                }
                let key = SigningKey::new(scheme.algorithm, &key);
                Some((scheme, key))
            }
            None => None,
        };
        if let Some(ValueSource::Header(name)) = preset.dedup.id.clone() {
            if !id_headers.contains(&name) {
                id_headers.push(name);
            }
        }
        let token = match (&scheme, &body_key) {
            (None, None) => secret.map(Secret::new),
            _ => None,
        };
        Ok(Signer {
            preset,
            scheme,
            token,
            id_headers,
            url: None,
            body_key,
        })
    }

    /// True when the signature travels inside the body (Mailgun): the event's body must be
    /// sealed with [`Signer::seal`] before it is sent, and signing headers alone is not enough.
    pub fn seals_body(&self) -> bool {
        self.body_key.is_some()
    }

    /// Puts the provider's in-body signature on `event`, stamped at `unix_secs` with the event
    /// id as Mailgun's token: its body becomes the `event-data` of a signed Mailgun body. Every
    /// attempt then sends these same bytes. A no-op for header-signed presets.
    pub fn seal(&self, event: &mut OutboundEvent, unix_secs: i64) {
        if let Some(key) = &self.body_key {
            let body = crate::scheme::mailgun::signed_body(key, &event.body, unix_secs, &event.id);
            event.body = Bytes::from(body);
        }
    }

    /// This signer for deliveries sent to `url` (what `{url}` signs: the provider signs the
    /// URL it calls).
    pub fn with_url(mut self, url: &str) -> Self {
        self.url = Some(url.to_string());
        self
    }

    /// True when the scheme signs the URL, so [`Signer::with_url`] is needed.
    pub fn needs_url(&self) -> bool {
        self.scheme
            .as_ref()
            .is_some_and(|(scheme, _)| scheme.template.uses(&Part::Url))
    }

    /// True when the scheme signs a form body (Twilio), sent as
    /// `application/x-www-form-urlencoded`.
    pub fn sends_form(&self) -> bool {
        self.scheme
            .as_ref()
            .is_some_and(|(scheme, _)| scheme.template.uses(&Part::FormSorted))
    }

    /// The format of the signed timestamp: the preset's freshness format when freshness reads
    /// the same place, else unix seconds.
    fn timestamp_format(&self) -> TimeFormat {
        let freshness = &self.preset.freshness;
        let signed = self.scheme.as_ref().and_then(|(s, _)| s.timestamp.as_ref());
        match (signed, &freshness.from, freshness.format) {
            (Some(source), Some(from), Some(format)) if from.contains(source) => format,
            _ => TimeFormat::Unix,
        }
    }

    /// The preset this signer signs like.
    pub fn preset(&self) -> &Preset {
        &self.preset
    }

    /// All headers of one attempt of `event`, stamped at `unix_secs`. `attempt` is 1-based.
    pub fn headers(&self, event: &OutboundEvent, unix_secs: i64, attempt: u32) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let profile = &self.preset.sender;
        let content_type = match self.sends_form() {
            true => "application/x-www-form-urlencoded",
            false => "application/json",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(USER_AGENT, HeaderValue::from_static(profile.user_agent));
        let ts = format_time(unix_secs, self.timestamp_format());
        let mut set = |name: &str, value: &str| {
            // Preset names are written in their documented case; `from_bytes` lower-cases.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        };
        for name in &self.id_headers {
            set(name.as_str(), &event.id);
        }
        if let Some((name, format)) = profile.timestamp_header {
            set(name, &format_time(unix_secs, format));
        }
        if let (Some(name), Some(event_type)) = (profile.event_type_header, &event.event_type) {
            set(name, event_type);
        }
        if let Some(name) = profile.attempt_id_header {
            let delivery = format!("{:016x}-{attempt}", fastrand::u64(..));
            set(name, &delivery);
        }
        if let Some((scheme, key)) = &self.scheme {
            if let Some(ValueSource::Header(name)) = &scheme.timestamp {
                set(name.as_str(), &ts);
            }
            let input = SignInput {
                body: &event.body,
                timestamp: Some(&ts),
                id: Some(&event.id),
                url: self.url.as_deref(),
                method: Some("POST"),
                ..SignInput::default()
            };
            set(scheme.header.as_str(), &scheme.sign(key, &input));
        }
        if let Some(token) = &self.token {
            let token = String::from_utf8_lossy(token.expose());
            set(AUTHORIZATION.as_str(), &format!("Bearer {token}"));
        }
        // A timestamp header freshness reads that nothing above set (one the signature does
        // not cover).
        let freshness = &self.preset.freshness;
        if let (Some(true), Some(from), Some(format)) =
            (freshness.enabled, &freshness.from, freshness.format)
        {
            if let Some(ValueSource::Header(name)) = from.first() {
                if !headers.contains_key(name) {
                    if let Ok(value) = HeaderValue::from_str(&format_time(unix_secs, format)) {
                        headers.insert(name.clone(), value);
                    }
                }
            }
        }
        headers
    }
}

/// `unix_secs` written as `format` writes it.
pub fn format_time(unix_secs: i64, format: TimeFormat) -> String {
    match format {
        TimeFormat::Iso8601 => iso8601(unix_secs),
        TimeFormat::UnixMs => (unix_secs * 1000).to_string(),
        TimeFormat::Unix | TimeFormat::Auto => unix_secs.to_string(),
    }
}

/// `2025-06-11T10:30:00Z` for unix seconds.
pub fn iso8601(unix_secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The current time in unix seconds.
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
