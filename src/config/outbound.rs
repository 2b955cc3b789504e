//! `[outbound]`: the sidecar listener and its delivery targets, each with a signer for its
//! preset, a retry policy and an optional body template checked at start; `[delivery]`: where
//! the durable delivery store lives and the engine's bounds.

use std::collections::HashSet;
use std::path::Path;

use http::uri::Scheme as UriScheme;
use http::Uri;

use super::schema::{DeliverySpec, OutboundSpec};
use super::DeliverySettings;
use super::{defaults, err, ConfigError};
use crate::delivery::Limits;
use crate::redact;
use crate::secret::{Env, SecretRef};
use crate::sender::format::{render_template, TemplateValues};
use crate::sender::outbound::{OutboundConfig, Target};
use crate::sender::retry::RetryPolicy;
use crate::sender::Signer;
use crate::tls::upstream_client_config;

pub(super) fn resolve_outbound(
    spec: OutboundSpec,
    base_dir: &Path,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<OutboundConfig, ConfigError> {
    if spec.targets.is_empty() {
        return err(
            "outbound.target",
            "[outbound] needs at least one [[outbound.target]]",
        );
    }
    let listen = spec.listen.unwrap_or(defaults::OUTBOUND_LISTEN);
    if !listen.ip().is_loopback() {
        warnings.push(format!(
            "outbound.listen: {listen} is not loopback; anyone who reaches it can make hookgate sign events"
        ));
    }
    if spec.queue.is_some() {
        warnings.push(
            "outbound.queue is ignored: accepted events wait in the durable delivery store ([delivery] data_dir)"
                .to_string(),
        );
    }
    let ca = spec.ca.map(|ca| base_dir.join(ca));
    if let Some(ca) = &ca {
        upstream_client_config(Some(ca)).or_else(|e| err("outbound.ca", e.0))?;
    }
    let mut names = HashSet::new();
    let mut targets = Vec::new();
    for t in spec.targets {
        let at = format!("outbound.target[{}]", t.name);
        if t.name.is_empty() || t.name.contains('/') || !names.insert(t.name.clone()) {
            return err(&at, "name must be non-empty, unique and without '/'");
        }
        let url: Uri = t
            .url
            .parse()
            .ok()
            .filter(|u: &Uri| {
                (u.scheme() == Some(&UriScheme::HTTP) || u.scheme() == Some(&UriScheme::HTTPS))
                    && u.authority().is_some()
            })
            .ok_or_else(|| {
                ConfigError(format!(
                    "{at}.url: `{}` is not an http:// or https:// URL",
                    redact::url(&t.url)
                ))
            })?;
        let secret = match &t.secret {
            Some(r) => {
                if matches!(r, SecretRef::Value(_)) {
                    warnings.push(format!(
                        "{at}.secret: literal secret in the configuration file"
                    ));
                }
                Some(
                    r.load(env, base_dir)
                        .or_else(|m| err(&format!("{at}.secret"), m))?,
                )
            }
            None => None,
        };
        let signer = Signer::for_preset(&t.preset, secret.as_deref())
            .or_else(|e| err(&format!("{at}.preset"), e))?
            .with_url(&t.url);
        if signer.seals_body() {
            return err(
                &format!("{at}.preset"),
                format!(
                    "preset `{}` carries its signature inside the body; outbound targets sign \
                     headers only",
                    t.preset
                ),
            );
        }
        let mut retry =
            RetryPolicy::parse(t.retry.as_deref().unwrap_or(signer.preset().sender.retry))
                .or_else(|m| err(&format!("{at}.retry"), m))?;
        if let Some(jitter) = t.jitter {
            if !(0.0..=1.0).contains(&jitter) {
                return err(&format!("{at}.jitter"), "must be between 0 and 1");
            }
            retry.jitter = jitter;
        }
        if let Some(template) = &t.template {
            let probe = TemplateValues {
                payload: "{}",
                unix_secs: 0,
                event_type: "probe",
                event_id: "probe",
            };
            render_template(template, &probe).or_else(|e| err(&format!("{at}.template"), e))?;
        }
        targets.push(Target {
            name: t.name.clone(),
            url,
            signer,
            retry,
            pause_after: t.pause_after.unwrap_or(defaults::PAUSE_AFTER).max(1),
            concurrency: t
                .concurrency
                .unwrap_or(defaults::TARGET_CONCURRENCY)
                .clamp(1, 256),
            template: t.template,
        });
    }
    Ok(OutboundConfig {
        listen,
        ca,
        targets,
    })
}

/// `[delivery]`: the store's folder (relative to the configuration file's) and the bounds.
pub(super) fn resolve_delivery(
    spec: DeliverySpec,
    base_dir: &Path,
) -> Result<DeliverySettings, ConfigError> {
    let d = Limits::default();
    let max_attempts = spec.max_attempts.unwrap_or(d.max_attempts);
    if max_attempts == 0 {
        return err("delivery.max_attempts", "must be at least 1");
    }
    let history = spec.history.unwrap_or(d.history);
    if history == 0 {
        return err("delivery.history", "must be at least 1");
    }
    Ok(DeliverySettings {
        data_dir: base_dir.join(spec.data_dir.unwrap_or_else(|| defaults::DATA_DIR.into())),
        limits: Limits {
            retry_after_floor: spec.retry_after_floor.unwrap_or(d.retry_after_floor),
            max_attempts,
            history,
            max_pending: match spec.max_pending {
                Some(0) => return err("delivery.max_pending", "must be at least 1"),
                other => other,
            },
            ..d
        },
    })
}
