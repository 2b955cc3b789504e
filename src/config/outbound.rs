//! `[outbound]`: the sidecar listener and its delivery targets, each with a signer for its
//! preset, a retry policy and an optional body template checked at start.

use std::collections::HashSet;
use std::path::Path;

use http::uri::Scheme as UriScheme;
use http::Uri;

use super::schema::OutboundSpec;
use super::{defaults, err, ConfigError};
use crate::redact;
use crate::secret::{Env, SecretRef};
use crate::sender::format::{render_template, TemplateValues};
use crate::sender::outbound::{OutboundConfig, Target};
use crate::sender::retry::RetryPolicy;
use crate::sender::Signer;

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
            .filter(|u: &Uri| u.scheme() == Some(&UriScheme::HTTP) && u.authority().is_some())
            .ok_or_else(|| {
                ConfigError(format!(
                    "{at}.url: `{}` is not an http:// URL",
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
            .or_else(|e| err(&format!("{at}.preset"), e))?;
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
        queue: spec.queue.unwrap_or(defaults::OUTBOUND_QUEUE).max(1),
        targets,
    })
}
