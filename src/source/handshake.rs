//! Handshakes: the requests some providers send to a new endpoint before they deliver anything
//! (or from time to time after), which the gateway answers itself instead of forwarding. A
//! [`HandshakeKind`] is declared by a preset (or chosen per source); a [`Handshake`] is one
//! resolved for a source, with the verify tokens it needs. The answering is in
//! `gateway::handshake`.

use serde::Deserialize;

use crate::access::TokenSet;

/// Which handshake a source answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeKind {
    /// Slack's signed `{"type":"url_verification","challenge":…}` POST, answered with the
    /// challenge as text/plain (<https://api.slack.com/events/url_verification>).
    Slack,
    /// Zoom's signed `endpoint.url_validation` POST, answered with the plain token and its
    /// HMAC-SHA256 under the secret that verified the request
    /// (<https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint>).
    Zoom,
    /// Twitch EventSub's signed `webhook_callback_verification` POST, answered with the raw
    /// challenge as text/plain
    /// (<https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request>).
    Twitch,
    /// Discord's signed PING interaction (`{"type":1}`), answered with a PONG (`{"type":1}`)
    /// (<https://discord.com/developers/docs/interactions/receiving-and-responding#receiving-an-interaction>).
    Discord,
    /// Meta's (Facebook, Instagram, WhatsApp) `GET ?hub.mode=subscribe&hub.verify_token=…&
    /// hub.challenge=…`, answered with the challenge when the verify token is the configured one
    /// (<https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests>).
    Meta,
    /// Dropbox's `GET ?challenge=…`, answered with the challenge as text/plain with
    /// `X-Content-Type-Options: nosniff` (<https://www.dropbox.com/developers/reference/webhooks>).
    Dropbox,
    /// No handshake (turns a preset's off).
    None,
}

impl HandshakeKind {
    /// The name used in configuration, logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeKind::Slack => "slack",
            HandshakeKind::Zoom => "zoom",
            HandshakeKind::Twitch => "twitch",
            HandshakeKind::Discord => "discord",
            HandshakeKind::Meta => "meta",
            HandshakeKind::Dropbox => "dropbox",
            HandshakeKind::None => "none",
        }
    }

    /// True for the handshakes that arrive as `GET` (answered before any signature check,
    /// since the provider signs nothing).
    pub fn is_get(self) -> bool {
        matches!(self, HandshakeKind::Meta | HandshakeKind::Dropbox)
    }

    /// True for the handshakes that are signed and answered only after verification.
    pub fn needs_signature(self) -> bool {
        matches!(
            self,
            HandshakeKind::Slack
                | HandshakeKind::Zoom
                | HandshakeKind::Twitch
                | HandshakeKind::Discord
        )
    }
}

/// A handshake resolved for one source.
#[derive(Debug)]
pub struct Handshake {
    pub kind: HandshakeKind,
    /// Meta's verify tokens (any of them is accepted, compared in constant time).
    pub verify_tokens: Option<TokenSet>,
}

impl Handshake {
    /// True when this handshake arrives as `GET`.
    pub fn is_get(&self) -> bool {
        self.kind.is_get()
    }
}
