//! The small part of DER that public keys need: reading one tag-length-value at a time, with
//! definite, minimally encoded lengths only (BER's indefinite lengths are refused). Used to take
//! the `SubjectPublicKeyInfo` out of an X.509 certificate and the key bytes out of an SPKI,
//! without a full ASN.1 or X.509 dependency. Nothing here trusts a certificate: it only finds
//! the key in it.

/// `SEQUENCE`.
pub(crate) const SEQUENCE: u8 = 0x30;
/// `INTEGER`.
pub(crate) const INTEGER: u8 = 0x02;
/// `BIT STRING`.
pub(crate) const BIT_STRING: u8 = 0x03;
/// `OBJECT IDENTIFIER`.
pub(crate) const OID: u8 = 0x06;
/// `[0] EXPLICIT` (the certificate's version).
pub(crate) const CONTEXT_0: u8 = 0xa0;

/// A cursor over DER bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// The bytes not read yet.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next element, without consuming it.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads the next element, which must have tag `tag`, and returns its contents.
    pub(crate) fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (found, contents) = self.next()?;
        (found == tag).then_some(contents)
    }

    /// Reads the next element: its tag and contents. Only single-byte tags are supported.
    pub(crate) fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // multi-byte tags never occur in keys or certificates' outer layers
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None; // indefinite length, or longer than anything we accept
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            if bytes[0] == 0 {
                return None; // not minimal
            }
            let len = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
            if len < 0x80 {
                return None; // not minimal
            }
            len
        };
        if rest.len() < len {
            return None;
        }
        let (contents, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, contents))
    }

    /// Reads the whole remaining input as exactly one element with tag `tag`.
    pub(crate) fn only(bytes: &'a [u8], tag: u8) -> Option<&'a [u8]> {
        let mut reader = Reader::new(bytes);
        let contents = reader.expect(tag)?;
        reader.is_empty().then_some(contents)
    }
}

/// The contents of a DER `INTEGER` as an unsigned big-endian magnitude: the sign byte and
/// leading zeros are removed. Negative integers are refused.
pub(crate) fn unsigned_integer(contents: &[u8]) -> Option<&[u8]> {
    if contents.first()? & 0x80 != 0 {
        return None;
    }
    let start = contents.iter().position(|b| *b != 0)?;
    Some(&contents[start..])
}

/// The payload of a `BIT STRING` with no unused bits (every key's is).
pub(crate) fn bit_string_bytes(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first()? {
        (0, bytes) => Some(bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        let mut r = Reader::new(&long);
        assert_eq!(r.next().map(|(t, c)| (t, c.len())), Some((0x04, 0x80)));
        assert!(r.is_empty());
        assert_eq!(Reader::only(&[0x02, 0x01, 0x05], INTEGER), Some(&[5u8][..]));
    }

    #[test]
    fn refuses_indefinite_non_minimal_and_truncated() {
        assert!(Reader::new(&[0x30, 0x80, 0, 0]).next().is_none());
        assert!(Reader::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5])
            .next()
            .is_none());
        assert!(Reader::new(&[0x04, 0x82, 0x00, 0x90]).next().is_none());
        assert!(Reader::new(&[0x04, 0x05, 1, 2]).next().is_none());
        assert!(Reader::only(&[0x02, 0x01, 0x05, 0x00], INTEGER).is_none());
    }

    #[test]
    fn integers_and_bit_strings() {
        assert_eq!(
            unsigned_integer(&[0x00, 0x80, 0x01]),
            Some(&[0x80, 0x01][..])
        );
        assert_eq!(unsigned_integer(&[0x80]), None);
        assert_eq!(unsigned_integer(&[0x00]), None);
        assert_eq!(bit_string_bytes(&[0, 1, 2]), Some(&[1u8, 2][..]));
        assert_eq!(bit_string_bytes(&[3, 1, 2]), None);
    }
}
