//! `hookgate send`, `sign` and `sample`: hookgate as a provider simulator. An event (a sample
//! for the preset, or a body from a file or stdin) is signed with the preset's scheme and
//! either printed as headers, or delivered with the provider's retry schedule.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hookgate::extract::{json_field, ValueSource};
use hookgate::secret::{ProcessEnv, SecretRef};
use hookgate::sender::deliver::{DeliveryOutcome, Sender, TokioSleeper};
use hookgate::sender::retry::RetryPolicy;
use hookgate::sender::{now_secs, sample, OutboundEvent, Signer};

use super::SendFailed;

#[derive(clap::Args)]
pub(crate) struct EventArgs {
    /// Provider preset whose scheme and headers to use.
    #[arg(long)]
    pub(crate) preset: String,
    /// Environment variable holding the secret.
    #[arg(long, conflicts_with = "secret_file")]
    secret_env: Option<String>,
    /// File holding the secret (trailing newline dropped).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Body file, or - for standard input (default: a sample event for the preset).
    #[arg(long)]
    body: Option<String>,
    /// Event id (default: the id found in a sample, or a new one).
    #[arg(long)]
    pub(crate) event_id: Option<String>,
    /// Event type, for providers that send one in a header.
    #[arg(long)]
    pub(crate) event_type: Option<String>,
}

impl EventArgs {
    fn secret(&self) -> anyhow::Result<Option<String>> {
        let source = match (&self.secret_env, &self.secret_file) {
            (Some(var), _) => SecretRef::Env(var.clone()),
            (None, Some(path)) => SecretRef::File(path.clone()),
            (None, None) => return Ok(None),
        };
        Ok(Some(
            source
                .load(&ProcessEnv, Path::new("."))
                .map_err(anyhow::Error::msg)?,
        ))
    }

    fn signer(&self) -> anyhow::Result<Signer> {
        check_preset(&self.preset)?;
        Ok(Signer::for_preset(&self.preset, self.secret()?.as_deref())?)
    }

    fn event(&self, at: i64) -> anyhow::Result<OutboundEvent> {
        let id = self
            .event_id
            .clone()
            .unwrap_or_else(|| sample::new_id("evt_"));
        let mut event = sample::event(&self.preset, &id, at, self.event_type.as_deref());
        match self.body.as_deref() {
            None => {}
            Some("-") => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("cannot read the body from stdin")?;
                event.body = buf.into();
            }
            Some(path) => {
                event.body = std::fs::read(path)
                    .with_context(|| format!("cannot read the body file {path}"))?
                    .into();
            }
        }
        Ok(event)
    }
}

pub(crate) async fn run_send(
    event_args: EventArgs,
    url: String,
    ca: Option<std::path::PathBuf>,
    retry: Option<String>,
    jitter: f64,
) -> anyhow::Result<()> {
    let signer = event_args.signer()?.with_url(&url);
    let url: http::Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        anyhow::bail!("only http:// and https:// URLs are supported");
    }
    let sender = Sender::with_ca(ca.as_deref()).map_err(|e| anyhow::anyhow!("--ca: {}", e.0))?;
    let mut policy = RetryPolicy::parse(retry.as_deref().unwrap_or(signer.preset().sender.retry))
        .map_err(anyhow::Error::msg)?;
    if !(0.0..=1.0).contains(&jitter) {
        anyhow::bail!("--jitter must be between 0 and 1");
    }
    policy.jitter = jitter;
    let mut event = event_args.event(now_secs())?;
    signer.seal(&mut event, now_secs());
    println!(
        "sending event {} ({} bytes) to {url} as {} with retry policy {}",
        receiver_id(&signer, &event),
        event.body.len(),
        signer.preset().name,
        policy.name
    );
    let report = sender
        .deliver(&url, &signer, &event, &policy, &TokioSleeper, |attempt| {
            println!("{attempt}");
        })
        .await;
    match report.outcome {
        DeliveryOutcome::Delivered if report.duplicate => {
            println!(
                "the receiver answered that this event was a duplicate: already delivered, not passed on again ({} attempt(s))",
                report.attempts.len()
            );
            Ok(())
        }
        DeliveryOutcome::Delivered => {
            println!("delivered after {} attempt(s)", report.attempts.len());
            Ok(())
        }
        DeliveryOutcome::Rejected(status) => Err(SendFailed(format!(
            "rejected with HTTP {status}; the provider would not retry"
        ))
        .into()),
        DeliveryOutcome::Exhausted => Err(SendFailed(format!(
            "not delivered after {} attempt(s)",
            report.attempts.len()
        ))
        .into()),
    }
}

pub(crate) fn run_sign(
    event_args: EventArgs,
    timestamp: Option<i64>,
    url: Option<String>,
) -> anyhow::Result<()> {
    let signer = match url {
        Some(url) => event_args.signer()?.with_url(&url),
        None => {
            let signer = event_args.signer()?;
            if signer.needs_url() {
                anyhow::bail!(
                    "preset `{}` signs the URL it is sent to: pass --url",
                    signer.preset().name
                );
            }
            signer
        }
    };
    if signer.seals_body() {
        anyhow::bail!(
            "preset `{}` carries its signature inside the body, which `sign` does not print: \
             use `hookgate send`",
            signer.preset().name
        );
    }
    let at = timestamp.unwrap_or_else(now_secs);
    let event = event_args.event(at)?;
    for (name, value) in &signer.headers(&event, at, 1) {
        println!("{name}: {}", value.to_str().unwrap_or_default());
    }
    Ok(())
}

/// The event id as the receiver reads it, with where it reads it from: the preset's dedup id
/// (a header the signer sets, or a path in the body, which a `--body` file may fill with
/// another id than `--event-id`), else a note that the receiver has no id to go by.
fn receiver_id(signer: &Signer, event: &OutboundEvent) -> String {
    match &signer.preset().dedup.id {
        Some(ValueSource::Body(path)) => match json_field(&event.body, path) {
            Ok(Some(value)) => match value.as_id() {
                Some(id) => format!("{id} (from the body at `{path}`)"),
                None => format!("without an id (`{path}` in the body is not an id)"),
            },
            _ => format!("without an id (the body has no `{path}`)"),
        },
        Some(ValueSource::Header(name)) => {
            let headers = signer.headers(event, now_secs(), 1);
            match headers.get(name).and_then(|v| v.to_str().ok()) {
                Some(id) => format!("{id} (in {name})"),
                None => format!("{} (not sent: the preset has no {name} header)", event.id),
            }
        }
        Some(ValueSource::SignatureParam(_)) | None => format!(
            "{} (the receiver has no event id to go by: it deduplicates on the body)",
            event.id
        ),
    }
}

fn check_preset(preset: &str) -> anyhow::Result<()> {
    if hookgate::presets::find(preset).is_none() {
        anyhow::bail!(
            "unknown preset `{preset}` (known: {})",
            hookgate::presets::NAMES.join(", ")
        );
    }
    Ok(())
}

pub(crate) fn run_sample(
    preset: &str,
    event_id: Option<String>,
    event_type: Option<String>,
) -> anyhow::Result<()> {
    check_preset(preset)?;
    let id = event_id.unwrap_or_else(|| sample::new_id("evt_"));
    let event = sample::event(preset, &id, now_secs(), event_type.as_deref());
    println!("{}", String::from_utf8_lossy(&event.body));
    Ok(())
}
