//! One walk of a JSON document (RFC 8259, as serde_json's streaming parser reads it): a
//! descent along the wanted paths, recursive only as deep as the longest path, and an
//! iterative skip of every value off them, which keeps one byte per open container (any depth,
//! no recursion). Only the values asked for are decoded; a skipped string is checked for what
//! JSON forbids in it (control bytes, malformed escapes) and nothing more, as serde_json's
//! skip does (it checks no UTF-8 and no surrogate pairing there either).

use super::{JsonPath, Scalar};

/// Why a walk stopped.
#[derive(Debug)]
pub(super) enum Failure {
    Invalid,
    /// The path at this index met its key twice in one object.
    Duplicate(usize),
}

type Result<T> = std::result::Result<T, Failure>;

/// The indexes in the bit set `bits`, lowest first.
fn indexes(mut bits: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            i
        })
    })
}

/// Whether `b` ends a run of plain string bytes: a quote, a backslash or a control byte (which
/// a JSON string may not hold raw). `b ^ 2` maps the quote to 0x20 and the control bytes onto
/// themselves, so one comparison covers both.
pub(super) fn stops_string(b: u8) -> bool {
    ((b ^ 2) <= 0x20) | (b == b'\\')
}

/// The bytes of `word` (little-endian) that stop a string, as the high bit of each: exact for
/// the lowest one (the ones above it may be flagged wrongly). As [`stops_string`], with the
/// byte-wise "less than" and "equal" of Mycroft's zero-byte test.
fn stops_in_word(word: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    let quote_or_control = word ^ (ONES * 2);
    let below = quote_or_control.wrapping_sub(ONES * 0x21) & !quote_or_control;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let equal = backslash.wrapping_sub(ONES) & !backslash;
    (below | equal) & (ONES << 7)
}

/// Where the plain bytes at the start of `bytes` end. Chunks of 32 bytes, each tested whole
/// without an early exit, are compared 16 bytes per instruction; the chunk that holds the stop,
/// and the tail, are read 8 bytes at a time.
pub(super) fn string_stop(bytes: &[u8]) -> Option<usize> {
    let mut offset = 0;
    for chunk in bytes.chunks_exact(32) {
        if chunk.iter().fold(false, |seen, &b| seen | stops_string(b)) {
            break;
        }
        offset += 32;
    }
    for word in bytes[offset..].chunks(8) {
        // Past the end: bytes that stop nothing.
        let mut padded = [b'x'; 8];
        padded[..word.len()].copy_from_slice(word);
        let stops = stops_in_word(u64::from_le_bytes(padded));
        if stops != 0 {
            return Some(offset + stops.trailing_zeros() as usize / 8);
        }
        offset += word.len();
    }
    None
}

/// The four hex digits at the start of `bytes`, as a number.
fn hex4(bytes: &[u8]) -> Result<u32> {
    let digits = bytes.get(..4).ok_or(Failure::Invalid)?;
    digits.iter().try_fold(0u32, |n, &b| {
        let digit = char::from(b).to_digit(16).ok_or(Failure::Invalid)?;
        Ok(n << 4 | digit)
    })
}

/// A string's contents between its quotes, escapes decoded. The grammar was checked by
/// `scan_string`; what is checked here is what serde_json checks of a string it reads: paired
/// surrogates in `\u` escapes and UTF-8.
fn decode(raw: &[u8]) -> Result<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(k) = raw[i..].iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&raw[i..i + k]);
        i += k + 1;
        let escape = *raw.get(i).ok_or(Failure::Invalid)?;
        i += 1;
        let decoded = match escape {
            b'"' | b'\\' | b'/' => char::from(escape),
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = hex4(&raw[i..])?;
                i += 4;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if raw.get(i..i + 2) != Some(b"\\u") {
                            return Err(Failure::Invalid);
                        }
                        let second = hex4(&raw[i + 2..])?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(Failure::Invalid);
                        }
                        i += 6;
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Failure::Invalid),
                    _ => first,
                };
                char::from_u32(code).ok_or(Failure::Invalid)?
            }
            _ => return Err(Failure::Invalid),
        };
        out.extend_from_slice(decoded.encode_utf8(&mut [0; 4]).as_bytes());
    }
    out.extend_from_slice(&raw[i..]);
    String::from_utf8(out).map_err(|_| Failure::Invalid)
}

