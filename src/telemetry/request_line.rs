//! The request line: one `info` event per request on the target `hookgate::request`
//! (request id, source, outcome, status, method, latency).
//!
//! For the text format on a file or pipe (the production case) the line is written straight
//! into the log's [`BatchWriter`]: the same bytes [`TextFormat`](super::TextFormat) writes for
//! the event, without `tracing`'s dispatch, its field visitor and `core::fmt` (about 3,900 of
//! a request's 46,000 user-space instructions, `bench/instructions.py`). The filter still
//! decides (`RUST_LOG=hookgate::request=off` silences it), and with any other subscriber
//! (JSON, a terminal's colours, a test's) and whenever a request span is open
//! (`RUST_LOG=debug`) the line is an ordinary `tracing` event.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use tracing::Level;

use super::text::{write_quoted, write_timestamp, Decimal};
use super::BatchWriter;

/// Where request lines are written directly; set once, by [`super::init`], for the text format
/// on a file or pipe.
static DIRECT: OnceLock<BatchWriter> = OnceLock::new();

/// Writes request lines straight into `writer` from now on.
pub(super) fn write_directly_to(writer: BatchWriter) {
    let _ = DIRECT.set(writer);
}

thread_local! {
    /// The line being written by this thread (kept for its capacity).
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// One request's line.
pub struct RequestLine<'a> {
    pub request_id: &'a str,
    /// The routed source's name, `-` when none.
    pub source: &'a str,
    pub outcome: &'static str,
    pub status: u16,
    pub method: &'a str,
    pub latency: Duration,
}

impl RequestLine<'_> {
    /// Logs the line. `in_span`: a request span is open around this call (its fields are
    /// then written by the subscriber, so the line goes through it).
    pub fn log(&self, in_span: bool) {
        if !tracing::enabled!(target: "hookgate::request", Level::INFO) {
            return;
        }
        match DIRECT.get() {
            Some(writer) if !in_span => LINE.with_borrow_mut(|line| {
                line.clear();
                if self.write_text(line, SystemTime::now()).is_ok() {
                    writer.append(line.as_bytes());
                }
            }),
            _ => tracing::info!(
                target: "hookgate::request",
                request_id = self.request_id,
                source = self.source,
                outcome = %self.outcome,
                status = self.status,
                method = %self.method,
                latency_ms = %Millis(self.latency),
                "request"
            ),
        }
    }

    /// The text format's line for this event at `now`, newline included.
    fn write_text(&self, out: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
        write_timestamp(out, now)?;
        // The timestamp, a space, and the level right-aligned in five characters.
        out.write_str("  INFO hookgate::request: request request_id=")?;
        write_quoted(out, self.request_id)?;
        out.write_str(" source=")?;
        write_quoted(out, self.source)?;
        out.write_str(" outcome=")?;
        out.write_str(self.outcome)?;
        out.write_str(" status=")?;
        out.write_str(Decimal::new(u64::from(self.status), false).as_str())?;
        out.write_str(" method=")?;
        out.write_str(self.method)?;
        out.write_str(" latency_ms=")?;
        Millis(self.latency).write(out)?;
        out.write_char('\n')
    }
}

/// A duration in milliseconds with two decimals (`0.42`), rounded half up, in integer
/// arithmetic (floating-point formatting was some 300 instructions of every request line).
struct Millis(Duration);

impl Millis {
    fn write(&self, out: &mut impl fmt::Write) -> fmt::Result {
        // In `u64` (`as_micros` is a `u128`, and its division a library call): whole seconds
        // past 584,000 years saturate.
        let micros = self
            .0
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(self.0.subsec_micros()));
        let mut hundredths = micros / 10 + u64::from(micros % 10 >= 5);
        // Digits from the right: two decimals, the point, then at least one whole digit.
        let mut text = [0u8; 24];
        let mut start = text.len();
        let mut written = 0;
        loop {
            start -= 1;
            text[start] = b'0' + (hundredths % 10) as u8;
            hundredths /= 10;
            written += 1;
            if written == 2 {
                start -= 1;
                text[start] = b'.';
            }
            if hundredths == 0 && written >= 3 {
                break;
            }
        }
        out.write_str(std::str::from_utf8(&text[start..]).expect("ASCII digits"))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::text::tests::lines;

    fn sample(source: &str) -> RequestLine<'_> {
        RequestLine {
            request_id: "00ff00ff00ff00ff",
            source,
            outcome: "forwarded",
            status: 202,
            method: "POST",
            latency: Duration::from_micros(416),
        }
    }

    fn without_stamp(line: &str) -> &str {
        line.split_once(' ').unwrap().1
    }

    #[test]
    fn the_direct_line_is_the_line_the_text_format_writes_for_the_event() {
        for source in ["ck", "-", "a \"quoted\"\nname", "ünïcode"] {
            let line = sample(source);
            let through_tracing = lines(|| line.log(false));
            let mut direct = String::new();
            line.write_text(&mut direct, SystemTime::now()).unwrap();
            assert_eq!(
                without_stamp(&direct),
                without_stamp(&through_tracing),
                "{source}"
            );
            assert_eq!(direct.lines().count(), 1, "{direct}");
        }
        assert_eq!(
            without_stamp(&lines(|| sample("ck").log(false))),
            " INFO hookgate::request: request request_id=\"00ff00ff00ff00ff\" source=\"ck\" \
             outcome=forwarded status=202 method=POST latency_ms=0.42\n"
        );
    }

    #[test]
    fn latency_has_two_decimals_rounded_half_up() {
        let cases = [
            (0, "0.00"),
            (4, "0.00"),
            (5, "0.01"),
            (416, "0.42"),
            (1_005, "1.01"),
            (99_995, "100.00"),
            (12_345_678, "12345.68"),
            (u64::MAX, "18446744073709551.62"),
        ];
        for (micros, text) in cases {
            assert_eq!(
                Millis(Duration::from_micros(micros)).to_string(),
                text,
                "{micros}"
            );
        }
    }
}
