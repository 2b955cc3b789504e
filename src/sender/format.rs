//! Payload formats. CertifyClouds renders one alert three ways: Slack attachments, a Teams
//! MessageCard, and generic JSON, exactly as its documentation shows (field order included).
//! Corgea-style body templates substitute `{{payload}}`, `{{time}}`, `{{timestamp}}`,
//! `{{event_type}}` and `{{event_id}}`; a template that renders to anything but a JSON object
//! is an error, never sent.

use serde::Serialize;
use time::OffsetDateTime;

use super::iso8601;

/// CertifyClouds' colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// Errors, failures, expired.
    Red,
    /// Warnings, expiring soon.
    Orange,
    /// Success, completed.
    Green,
    /// Informational.
    Blue,
}

impl Color {
    /// The hex code without `#`.
    pub fn hex(self) -> &'static str {
        match self {
            Color::Red => "EF4444",
            Color::Orange => "F97316",
            Color::Green => "22C55E",
            Color::Blue => "3B82F6",
        }
    }
}

/// One key-value pair of an alert.
#[derive(Debug, Clone)]
pub struct AlertField {
    /// The field's label.
    pub title: String,
    /// The field's text.
    pub value: String,
    /// Slack's side-by-side layout hint.
    pub short: bool,
}

/// A CertifyClouds alert, before rendering.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The alert's headline.
    pub title: String,
    /// The alert's message body.
    pub text: String,
    /// The colour bar: red, orange, green or blue.
    pub color: Color,
    /// Unix seconds.
    pub ts: i64,
    /// Extra label/value pairs, in order.
    pub fields: Vec<AlertField>,
}

#[derive(Serialize)]
struct SlackBody<'a> {
    attachments: [SlackAttachment<'a>; 1],
}

#[derive(Serialize)]
struct SlackAttachment<'a> {
    color: String,
    title: &'a str,
    text: &'a str,
    footer: &'static str,
    ts: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<SlackField<'a>>,
}

#[derive(Serialize)]
struct SlackField<'a> {
    title: &'a str,
    value: &'a str,
    short: bool,
}

#[derive(Serialize)]
struct TeamsCard<'a> {
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "@context")]
    context: &'static str,
    summary: &'a str,
    #[serde(rename = "themeColor")]
    theme_color: &'static str,
    title: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sections: Vec<TeamsSection<'a>>,
}

#[derive(Serialize)]
struct TeamsSection<'a> {
    facts: Vec<TeamsFact<'a>>,
}

#[derive(Serialize)]
struct TeamsFact<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct GenericBody<'a> {
    title: &'a str,
    message: &'a str,
    color: String,
    timestamp: String,
    source: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<GenericField<'a>>,
}

#[derive(Serialize)]
struct GenericField<'a> {
    title: &'a str,
    value: &'a str,
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain structs serialise")
}

impl Alert {
    /// Slack Incoming Webhook attachments (also Discord's `/slack` endpoint).
    pub fn slack(&self) -> String {
        to_json(&SlackBody {
            attachments: [SlackAttachment {
                color: format!("#{}", self.color.hex()),
                title: &self.title,
                text: &self.text,
                footer: "CertifyClouds",
                ts: self.ts,
                fields: self
                    .fields
                    .iter()
                    .map(|f| SlackField {
                        title: &f.title,
                        value: &f.value,
                        short: f.short,
                    })
                    .collect(),
            }],
        })
    }

    /// A Microsoft Teams MessageCard.
    pub fn teams(&self) -> String {
        let facts: Vec<TeamsFact> = self
            .fields
            .iter()
            .map(|f| TeamsFact {
                name: &f.title,
                value: &f.value,
            })
            .collect();
        to_json(&TeamsCard {
            kind: "MessageCard",
            context: "https://schema.org/extensions",
            summary: &self.title,
            theme_color: self.color.hex(),
            title: &self.title,
            text: &self.text,
            sections: if facts.is_empty() {
                Vec::new()
            } else {
                vec![TeamsSection { facts }]
            },
        })
    }

    /// The generic JSON format, with the zoneless microsecond timestamp CertifyClouds uses.
    pub fn generic(&self) -> String {
        to_json(&GenericBody {
            title: &self.title,
            message: &self.text,
            color: format!("#{}", self.color.hex()),
            timestamp: zoneless_micros(self.ts),
            source: "CertifyClouds",
            fields: self
                .fields
                .iter()
                .map(|f| GenericField {
                    title: &f.title,
                    value: &f.value,
                })
                .collect(),
        })
    }
}

