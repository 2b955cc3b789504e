//! The handshakes the presets' providers send to a new endpoint, which the gateway answers
//! itself (see [`crate::source::HandshakeKind`] for what each one is and its documentation).

use super::Preset;
use crate::source::HandshakeKind;

impl Preset {
    /// The handshake this provider sends, if any; a source can choose another or `none`.
    pub fn handshake(&self) -> Option<HandshakeKind> {
        match self.name {
            "slack" => Some(HandshakeKind::Slack),
            "zoom" => Some(HandshakeKind::Zoom),
            "twitch" => Some(HandshakeKind::Twitch),
            "discord" => Some(HandshakeKind::Discord),
            "meta" => Some(HandshakeKind::Meta),
            "dropbox" => Some(HandshakeKind::Dropbox),
            _ => None,
        }
    }
}
