//! Parsing delivery timestamps as providers stamp them: unix seconds, unix milliseconds, or
//! ISO 8601 with or without a zone (a zoneless time is taken as UTC, as CertifyClouds sends).
//! Every parse is strict: negative, fractional, overflowing or garbled values are errors, so a
//! hostile value cannot slip through as "time zero" or wrap around.

use serde::Deserialize;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::extract::Scalar;

/// How a timestamp value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Whole seconds since the epoch (string of digits or JSON integer).
    Unix,
    /// Whole milliseconds since the epoch.
    UnixMs,
    /// ISO 8601 / RFC 3339 date-time; without a zone it is read as UTC.
    Iso8601,
    /// Digits (or a JSON integer) as unix seconds, anything else as ISO 8601.
    Auto,
}

impl TimeFormat {
    pub fn name(self) -> &'static str {
        match self {
            TimeFormat::Unix => "unix",
            TimeFormat::UnixMs => "unix_ms",
            TimeFormat::Iso8601 => "iso8601",
            TimeFormat::Auto => "auto",
        }
    }
}

/// Why a timestamp was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("not a whole non-negative number")]
    NotInteger,
    #[error("out of range")]
    OutOfRange,
    #[error("not an ISO 8601 date-time")]
    NotIso8601,
}

impl TimestampError {
    pub fn reason(self) -> &'static str {
        match self {
            TimestampError::NotInteger => "not a whole non-negative number",
            TimestampError::OutOfRange => "out of range",
            TimestampError::NotIso8601 => "not an ISO 8601 date-time",
        }
    }
}

/// Milliseconds since the epoch beyond which a timestamp is refused (year 9999).
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// Parses a timestamp string into milliseconds since the epoch.
pub fn parse_str(text: &str, format: TimeFormat) -> Result<i64, TimestampError> {
    let text = text.trim();
    match format {
        TimeFormat::Unix => unix_digits(text).and_then(|s| scale(s, 1000)),
        TimeFormat::UnixMs => unix_digits(text).and_then(|ms| scale(ms, 1)),
        TimeFormat::Iso8601 => iso8601(text),
        TimeFormat::Auto => {
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                unix_digits(text).and_then(|s| scale(s, 1000))
            } else {
                iso8601(text)
            }
        }
    }
}

/// Parses a JSON scalar into milliseconds since the epoch.
pub fn parse_scalar(value: &Scalar, format: TimeFormat) -> Result<i64, TimestampError> {
    match (value, format) {
        (Scalar::Str(text), _) => parse_str(text, format),
        (Scalar::Int(i), TimeFormat::Unix | TimeFormat::Auto) if *i >= 0 => scale(*i, 1000),
        (Scalar::Int(i), TimeFormat::UnixMs) if *i >= 0 => scale(*i, 1),
        (Scalar::Int(_), TimeFormat::Iso8601) => Err(TimestampError::NotIso8601),
        (Scalar::Int(_), _) | (Scalar::Float(_), _) => Err(TimestampError::NotInteger),
    }
}

fn unix_digits(text: &str) -> Result<i64, TimestampError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimestampError::NotInteger);
    }
    text.parse::<i64>().map_err(|_| TimestampError::OutOfRange)
}

fn scale(value: i64, factor: i64) -> Result<i64, TimestampError> {
    value
        .checked_mul(factor)
        .filter(|ms| (0..=MAX_MILLIS).contains(ms))
        .ok_or(TimestampError::OutOfRange)
}

fn iso8601(text: &str) -> Result<i64, TimestampError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .or_else(|_| PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).map(|p| p.assume_utc()))
        .map_err(|_| TimestampError::NotIso8601)?;
    // Seconds and milliseconds in `i64` (the nanoseconds are an `i128`, whose division is a
    // library call on every delivery).
    parsed
        .unix_timestamp()
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(parsed.millisecond())))
        .filter(|ms| (0..=MAX_MILLIS).contains(ms))
        .ok_or(TimestampError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_and_millis() {
        assert_eq!(
            parse_str("1614265330", TimeFormat::Unix),
            Ok(1_614_265_330_000)
        );
        assert_eq!(
            parse_str("1614265330123", TimeFormat::UnixMs),
            Ok(1_614_265_330_123)
        );
        assert_eq!(
            parse_scalar(&Scalar::Int(1702569600), TimeFormat::Auto),
            Ok(1_702_569_600_000)
        );
    }

    #[test]
    fn iso8601_with_and_without_zone() {
        let zulu = parse_str("2025-06-11T10:30:00Z", TimeFormat::Iso8601).unwrap();
        assert_eq!(zulu, 1_749_637_800_000);
        let offset = parse_str("2025-06-11T12:30:00+02:00", TimeFormat::Iso8601).unwrap();
        assert_eq!(offset, zulu);
        // CertifyClouds' zoneless microsecond form is read as UTC.
        let zoneless = parse_str("2024-12-14T12:00:00.000000", TimeFormat::Iso8601).unwrap();
        assert_eq!(zoneless, 1_734_177_600_000);
        assert_eq!(
            parse_str("2024-12-14T12:00:00.000000", TimeFormat::Auto),
            Ok(zoneless)
        );
        // Fractions are cut to whole milliseconds; before 1970 is out of range.
        let fraction = parse_str("2025-06-11T10:30:00.123999Z", TimeFormat::Iso8601);
        assert_eq!(fraction, Ok(1_749_637_800_123));
        assert_eq!(
            parse_str("1969-12-31T23:59:59.500Z", TimeFormat::Iso8601),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn hostile_values_are_errors() {
        for bad in ["", "-5", "1.5", "1e9", " 12 34", "abc", "0x10", "+100"] {
            assert!(parse_str(bad, TimeFormat::Unix).is_err(), "{bad}");
        }
        assert_eq!(
            parse_str("99999999999999999999999", TimeFormat::Unix),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            parse_str("9223372036854775807", TimeFormat::Unix),
            Err(TimestampError::OutOfRange)
        );
        assert!(parse_scalar(&Scalar::Int(-1), TimeFormat::Unix).is_err());
        assert!(parse_scalar(&Scalar::Float(1.5), TimeFormat::Unix).is_err());
        assert!(parse_str("2025-13-40T99:00:00Z", TimeFormat::Iso8601).is_err());
        assert!(parse_str("yesterday", TimeFormat::Auto).is_err());
    }
}
