//! Reading a JSON value with serde_json into the core's canonical text, the serde counterpart
//! of `json::canonical_json`: the two readers `serde_any` ([`Numbers::Any`]) and `serde_raw`
//! ([`Numbers::Raw`]), and the helpers the text-form readers share (string keys, `\u0000`, the
//! depth limit).

use std::borrow::Cow;
use std::fmt;

use crdt_core::json;
use serde::de::{self, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The deepest nesting the core accepts.
pub(crate) const MAX_DEPTH: usize = json::MAX_DEPTH;

/// The key under which `arbitrary_precision` hands a number to `deserialize_any` visitors.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Which serde reader (see the crate docs in main.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbers {
    /// One pass; numbers as `arbitrary_precision` gives them.
    Any,
    /// Every value as a `&RawValue` first; numbers exactly as written.
    Raw,
}

fn too_deep<E: de::Error>() -> E {
    E::custom(format_args!(
        "arrays and objects nested more than {MAX_DEPTH} levels deep"
    ))
}

pub(crate) fn nul<E: de::Error>() -> E {
    E::custom("a string without \\u0000 (PostgreSQL text cannot hold it)")
}

/// A string's canonical text.
fn push_string<E: de::Error>(out: &mut String, s: &str) -> Result<(), E> {
    if s.contains('\0') {
        return Err(nul());
    }
    json::write_string(out, s);
    Ok(())
}

/// An object key or a string value, borrowed from the input where it has no escapes.
pub(crate) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// The members of an object after its first key: each key written canonically, its value by
/// `value`, keys sorted at the end if they came out of order; a key given twice is an error.
fn object<'de, A: MapAccess<'de>>(
    out: &mut String,
    first: Cow<'de, str>,
    map: &mut A,
    mut value: impl FnMut(&mut A, &mut String) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    out.push('{');
    let start = out.len();
    // Each key, and where its member starts in `out`.
    let mut members: Vec<(Cow<'de, str>, usize)> = Vec::new();
    let mut unsorted = false;
    let mut next = Some(first);
    while let Some(key) = next {
        if let Some((previous, _)) = members.last() {
            unsorted |= key <= *previous;
            out.push_str(", ");
        }
        let at = out.len();
        push_string(out, &key)?;
        out.push_str(": ");
        value(map, out)?;
        members.push((key, at));
        next = map.next_key_seed(Key)?;
    }
    if unsorted {
        sort_members(out, start, members)?;
    }
    out.push('}');
    Ok(())
}

/// Puts the members written since `start` in key order; a key given twice is an error.
fn sort_members<E: de::Error>(out: &mut String, start: usize, members: Vec<(Cow<'_, str>, usize)>) -> Result<(), E> {
    let ends: Vec<usize> = members
        .iter()
        .skip(1)
        .map(|(_, at)| at - 2)
        .chain(std::iter::once(out.len()))
        .collect();
    let mut spans: Vec<(Cow<'_, str>, usize, usize)> = members
        .into_iter()
        .zip(ends)
        .map(|((key, at), end)| (key, at, end))
        .collect();
    spans.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = spans.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(E::custom(format_args!("duplicate key {:?}", pair[1].0)));
    }
    let mut sorted = String::with_capacity(out.len() - start);
    for (i, (_, at, end)) in spans.iter().enumerate() {
        if i > 0 {
            sorted.push_str(", ");
        }
        sorted.push_str(&out[*at..*end]);
    }
    out.truncate(start);
    out.push_str(&sorted);
    Ok(())
}

/// `serde_any`: a value read by `deserialize_any`, written canonically to `out`.
struct AnyValue<'o> {
    out: &'o mut String,
    /// Arrays and objects open around it.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for AnyValue<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        push_string(self.out, v)
    }

    // arbitrary_precision still hands integers that fit 64 bits over as integers (all but
    // `-0`); their decimal text is the text as written, which has no leading zeros.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        use std::fmt::Write as _;
        let _ = write!(self.out, "{v}");
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        use std::fmt::Write as _;
        let _ = write!(self.out, "{v}");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.out.push('[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push_str(", ");
            }
            let element = AnyValue {
                out: &mut *self.out,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(element)?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(first) = map.next_key_seed(Key)? else {
            self.out.push_str("{}");
            return Ok(());
        };
        // A number: arbitrary_precision hands it over as a one-entry map (and so would an
        // object with that one key and a string value: serde_json's own `Value` has the same
        // blind spot).
        if first == NUMBER_TOKEN {
            let number = map.next_value_seed(Key)?;
            self.out.push_str(&number);
            return Ok(());
        }
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        let depth = self.depth + 1;
        object(self.out, first, &mut map, |map, out| {
            map.next_value_seed(AnyValue { out, depth })
        })
    }
}