/// A number's value, read as serde_json reads it: a negative integer that fits an `i64` (not
/// `-0`) or a non-negative one that fits a `u64` is an integer (a `u64` past `i64::MAX` is kept
/// as a float, as before); anything else is a float, refused if it overflows. Floats are read
/// by serde_json itself: its rounding differs from the standard library's in the last bit for
/// some inputs (integers past `u64::MAX`, for one), and an id or a timestamp must read the same
/// as before.
fn number_value(text: &[u8]) -> Result<Scalar> {
    let text = std::str::from_utf8(text).map_err(|_| Failure::Invalid)?;
    if !text.contains(['.', 'e', 'E']) {
        if text.starts_with('-') {
            if let Ok(v @ ..=-1) = text.parse::<i64>() {
                return Ok(Scalar::Int(v));
            }
        } else if let Ok(v) = text.parse::<u64>() {
            return Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int));
        }
    }
    serde_json::from_str::<f64>(text)
        .map(Scalar::Float)
        .map_err(|_| Failure::Invalid)
}

pub(super) struct Walk<'b, 'p, P> {
    bytes: &'b [u8],
    at: usize,
    paths: &'p [P],
    found: Vec<Option<Scalar>>,
    /// The containers open in the value being skipped: `{` or `[` each.
    nesting: Vec<u8>,
}

impl<'b, 'p, P: AsRef<JsonPath>> Walk<'b, 'p, P> {
    pub(super) fn new(bytes: &'b [u8], paths: &'p [P]) -> Self {
        Walk {
            bytes,
            at: 0,
            paths,
            found: vec![None; paths.len()],
            nesting: Vec::new(),
        }
    }

    /// Walks the whole document: one answer per path, in order.
    pub(super) fn run(mut self) -> Result<Vec<Option<Scalar>>> {
        let all = match self.paths.len() {
            0 => 0,
            n => u64::MAX >> (64 - n),
        };
        self.value(all, 0)?;
        self.whitespace();
        if self.at != self.bytes.len() {
            return Err(Failure::Invalid);
        }
        Ok(self.found)
    }

    fn segment(&self, path: usize, depth: usize) -> Option<&str> {
        self.paths[path].as_ref().segment(depth)
    }

    fn peek(&self) -> Result<u8> {
        self.bytes.get(self.at).copied().ok_or(Failure::Invalid)
    }

