//! The text line format for files and pipes, the shape of the library's default —
//! `2026-11-26T02:14:51.123456Z  INFO target: message key=value key="text"` — written with
//! less machinery: one formatted timestamp, no styling layer, string values copied as they
//! are unless they need escaping. The request line is formatted on every request, and the
//! library's formatter was 15 % of a request's user-space instructions (`bench/instructions.py`).
//!
//! Text values are quoted and escaped like `{:?}` does, so a value can never forge a second
//! line or a field of its own.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `--log-format text` when stderr is not a terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFormat;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_char(' ')?;
        writer.write_str(level_str(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                writer.write_str(span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "{{{fields}}}")?;
                    }
                }
                writer.write_char(':')?;
                any = true;
            }
            if any {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

thread_local! {
    /// The second last written by this thread and its text up to the seconds
    /// (`2026-11-26T02:14:51`): the date is formatted once a second, not on every line.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `now` in RFC 3339 with microseconds, UTC: `2026-11-26T02:14:51.123456Z`.
pub(super) fn write_timestamp(writer: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            let whole = UNIX_EPOCH + Duration::from_secs(seconds);
            let stamp = humantime::format_rfc3339_seconds(whole).to_string();
            *text = stamp.trim_end_matches('Z').to_string();
            *cached = seconds;
        }
        writer.write_str(text)
    })?;
    let mut fraction = *b".000000Z";
    let mut micros = since.subsec_micros();
    for digit in fraction[1..7].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    writer.write_str(std::str::from_utf8(&fraction).expect("ASCII digits"))
}

/// The level, right-aligned in five characters like the library's default.
fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => " WARN",
        Level::INFO => " INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// Writes an event's fields: the message bare, then ` name=value` for each other field.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn separate(&mut self, field: &Field) -> fmt::Result {
        if !self.first {
            self.out.write_char(' ')?;
        }
        self.first = false;
        if field.name() != "message" {
            self.out.write_str(field.name())?;
            self.out.write_char('=')?;
        }
        Ok(())
    }

    fn write(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.separate(field).and_then(|()| value(self.out));
        }
    }
}

/// An integer's decimal digits, without the formatting machinery (a status code and a count
/// are on most lines).
pub(super) struct Decimal {
    digits: [u8; 21],
    start: usize,
}

impl Decimal {
    pub(super) fn new(mut value: u64, negative: bool) -> Self {
        let mut digits = [0u8; 21];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        if negative {
            start -= 1;
            digits[start] = b'-';
        }
        Decimal { digits, start }
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[self.start..]).expect("ASCII digits")
    }
}

/// True when a text value can be written between quotes as it is.
fn plain(text: &str) -> bool {
    text.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// A text value between quotes, escaped like `{:?}` where it needs to be.
pub(super) fn write_quoted(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    if plain(value) {
        out.write_char('"')?;
        out.write_str(value)?;
        out.write_char('"')
    } else {
        write!(out, "{value:?}")
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        self.write(field, |out| {
            if message {
                out.write_str(value)
            } else {
                write_quoted(out, value)
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, |out| {
            out.write_str(Decimal::new(value, false).as_str())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, |out| {
            out.write_str(Decimal::new(value.unsigned_abs(), value < 0).as_str())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, |out| {
            out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, |out| write!(out, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, |out| write!(out, "{value:?}"));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The lines `log` writes through [`TextFormat`].
    pub(crate) fn lines(log: impl FnOnce()) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_ansi(false)
            .with_writer(captured.clone())
            .event_format(TextFormat)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_request_line_has_the_shape_of_the_default_format() {
        let outcome = "forwarded";
        let text = lines(|| {
            tracing::info!(
                target: "hookgate::request",
                request_id = "00ff00ff00ff00ff",
                source = "ck",
                %outcome,
                status = 202u16,
                method = %http::Method::POST,
                latency_ms = format_args!("{:.2}", 0.4167),
                shadow = false,
                "request"
            );
        });
        let (stamp, rest) = text.split_once(' ').unwrap();
        assert!(
            humantime::parse_rfc3339(stamp).is_ok() && stamp.ends_with('Z'),
            "{stamp}"
        );
        assert_eq!(
            rest,
            " INFO hookgate::request: request request_id=\"00ff00ff00ff00ff\" source=\"ck\" \
             outcome=forwarded status=202 method=POST latency_ms=0.42 shadow=false\n"
        );
    }

    #[test]
    fn a_value_cannot_forge_a_line_or_a_field() {
        let hostile = "x\" status=200\nFAKE INFO line";
        let text = lines(|| tracing::warn!(reason = hostile, "refused"));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.ends_with(" WARN hookgate::telemetry::text::tests: refused reason=\"x\\\" status=200\\nFAKE INFO line\"\n"),
            "{text}"
        );
    }

    #[test]
    fn errors_and_spans_are_written_too() {
        let error = std::io::Error::other("connection refused");
        let text = lines(|| {
            let span = tracing::debug_span!("request", request_id = "ab");
            let _entered = span.enter();
            tracing::error!(
                error = &error as &dyn std::error::Error,
                code = -3i64,
                "failed"
            );
        });
        assert!(
            text.contains("ERROR request{request_id=\"ab\"}: hookgate::telemetry::text::tests: failed error=connection refused code=-3\n"),
            "{text}"
        );
    }

    #[test]
    fn timestamps_match_the_library_format_across_seconds() {
        let base = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let offsets_us = [
            0u64,
            1,
            999_999,
            1_000_000,
            1_000_001,
            59_500_000,
            3_600_000_007,
        ];
        for us in offsets_us.into_iter().chain(offsets_us.into_iter().rev()) {
            let now = base + Duration::from_micros(us);
            let mut text = String::new();
            write_timestamp(&mut Writer::new(&mut text), now).unwrap();
            assert_eq!(text, humantime::format_rfc3339_micros(now).to_string());
        }
    }

    #[test]
    fn integers_are_written_like_display_does() {
        for value in [0u64, 7, 10, 202, 65_535, u64::MAX] {
            assert_eq!(Decimal::new(value, false).as_str(), value.to_string());
        }
        for value in [-1i64, -3, -10, i64::MIN, i64::MAX] {
            let text = Decimal::new(value.unsigned_abs(), value < 0);
            assert_eq!(text.as_str(), value.to_string());
        }
    }
}
