//! `hookgate presets`: the catalogue (name, scheme, what is signed), and one preset in full
//! with a ready configuration snippet.

use hookgate::presets::{self, Preset};
use hookgate::scheme::SignatureMethod;

pub(crate) fn run_presets(name: Option<String>) -> anyhow::Result<()> {
    match name {
        None => {
            for p in presets::all() {
                println!(
                    "{:<22} {:<58} {}",
                    p.name,
                    presets::scheme_summary(&p),
                    presets::signed_summary(&p)
                );
            }
            Ok(())
        }
        Some(name) => {
            let p = presets::find(&name).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown preset `{name}` (known: {})",
                    presets::NAMES.join(", ")
                )
            })?;
            print!("{}", describe(&p));
            Ok(())
        }
    }
}

fn describe(p: &Preset) -> String {
    let mut out = format!(
        "preset:   {}\nscheme:   {}\nsigned:   {}\nhandshake: {}\nwindow:   {} ({})\ntimeout:  {} s ({})\ndocs:     {}\n\n",
        p.name,
        presets::scheme_summary(p),
        presets::signed_summary(p),
        p.handshake().map_or("none", |h| h.name()),
        p.freshness
            .window
            .filter(|_| p.freshness.enabled != Some(false))
            .map_or("no freshness check".to_string(), |w| humantime::format_duration(w).to_string()),
        p.window_reason,
        p.sender_timeout.as_secs(),
        p.timeout_reason,
        p.docs,
    );
    let upper = p.name.to_uppercase().replace('-', "_");
    let method = p.signature.as_ref().and_then(|s| s.method);
    let auth = match (&p.signature, p.token_header) {
        (Some(_), _) if method.is_some_and(|m| m != SignatureMethod::Header) => {
            method_auth(method.unwrap_or_default(), &upper)
        }
        (Some(sig), _) if sig.kind.is_some() => {
            format!("signature = {{ public_keys = [{{ env = \"{upper}_PUBLIC_KEY\" }}] }}\n")
        }
        (Some(_), _) => format!("secrets = [{{ env = \"{upper}_SECRET\" }}]\n"),
        (None, Some(header)) => format!(
            "token = {{ header = \"{header}\", secrets = [{{ env = \"{upper}_TOKEN\" }}] }}\n"
        ),
        (None, None) => format!("path_token = {{ env = \"{upper}_PATH_TOKEN\" }}\n"),
    };
    let url = match p.signature.as_ref().and_then(|s| s.signed.as_ref()) {
        Some(t) if t.as_str().contains("{url}") => {
            "public_url = \"https://hooks.example.com\"  # the URL the provider calls\n"
        }
        _ => "",
    };
    let handshake = match p.handshake() {
        Some(hookgate::source::HandshakeKind::Meta) => format!(
            "verify_token = {{ env = \"{upper}_VERIFY_TOKEN\" }}  # answers GET ?hub.challenge\n"
        ),
        _ => String::new(),
    };
    out += &format!(
        "[[source]]\nname = \"{0}\"\npath = \"/hooks/{0}\"\npreset = \"{0}\"\nupstream = \"http://127.0.0.1:3000/{0}\"\n{url}{auth}{handshake}",
        p.name
    );
    out
}

/// The configuration a non-header signature method needs.
fn method_auth(method: SignatureMethod, upper: &str) -> String {
    match method {
        SignatureMethod::AwsSns => "# certificates are fetched from each message's SigningCertURL \
             (https://sns.<region>.amazonaws.com only)\n\
             signature = { topics = [\"arn:aws:sns:us-east-1:123456789012:MyTopic\"] }\n"
            .to_string(),
        SignatureMethod::GoogleOidc => {
            "# keys are fetched from https://www.googleapis.com/oauth2/v3/certs\n\
             signature = { audience = \"https://hooks.example.com/hooks/google-pubsub\", \
             email = \"push@my-project.iam.gserviceaccount.com\" }\n"
                .to_string()
        }
        SignatureMethod::PlaidJwt => format!(
            "# the JWK that Plaid's /webhook_verification_key/get returns\n\
             signature = {{ public_keys = [{{ env = \"{upper}_PUBLIC_KEY\" }}] }}\n"
        ),
        SignatureMethod::Paypal => {
            "# certificates are fetched from each delivery's PAYPAL-CERT-URL \
             (https://api.paypal.com or https://api.sandbox.paypal.com only)\n\
             # webhook_id: the webhook's ID in PayPal's dashboard (PayPal signs it)\n\
             signature = { webhook_id = \"1JE4291016473214C\" }\n"
                .to_string()
        }
        SignatureMethod::Mailgun | SignatureMethod::Header => {
            format!("secrets = [{{ env = \"{upper}_SECRET\" }}]\n")
        }
    }
}