    /// Steps over `byte`, which must come next.
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek()? != byte {
            return Err(Failure::Invalid);
        }
        self.at += 1;
        Ok(())
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The value here, for the paths in `wanted` that have come `depth` segments deep.
    fn value(&mut self, wanted: u64, depth: usize) -> Result<()> {
        if wanted == 0 {
            return self.skip();
        }
        self.whitespace();
        let scalar = match self.peek()? {
            b'{' => return self.object(wanted, depth),
            b'[' => return self.array(wanted, depth),
            b'"' => {
                let (start, end, _) = self.scan_string()?;
                Scalar::Str(decode(&self.bytes[start..end])?)
            }
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                self.number()?;
                number_value(&self.bytes[start..self.at])?
            }
            b't' => return self.literal(b"true"),
            b'f' => return self.literal(b"false"),
            b'n' => return self.literal(b"null"),
            _ => return Err(Failure::Invalid),
        };
        self.found(wanted, depth, scalar);
        Ok(())
    }

    /// Records `scalar` for every wanted path that ends here (moved into the last, copied for
    /// the others: the same path asked twice).
    fn found(&mut self, wanted: u64, depth: usize, scalar: Scalar) {
        let paths = self.paths;
        let mut ends = indexes(wanted)
            .filter(|&i| paths[i].as_ref().segment(depth).is_none())
            .peekable();
        let mut scalar = Some(scalar);
        while let Some(i) = ends.next() {
            self.found[i] = if ends.peek().is_some() {
                scalar.clone()
            } else {
                scalar.take()
            };
        }
    }

    fn object(&mut self, wanted: u64, depth: usize) -> Result<()> {
        self.at += 1;
        self.whitespace();
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(());
        }
        let mut seen = 0u64;
        loop {
            let matches = self.key(wanted, depth)?;
            if let Some(i) = indexes(seen & matches).next() {
                return Err(Failure::Duplicate(i));
            }
            seen |= matches;
            self.whitespace();
            self.expect(b':')?;
            self.value(matches, depth + 1)?;
            self.whitespace();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.whitespace();
                }
                b'}' => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Failure::Invalid),
            }
        }
    }

    /// The paths in `wanted` whose segment at `depth` is the key here.
    fn key(&mut self, wanted: u64, depth: usize) -> Result<u64> {
        if self.peek()? != b'"' {
            return Err(Failure::Invalid);
        }
        let (start, end, escaped) = self.scan_string()?;
        let raw = &self.bytes[start..end];
        let decoded;
        let key = if escaped {
            decoded = decode(raw)?;
            decoded.as_str()
        } else {
            std::str::from_utf8(raw).map_err(|_| Failure::Invalid)?
        };
        Ok(indexes(wanted)
            .filter(|&i| self.segment(i, depth) == Some(key))
            .fold(0, |bits, i| bits | 1 << i))
    }

    fn array(&mut self, wanted: u64, depth: usize) -> Result<()> {
        self.at += 1;
        self.whitespace();
        if self.peek()? == b']' {
            self.at += 1;
            return Ok(());
        }
        let mut index = 0usize;
        loop {
            let here = indexes(wanted)
                .filter(|&i| {
                    self.segment(i, depth).and_then(|s| s.parse::<usize>().ok()) == Some(index)
                })
                .fold(0, |bits, i| bits | 1 << i);
            self.value(here, depth + 1)?;
            self.whitespace();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    index += 1;
                }
                b']' => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Failure::Invalid),
            }
        }
    }

    /// Steps over the string whose opening quote is here: (start, end) of its contents, and
    /// whether it holds escapes.
    fn scan_string(&mut self) -> Result<(usize, usize, bool)> {
        let start = self.at + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            i += string_stop(&self.bytes[i..]).ok_or(Failure::Invalid)?;
            match self.bytes[i] {
                b'"' => {
                    self.at = i + 1;
                    return Ok((start, i, escaped));
                }
                b'\\' => escaped = true,
                _ => return Err(Failure::Invalid),
            }
            i += 1;
            match self.bytes.get(i) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 1,
                Some(b'u') => {
                    hex4(&self.bytes[i + 1..])?;
                    i += 5;
                }
                _ => return Err(Failure::Invalid),
            }
        }
    }

    /// Steps over the number here, checking its grammar.
    fn number(&mut self) -> Result<()> {
        let bytes = self.bytes;
        let digits = |mut i: usize| {
            while let Some(b'0'..=b'9') = bytes.get(i) {
                i += 1;
            }
            i
        };
        let mut i = self.at + usize::from(bytes.get(self.at) == Some(&b'-'));
        i = match bytes.get(i) {
            Some(b'0') => i + 1,
            Some(b'1'..=b'9') => digits(i + 1),
            _ => return Err(Failure::Invalid),
        };
        if bytes.get(i) == Some(&b'.') {
            let end = digits(i + 1);
            if end == i + 1 {
                return Err(Failure::Invalid);
            }
            i = end;
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            let end = digits(i);
            if end == i {
                return Err(Failure::Invalid);
            }
            i = end;
        }
        self.at = i;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if !self.bytes[self.at..].starts_with(word) {
            return Err(Failure::Invalid);
        }
        self.at += word.len();
        Ok(())
    }

    /// Steps over the value here, whatever its depth, without recursion.
    fn skip(&mut self) -> Result<()> {
        let base = self.nesting.len();
        loop {
            self.whitespace();
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.at += 1;
                    self.whitespace();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.at += 1;
                    } else {
                        self.nesting.push(open);
                        if open == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.scan_string()?;
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(Failure::Invalid),
            }
            // A value ended: close the containers it ends, or go on to the next value.
            loop {
                let open = match self.nesting.last() {
                    Some(&open) if self.nesting.len() > base => open,
                    _ => return Ok(()),
                };
                self.whitespace();
                match (open, self.peek()?) {
                    (_, b',') => {
                        self.at += 1;
                        if open == b'{' {
                            self.whitespace();
                            self.member_key()?;
                        }
                        break;
                    }
                    (b'{', b'}') | (b'[', b']') => {
                        self.at += 1;
                        self.nesting.pop();
                    }
                    _ => return Err(Failure::Invalid),
                }
            }
        }
    }

    /// Steps over a skipped member's key and its colon.
    fn member_key(&mut self) -> Result<()> {
        if self.peek()? != b'"' {
            return Err(Failure::Invalid);
        }
        self.scan_string()?;
        self.whitespace();
        self.expect(b':')
    }
}