/// `2024-12-14T12:00:00.000000` (UTC, no zone) for unix seconds.
fn zoneless_micros(unix_secs: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Values a body template can use.
#[derive(Debug, Clone, Copy)]
pub struct TemplateValues<'a> {
    /// The default payload, as JSON text.
    pub payload: &'a str,
    /// `{{time}}` as Unix seconds; `{{timestamp}}` as ISO 8601 of the same instant.
    pub unix_secs: i64,
    /// `{{event_type}}`, JSON-escaped.
    pub event_type: &'a str,
    /// `{{event_id}}`, JSON-escaped.
    pub event_id: &'a str,
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{…}}` other than the known ones; holds its name.
    #[error("unknown placeholder {{{{{0}}}}}")]
    UnknownPlaceholder(String),
    /// A `{{` without its `}}`.
    #[error("unclosed placeholder")]
    Unclosed,
    /// The rendered body is not a JSON object; holds the parse error or `not an object`.
    #[error("the rendered body is not a JSON object: {0}")]
    NotJsonObject(String),
}

/// Renders a Corgea-style body template. String values are JSON-escaped (write them inside
/// quotes), `{{time}}` is a bare number and `{{payload}}` a JSON object.
pub fn render_template(
    template: &str,
    values: &TemplateValues<'_>,
) -> Result<String, TemplateError> {
    let escaped = |s: &str| {
        let quoted = serde_json::to_string(s).expect("strings serialise");
        quoted[1..quoted.len() - 1].to_string()
    };
    let mut out = String::with_capacity(template.len() + values.payload.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(TemplateError::Unclosed)?;
        match after[..end].trim() {
            "payload" => out.push_str(values.payload),
            "time" => out.push_str(&values.unix_secs.to_string()),
            "timestamp" => out.push_str(&iso8601(values.unix_secs)),
            "event_type" => out.push_str(&escaped(values.event_type)),
            "event_id" => out.push_str(&escaped(values.event_id)),
            other => return Err(TemplateError::UnknownPlaceholder(other.to_string())),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    match serde_json::from_str::<serde_json::Value>(&out) {
        Ok(serde_json::Value::Object(_)) => Ok(out),
        Ok(_) => Err(TemplateError::NotJsonObject("not an object".into())),
        Err(e) => Err(TemplateError::NotJsonObject(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn field(title: &str, value: &str) -> AlertField {
        AlertField {
            title: title.into(),
            value: value.into(),
            short: true,
        }
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// The seed's "Secret Expiring Alert", in all three formats.
    fn expiring(ts: i64) -> Alert {
        Alert {
            title: "Secret Expiring Alert".into(),
            text: "Found 3 secrets expiring within 30 days".into(),
            color: Color::Red,
            ts,
            fields: vec![
                field("Vault", "kv-production"),
                field("Secrets", "api-key, db-password, cert-primary"),
            ],
        }
    }

    #[test]
    fn slack_equals_the_seed() {
        let seed = r##"{"attachments":[{"color":"#EF4444","title":"Secret Expiring Alert","text":"Found 3 secrets expiring within 30 days","footer":"CertifyClouds","ts":1702569600,"fields":[{"title":"Vault","value":"kv-production","short":true},{"title":"Secrets","value":"api-key, db-password, cert-primary","short":true}]}]}"##;
        assert_eq!(expiring(1702569600).slack(), seed);
    }

    #[test]
    fn teams_equals_the_seed() {
        let seed = r#"{"@type":"MessageCard","@context":"https://schema.org/extensions","summary":"Secret Expiring Alert","themeColor":"EF4444","title":"Secret Expiring Alert","text":"Found 3 secrets expiring within 30 days","sections":[{"facts":[{"name":"Vault","value":"kv-production"},{"name":"Secrets","value":"api-key, db-password, cert-primary"}]}]}"#;
        assert_eq!(expiring(0).teams(), seed);
    }

    #[test]
    fn generic_equals_the_seed() {
        let seed = r##"{"title":"Secret Expiring Alert","message":"Found 3 secrets expiring within 30 days","color":"#EF4444","timestamp":"2024-12-14T12:00:00.000000","source":"CertifyClouds","fields":[{"title":"Vault","value":"kv-production"},{"title":"Secrets","value":"api-key, db-password, cert-primary"}]}"##;
        assert_eq!(expiring(1734177600).generic(), seed);
    }

    #[test]
    fn the_seed_examples_render_too() {
        let scan = Alert {
            title: "Scan Completed".into(),
            text: "Discovery scan completed successfully".into(),
            color: Color::Green,
            ts: 1702569600,
            fields: vec![
                field("Vaults Scanned", "12"),
                field("Total Secrets", "847"),
                field("Duration", "2m 34s"),
            ],
        };
        assert_eq!(
            json(&scan.slack()),
            json(
                r##"{"attachments":[{"color":"#22C55E","title":"Scan Completed","text":"Discovery scan completed successfully","footer":"CertifyClouds","ts":1702569600,"fields":[{"title":"Vaults Scanned","value":"12","short":true},{"title":"Total Secrets","value":"847","short":true},{"title":"Duration","value":"2m 34s","short":true}]}]}"##
            )
        );
        let rotation = Alert {
            title: "Rotation Failed".into(),
            text: "Failed to rotate secret for MyApp/client-secret".into(),
            color: Color::Red,
            ts: 0,
            fields: vec![
                field("Application", "MyApp"),
                field("Secret", "client-secret"),
                field("Error", "Insufficient permissions"),
            ],
        };
        assert_eq!(
            json(&rotation.teams()),
            json(
                r#"{"@type":"MessageCard","@context":"https://schema.org/extensions","summary":"Rotation Failed","themeColor":"EF4444","title":"Rotation Failed","text":"Failed to rotate secret for MyApp/client-secret","sections":[{"facts":[{"name":"Application","value":"MyApp"},{"name":"Secret","value":"client-secret"},{"name":"Error","value":"Insufficient permissions"}]}]}"#
            )
        );
        let soon = Alert {
            title: "Secrets Expiring Soon".into(),
            text: "Found 5 secrets expiring within 30 days".into(),
            color: Color::Orange,
            ts: 1734177600,
            fields: vec![
                field(
                    "kv-production",
                    "api-key (expires 2024-12-20), db-conn (expires 2024-12-25)",
                ),
                field("kv-staging", "service-account (expires 2025-01-02)"),
            ],
        };
        assert_eq!(
            json(&soon.generic()),
            json(
                r##"{"title":"Secrets Expiring Soon","message":"Found 5 secrets expiring within 30 days","color":"#F97316","timestamp":"2024-12-14T12:00:00.000000","source":"CertifyClouds","fields":[{"title":"kv-production","value":"api-key (expires 2024-12-20), db-conn (expires 2024-12-25)"},{"title":"kv-staging","value":"service-account (expires 2025-01-02)"}]}"##
            )
        );
    }

    fn values<'a>(payload: &'a str, event_type: &'a str) -> TemplateValues<'a> {
        TemplateValues {
            payload,
            unix_secs: 1736951400,
            event_type,
            event_id: "evt-1",
        }
    }

    #[test]
    fn templates_render_every_placeholder() {
        let out = render_template(
            r#"{"text":"{{event_type}} at {{timestamp}}","id":"{{ event_id }}","t":{{time}},"data":{{payload}}}"#,
            &values(r#"{"a":1}"#, "scan.completed"),
        )
        .unwrap();
        assert_eq!(
            json(&out),
            json(
                r#"{"text":"scan.completed at 2025-01-15T14:30:00Z","id":"evt-1","t":1736951400,"data":{"a":1}}"#
            )
        );
        // Values are escaped, so they cannot break out of their string.
        let out = render_template(r#"{"t":"{{event_type}}"}"#, &values("{}", "a\"b")).unwrap();
        assert_eq!(json(&out)["t"], "a\"b");
    }

    #[test]
    fn invalid_templates_are_errors() {
        let v = values("{}", "x");
        assert!(matches!(
            render_template(r#"{"t": {{event_type}}}"#, &v),
            Err(TemplateError::NotJsonObject(_))
        ));
        assert!(matches!(
            render_template(r#"[{{payload}}]"#, &v),
            Err(TemplateError::NotJsonObject(_))
        ));
        assert_eq!(
            render_template(r#"{"a":"{{nope}}"}"#, &v),
            Err(TemplateError::UnknownPlaceholder("nope".into()))
        );
        assert_eq!(
            render_template(r#"{"a":"{{time"}"#, &v),
            Err(TemplateError::Unclosed)
        );
    }
}