/// `serde_raw`: a value taken as its text as written, then written canonically to `out`.
struct RawSeed<'o> {
    out: &'o mut String,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let raw = <&'de RawValue as de::Deserialize>::deserialize(deserializer)?;
        transcribe_raw(raw.get(), self.out, self.depth).map_err(D::Error::custom)
    }
}

/// One value's text as written (no surrounding whitespace), canonically to `out`.
fn transcribe_raw(text: &str, out: &mut String, depth: usize) -> Result<(), serde_json::Error> {
    match text.as_bytes().first() {
        Some(b'{' | b'[') => {
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            // Read again, one level down; serde_json checked its syntax already.
            serde_json::Deserializer::from_str(text).deserialize_any(RawContainer { out, depth })
        }
        Some(b'"') if !text.contains('\\') => {
            // Raw control characters were refused by serde_json, so this is canonical as is.
            out.push_str(text);
            Ok(())
        }
        Some(b'"') => {
            let s = serde_json::Deserializer::from_str(text).deserialize_str(Key)?;
            push_string(out, &s)
        }
        // Numbers, true, false, null: as written.
        _ => {
            out.push_str(text);
            Ok(())
        }
    }
}

/// An array or object read from its raw text; its members are [`RawSeed`]s.
struct RawContainer<'o> {
    out: &'o mut String,
    depth: usize,
}

impl<'de> Visitor<'de> for RawContainer<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array or an object")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push('[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push_str(", ");
            }
            let element = RawSeed {
                out: &mut *self.out,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(element)?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(first) = map.next_key_seed(Key)? else {
            self.out.push_str("{}");
            return Ok(());
        };
        let depth = self.depth + 1;
        object(self.out, first, &mut map, |map, out| {
            map.next_value_seed(RawSeed { out, depth })
        })
    }
}

/// Skips JSON whitespace.
fn trim_json_start(text: &str) -> &str {
    text.trim_start_matches([' ', '\t', '\n', '\r'])
}

/// The serde counterpart of [`json::canonical_json`].
pub(crate) fn serde_canonical(text: &str, numbers: Numbers) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match numbers {
        Numbers::Any => deserializer.deserialize_any(AnyValue {
            out: &mut out,
            depth: 0,
        })?,
        Numbers::Raw => match trim_json_start(text).as_bytes().first() {
            // A container: read directly (taking it raw first would scan it once more).
            Some(b'{' | b'[') => deserializer.deserialize_any(RawContainer {
                out: &mut out,
                depth: 0,
            })?,
            _ => RawSeed {
                out: &mut out,
                depth: 0,
            }
            .deserialize(&mut deserializer)?,
        },
    }
    deserializer.end()?;
    Ok(out)
}

/// One value read by the chosen serde reader into its canonical text.
pub(crate) fn read_value<'de, D: Deserializer<'de>>(deserializer: D, numbers: Numbers) -> Result<String, D::Error> {
    let mut out = String::new();
    match numbers {
        Numbers::Any => deserializer.deserialize_any(AnyValue {
            out: &mut out,
            depth: 0,
        })?,
        Numbers::Raw => RawSeed {
            out: &mut out,
            depth: 0,
        }
        .deserialize(deserializer)?,
    }
    Ok(out)
}
