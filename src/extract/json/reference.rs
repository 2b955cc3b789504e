//! The walk `json_fields` used before `walk.rs`, on serde_json's streaming parser, kept as the
//! reference the tests compare the new walk with: same documents accepted and refused, same
//! values found.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{JsonError, JsonPath, Scalar};

/// [`super::json_fields`] as it was.
pub fn json_fields<P: AsRef<JsonPath>>(
    body: &[u8],
    paths: &[P],
) -> Result<Vec<Option<Scalar>>, JsonError> {
    assert!(paths.len() <= 64, "at most 64 paths per walk");
    let out = RefCell::new(vec![None; paths.len()]);
    let duplicate = Cell::new(None);
    let walk = Walk {
        paths,
        out: &out,
        duplicate: &duplicate,
    };
    let all = if paths.len() == 64 {
        u64::MAX
    } else {
        (1u64 << paths.len()) - 1
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let seek = Seek {
        walk: &walk,
        wanted: all,
        depth: 0,
    };
    seek.deserialize(&mut de)
        .map_err(|_| match duplicate.get() {
            Some(i) => JsonError::DuplicateKey(paths[i].as_ref().to_string()),
            None => JsonError::Invalid,
        })?;
    de.end().map_err(|_| JsonError::Invalid)?;
    Ok(out.into_inner())
}

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

/// What every level of one walk shares: the paths (by index), the answers, and the path whose
/// key appeared twice in one object.
struct Walk<'w, P> {
    paths: &'w [P],
    out: &'w RefCell<Vec<Option<Scalar>>>,
    duplicate: &'w Cell<Option<usize>>,
}

impl<P: AsRef<JsonPath>> Walk<'_, P> {
    /// The path `i`'s segment at `depth`, if it goes that deep.
    fn segment(&self, i: usize, depth: usize) -> Option<&String> {
        self.paths[i].as_ref().0.get(depth)
    }
}

/// The paths still wanted at the current value, as a bit set over the walk's paths, and how
/// deep the value is: the walk allocates nothing but its answers.
struct Seek<'w, P> {
    walk: &'w Walk<'w, P>,
    wanted: u64,
    depth: usize,
}

impl<P: AsRef<JsonPath>> Seek<'_, P> {
    /// The same walk one level down, for the paths in `wanted`.
    fn below(&self, wanted: u64) -> Self {
        Seek {
            walk: self.walk,
            wanted,
            depth: self.depth + 1,
        }
    }

    /// Records `scalar` for every path that ends here (moved into the last, copied for the
    /// others: the same path asked twice).
    fn found(&self, scalar: Scalar) {
        let mut out = self.walk.out.borrow_mut();
        let mut ends = indexes(self.wanted)
            .filter(|&i| self.walk.segment(i, self.depth).is_none())
            .peekable();
        let mut scalar = Some(scalar);
        while let Some(i) = ends.next() {
            out[i] = if ends.peek().is_some() {
                scalar.clone()
            } else {
                scalar.take()
            };
        }
    }
}

impl<'de, P: AsRef<JsonPath>> DeserializeSeed<'de> for Seek<'_, P> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.wanted == 0 {
            IgnoredAny::deserialize(d)?;
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de, P: AsRef<JsonPath>> Visitor<'de> for Seek<'_, P> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.found(Scalar::Str(v.to_string()));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.found(Scalar::Int(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.found(match i64::try_from(v) {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::Float(v as f64),
        });
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.found(Scalar::Float(v));
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u64;
        let keys = KeyMatches {
            walk: self.walk,
            wanted: self.wanted,
            depth: self.depth,
        };
        while let Some(matches) = map.next_key_seed(keys.copy())? {
            if matches == 0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if let Some(i) = indexes(seen & matches).next() {
                self.walk.duplicate.set(Some(i));
                return Err(de::Error::custom("duplicate key"));
            }
            seen |= matches;
            map.next_value_seed(self.below(matches))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let wanted = indexes(self.wanted)
                .filter(|&i| {
                    self.walk
                        .segment(i, self.depth)
                        .and_then(|s| s.parse::<usize>().ok())
                        == Some(index)
                })
                .fold(0u64, |bits, i| bits | 1 << i);
            if seq.next_element_seed(self.below(wanted))?.is_none() {
                break;
            }
            index += 1;
        }
        Ok(())
    }
}

/// Which wanted paths continue through an object key, as a bit set over the walk's paths.
struct KeyMatches<'w, P> {
    walk: &'w Walk<'w, P>,
    wanted: u64,
    depth: usize,
}

impl<P> KeyMatches<'_, P> {
    fn copy(&self) -> Self {
        KeyMatches {
            walk: self.walk,
            wanted: self.wanted,
            depth: self.depth,
        }
    }
}

impl<'de, P: AsRef<JsonPath>> DeserializeSeed<'de> for KeyMatches<'_, P> {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, P: AsRef<JsonPath>> Visitor<'de> for KeyMatches<'_, P> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        Ok(indexes(self.wanted)
            .filter(|&i| self.walk.segment(i, self.depth).is_some_and(|k| k == v))
            .fold(0u64, |bits, i| bits | 1 << i))
    }
}
