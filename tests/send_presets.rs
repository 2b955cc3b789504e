//! `hookgate send` (the real binary) as every provider that signs with a shared secret,
//! against the real gateway configured with that provider's preset: each delivery accepted
//! and forwarded byte-exact — URL-signed presets (Square, HubSpot, Twilio) included, whose
//! signature covers the `--url` the sender posts to. Presets signed with a private key are
//! refused by the CLI with a clear error.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use hookgate::presets::Preset;
use hookgate::scheme::SignatureMethod;
use hookgate::secret::SecretEncoding;
use hookgate::sender::Signer;

/// Presets the sender can sign for: a header signature with a shared secret, or Mailgun's
/// (inside the body). The presets whose keys are fetched or private are refused.
fn symmetric(preset: &Preset) -> bool {
    preset.signature.as_ref().is_some_and(|s| {
        s.kind.is_none() && matches!(s.method, None | Some(SignatureMethod::Mailgun))
    })
}

fn secret_for(preset: &Preset) -> &'static str {
    match preset.signature.as_ref().and_then(|s| s.secret_encoding) {
        Some(SecretEncoding::Whsec) => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        Some(SecretEncoding::Base64) => "c2VuZC1wcmVzZXRzLXNlY3JldA==",
        _ => "send-presets-secret-0123456789",
    }
}

fn send_as(preset: &str, url: &str, secret: &str, id: &str) -> std::process::Output {
    hookgate()
        .args([
            "send",
            "--preset",
            preset,
            "--url",
            url,
            "--secret-env",
            "RT_SECRET",
        ])
        .args(["--event-id", id, "--retry", "none"])
        .env("RT_SECRET", secret)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn send_signs_for_every_symmetric_preset_and_the_gateway_accepts_it() {
    let presets: Vec<Preset> = hookgate::presets::all()
        .into_iter()
        .filter(symmetric)
        .collect();
    assert!(presets.len() >= 30, "{} symmetric presets", presets.len());

    // The gateway's address is part of its configuration (`public_url`), so the listener is
    // bound first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = Upstream::start().await;
    let mut config = String::new();
    let mut env = HashMap::new();
    for p in &presets {
        let var = format!("SECRET_{}", p.name.replace('-', "_").to_uppercase());
        env.insert(var.clone(), secret_for(p).to_string());
        config += &format!(
            "[[source]]\nname = \"{n}\"\npath = \"/hooks/{n}\"\npreset = \"{n}\"\n\
             upstream = \"{up}/{n}\"\nsecrets = [{{ env = \"{var}\" }}]\npublic_url = \"http://{addr}\"\n\n",
            n = p.name,
            up = upstream.url(),
        );
    }
    let config = hookgate::config::parse(&config, std::path::Path::new("."), &env).unwrap();
    let gateway = hookgate::Gateway::new(&config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(hookgate::serve(listener, gateway, async move {
        let _ = stopped.await;
    }));

    let presets = Arc::new(presets);
    for (i, p) in presets.iter().enumerate() {
        let (name, secret) = (p.name, secret_for(p));
        let id = format!("evt_rt_{}", name.replace('-', "_"));
        let url = format!("http://{addr}/hooks/{name}");
        let before = hookgate::sender::now_secs();
        let out = {
            let (url, id) = (url.clone(), id.clone());
            tokio::task::spawn_blocking(move || send_as(name, &url, secret, &id))
                .await
                .unwrap()
        };
        let after = hookgate::sender::now_secs();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let received = upstream.wait_for_requests(i + 1, LIMIT).await;
        let got = &received[i];
        assert_eq!(got.path_and_query, format!("/{name}"), "{name}");
        // The body the sender built for this event at one of the seconds it ran in.
        // Mailgun's signed body wraps it, stamped when it was sealed.
        let signer = Signer::for_preset(name, Some(secret)).unwrap();
        let exact = (before - 1..=after + 1).any(|at| {
            (before - 1..=after + 1).any(|sealed| {
                let mut event = hookgate::sender::sample::event(name, &id, at, None);
                signer.seal(&mut event, sealed);
                event.body == got.body
            })
        });
        assert!(exact, "{name}: forwarded byte-exact: {:?}", got.body);
    }
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}

#[test]
fn presets_signed_with_a_private_key_cannot_be_sent() {
    for name in ["discord", "telnyx", "sendgrid", "standard-webhooks-v1a"] {
        let out = send_as(name, "http://127.0.0.1:9/hooks", "x", "evt_1");
        assert!(!out.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("private key"), "{name}: {stderr}");
    }
    for name in ["sns", "google-pubsub", "plaid", "paypal"] {
        let out = send_as(name, "http://127.0.0.1:9/hooks", "x", "evt_1");
        assert!(!out.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("private key"), "{name}: {stderr}");
    }
    // Mailgun's signature is in the body: `sign`, which prints headers, says to use `send`.
    let out = hookgate()
        .args(["sign", "--preset", "mailgun", "--secret-env", "RT_SECRET"])
        .env("RT_SECRET", "s")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hookgate send"), "mailgun: {stderr}");
}

#[test]
fn sign_needs_the_url_for_presets_that_sign_it() {
    for name in ["square", "hubspot", "twilio"] {
        let out = hookgate()
            .args(["sign", "--preset", name, "--secret-env", "RT_SECRET"])
            .env("RT_SECRET", "s")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--url"),
            "{name}"
        );
        let out = hookgate()
            .args(["sign", "--preset", name, "--secret-env", "RT_SECRET"])
            .args(["--url", "https://hooks.example.com/hooks/x"])
            .env("RT_SECRET", "s")
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}");
    }
}
