//! The text form of `crdt.doc`: what `pg_dump` and text-mode replication carry, so it holds
//! the whole state, and leads with the plain object so `SELECT *` is legible:
//!
//! ```text
//! {"value": {<plain object>}, "replaced": null | [<hlc>, "<node>"],
//!  "stamps": {"<key>": [<hlc>, "<node>"], ...},
//!  "counters": {"<key>": {"base": <number>, "nodes": {"<node>": [<inc>, <dec>], ...}}, ...},
//!  "removed": {"<key>": [<hlc>, "<node>"], ...}}
//! ```
//!
//! (on one line, spaced like `jsonb` output, keys sorted). `stamps` has exactly the keys of
//! `value` (a counter's is its base stamp), `counters` names some of them and must add up to
//! what `value` says, `removed` names none of them. Reading accepts any whitespace and section
//! order but nothing that contradicts itself.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use super::{
    read_json_value, read_keyed, write_plain_object, CounterProperty, CounterRef, Doc, Entry, EntryBody, NodeSums,
    Property,
};
use crate::codec::into_new_buffer;
use crate::decimal::{Decimal, MAX_INTEGER_DIGITS};
use crate::hlc::Stamp;
use crate::json;
use crate::node::NodeId;
use crate::text::{excerpt, read_node_pairs, write_integer, JsonReader, TextError, WrittenText};

const SECTIONS: &str = "\"value\", \"replaced\", \"stamps\", \"counters\" or \"removed\"";

/// What a counter's base must be (the limits of [`crate::decimal`]).
const BASE: &str = "a number with at most 1000 digits before and 1000 after the decimal point";

/// What a node's sum must be.
const SUM: &str = "a number ≥ 0 with at most 1000 digits before and 1000 after the decimal point";

const HLC: &str = "an hlc (an integer from 0 to 18446744073709551615)";

/// A counter's value sums one stored number per node, so it may have a few more integer
/// digits than a stored number; a stated value longer than this can't match any counter.
const VALUE_INTEGER_DIGITS: usize = MAX_INTEGER_DIGITS + 20;

impl Doc {
    /// The canonical text form (see the module docs). Same as `to_string()`.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(128);
        self.write_text(&mut out);
        out
    }

    /// Appends the text form to `out`.
    fn write_text(&self, out: &mut String) {
        write_text(out, self.replaced, self.entries());
    }

    /// Reads the text form, validating it completely: every section present once, no unknown
    /// or duplicate keys, valid stamps and node ids, consistent sections (see the module
    /// docs), no `[0, 0]` or negative counter sums, nothing stamped before `replaced`, no
    /// trailing text.
    pub fn from_text(text: &str) -> Result<Doc, TextError> {
        let mut reader = JsonReader::new(text);
        let mut value = None;
        let mut replaced = None;
        let mut stamps = None;
        let mut counters = None;
        let mut removed = None;
        let mut object = reader.begin_object("'{' starting a doc object")?;
        while let Some((key, offset)) = reader.next_key(&mut object)? {
            let duplicate = || TextError::DuplicateKey {
                offset,
                key: excerpt(&key),
            };
            match &*key {
                "value" if value.is_some() => return Err(duplicate()),
                "value" => {
                    value = Some(read_keyed(
                        &mut reader,
                        "'{' starting the value object",
                        read_located_value,
                    )?);
                }
                "replaced" if replaced.is_some() => return Err(duplicate()),
                "replaced" => {
                    replaced = Some(if reader.peek_token() == Some(b'n') {
                        reader.literal("null", "null or a [hlc, \"node\"] stamp")?;
                        None
                    } else {
                        Some(read_stamp(&mut reader)?)
                    });
                }
                "stamps" if stamps.is_some() => return Err(duplicate()),
                "stamps" => {
                    stamps = Some(read_keyed(&mut reader, "'{' starting the stamps object", read_stamp)?);
                }
                "counters" if counters.is_some() => return Err(duplicate()),
                "counters" => {
                    counters = Some(read_keyed(
                        &mut reader,
                        "'{' starting the counters object",
                        read_counter,
                    )?);
                }
                "removed" if removed.is_some() => return Err(duplicate()),
                "removed" => {
                    removed = Some(read_keyed(&mut reader, "'{' starting the removed object", read_stamp)?);
                }
                _ => {
                    return Err(TextError::UnknownKey {
                        offset,
                        key: excerpt(&key),
                        expected: SECTIONS,
                    })
                }
            }
        }
        reader.finish()?;
        let missing = |key| TextError::MissingKey { key };
        assemble(
            value.ok_or(missing("value"))?,
            replaced.ok_or(missing("replaced"))?,
            stamps.ok_or(missing("stamps"))?,
            counters.ok_or(missing("counters"))?,
            removed.ok_or(missing("removed"))?,
        )
    }

    /// The binary form of a text form: `Doc::from_text(text)?.encode()`, the same result and
    /// the same errors, without building the doc when the text is laid out as
    /// [`Doc::to_text`] writes it and has no counter (what text-mode replication carries).
    pub fn encode_text(text: &str) -> Result<Vec<u8>, TextError> {
        into_new_buffer(|out| Doc::encode_text_into(text, out))
    }

    /// [`Doc::encode_text`], appended to `out` (which holds part of it on error).
    pub fn encode_text_into(text: &str, out: &mut Vec<u8>) -> Result<(), TextError> {
        match read_written_layout(text) {
            Some(layout) => layout.encode_into(out),
            None => Doc::from_text(text)?.encode_into(out),
        }
        Ok(())
    }
}

/// The entries of a doc text laid out exactly as [`write_text`] writes it, without counters
/// and with nothing the general reader would refuse; `None` for any other text, which
/// [`Doc::from_text`] then reads (or says what is wrong with it). The shortcut must agree with
/// `from_text` on every text it accepts; the property tests and fuzzing compare the two.
pub(crate) fn read_written_layout(text: &str) -> Option<WrittenLayout<'_>> {
    let mut layout = WrittenText::new(text);
    layout.literal("{\"value\": {")?;
    // Each value's entry, stamped when the stamps are read (same keys, same order).
    let mut entries: Vec<(&str, Entry<'_>)> = Vec::new();
    let unstamped = Stamp::new(0, NodeId::from_bytes([0; 16]));
    layout.sorted_members(WrittenText::key, written_scalar, |key, json| {
        entries.push((
            key,
            Entry {
                stamp: unstamped,
                body: EntryBody::Value(json),
            },
        ));
        Some(())
    })?;
    layout.literal("}, \"replaced\": ")?;
    let replaced = if layout.next_is(b'n') {
        layout.literal("null")?;
        None
    } else {
        Some(written_stamp(&mut layout)?)
    };
    layout.literal(", \"stamps\": {")?;
    let mut stamped = 0;
    layout.sorted_members(WrittenText::key, written_stamp, |key, stamp| {
        let (value_key, entry) = entries.get_mut(stamped)?;
        stamped += 1;
        (*value_key == key).then(|| entry.stamp = stamp)
    })?;
    if stamped != entries.len() {
        return None;
    }
    layout.literal("}, \"counters\": {}, \"removed\": {")?;
    let values = entries.len();
    layout.sorted_members(WrittenText::key, written_stamp, |key, stamp| {
        entries.push((
            key,
            Entry {
                stamp,
                body: EntryBody::Tombstone,
            },
        ));
        Some(())
    })?;
    layout.literal("}}")?;
    layout.end()?;
    if entries.len() > values {
        entries.sort_unstable_by_key(|&(key, _)| key);
        if entries.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
    }
    let covered = |stamp: Stamp| replaced.is_some_and(|watermark| stamp < watermark);
    if entries.iter().any(|(_, entry)| covered(entry.stamp)) {
        return None;
    }
    Some(WrittenLayout { replaced, entries })
}

/// A doc's text read by [`read_written_layout`]: its entries, borrowed from the text.
pub(crate) struct WrittenLayout<'a> {
    replaced: Option<Stamp>,
    entries: Vec<(&'a str, Entry<'a>)>,
}

impl<'a> WrittenLayout<'a> {
    pub(crate) fn replaced(&self) -> Option<Stamp> {
        self.replaced
    }

    /// Each entry's value text, `None` for a tombstone (as [`super::DocView::parse_visiting_values`]
    /// hands them over).
    pub(crate) fn values(&self) -> impl Iterator<Item = Option<&'a str>> + '_ {
        self.entries.iter().map(|(_, entry)| match entry.body {
            EntryBody::Value(json) => Some(json),
            EntryBody::Tombstone | EntryBody::Counter(_) => None,
        })
    }

    /// Appends the binary form to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        super::binary::encode_entries_into(self.replaced, self.entries.iter().copied(), out);
    }
}

/// A canonical JSON scalar other than `null`, as written: a string as [`WrittenText::key`]
/// reads it, a number, `true` or `false`.
fn written_scalar<'a>(layout: &mut WrittenText<'a>) -> Option<&'a str> {
    let token = if layout.next_is(b'"') {
        layout.string_token()?
    } else {
        layout.bare_token()?
    };
    (token != "null" && json::is_canonical_json(token)).then_some(token)
}

/// `[<hlc>, "<node>"]` as written.
fn written_stamp(layout: &mut WrittenText<'_>) -> Option<Stamp> {
    layout.literal("[")?;
    let hlc = layout.integer()?;
    layout.literal(", ")?;
    let node = layout.node()?;
    layout.literal("]")?;
    Some(Stamp::new(hlc, node))
}

impl std::str::FromStr for Doc {
    type Err = TextError;

    /// Same as [`Doc::from_text`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Doc::from_text(text)
    }
}

impl fmt::Display for Doc {
    /// The canonical text form (see [`Doc::to_text`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// The text form of a watermark and entries in key order (see the module docs): what
/// [`Doc::to_text`] writes, and [`DocView::to_text`] without building the doc.
pub(super) fn write_text<'e>(
    out: &mut String,
    replaced: Option<Stamp>,
    entries: impl Iterator<Item = (&'e str, Entry<'e>)> + Clone,
) {
    out.push_str("{\"value\": ");
    write_plain_object(out, entries.clone().map(|(key, entry)| (key, entry.json())));
    out.push_str(", \"replaced\": ");
    match replaced {
        None => out.push_str("null"),
        Some(stamp) => write_stamp(out, stamp),
    }
    let is_tombstone = |entry: &Entry<'_>| matches!(entry.body, EntryBody::Tombstone);
    out.push_str(", \"stamps\": ");
    write_section(
        out,
        entries.clone().filter(|(_, entry)| !is_tombstone(entry)),
        |out, entry| write_stamp(out, entry.stamp),
    );
    out.push_str(", \"counters\": ");
    write_section(
        out,
        entries.clone().filter_map(|(key, entry)| match entry.body {
            EntryBody::Counter(counter) => Some((key, counter)),
            _ => None,
        }),
        write_counter,
    );
    out.push_str(", \"removed\": ");
    write_section(out, entries.filter(|(_, entry)| is_tombstone(entry)), |out, entry| {
        write_stamp(out, entry.stamp)
    });
    out.push('}');
}

/// `{"<key>": <item>, ...}`.
fn write_section<'a, T>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a str, T)>,
    write_item: impl Fn(&mut String, T),
) {
    out.push('{');
    for (i, (key, item)) in entries.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json::write_string(out, key);
        out.push_str(": ");
        write_item(out, item);
    }
    out.push('}');
}

/// `[<hlc>, "<node>"]`.
fn write_stamp(out: &mut String, stamp: Stamp) {
    out.push('[');
    // Writing to a String cannot fail.
    let _ = write_integer(out, i128::from(stamp.hlc));
    out.push_str(", \"");
    let _ = stamp.node.write_text(out);
    out.push_str("\"]");
}

/// `{"base": <number>, "nodes": {"<node>": [<inc>, <dec>], ...}}`.
fn write_counter(out: &mut String, counter: CounterRef<'_>) {
    match counter {
        CounterRef::Decoded(counter) => write_counter_parts(
            out,
            &counter.base,
            counter.sums.iter().map(|(node, sums)| (node, &sums.inc, &sums.dec)),
        ),
        CounterRef::Text(counter) => write_counter_parts(
            out,
            counter.base,
            counter.slots.iter().map(|slot| (&slot.node, slot.inc, slot.dec)),
        ),
    }
}

/// `{"base": <base>, "nodes": {"<node>": [<inc>, <dec>], ...}}`.
fn write_counter_parts<'n, D: fmt::Display>(
    out: &mut String,
    base: D,
    nodes: impl Iterator<Item = (&'n NodeId, D, D)>,
) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{{\"base\": {base}, \"nodes\": {{");
    for (i, (node, inc, dec)) in nodes.enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{separator}\"{node}\": [{inc}, {dec}]");
    }
    out.push_str("}}");
}

/// A value's canonical text and the offset where it starts.
fn read_located_value(reader: &mut JsonReader<'_>) -> Result<(String, usize), TextError> {
    reader.peek_token();
    let at = reader.offset();
    Ok((read_json_value(reader)?, at))
}

/// `[<hlc>, "<node>"]`.
fn read_stamp(reader: &mut JsonReader<'_>) -> Result<Stamp, TextError> {
    reader.expect(b'[', "'[' starting a [hlc, \"node\"] stamp")?;
    let number = reader.number(HLC)?;
    let hlc = number.to_u64().ok_or(TextError::InvalidNumber {
        offset: number.offset,
        expected: HLC,
    })?;
    reader.expect(b',', "',' (a stamp is [hlc, \"node\"])")?;
    reader.peek_token();
    let node_at = reader.offset();
    let node: NodeId = reader
        .string()?
        .parse()
        .map_err(|error| TextError::InvalidNodeId { offset: node_at, error })?;
    reader.expect(b']', "']' (a stamp is [hlc, \"node\"])")?;
    Ok(Stamp::new(hlc, node))
}

/// A counter's entry in `counters`, before it is joined with its stamp.
struct CounterText {
    base: Decimal,
    sums: Vec<(NodeId, Decimal, Decimal)>,
}

/// `{"base": <number>, "nodes": {...}}`, in any order.
fn read_counter(reader: &mut JsonReader<'_>) -> Result<CounterText, TextError> {
    let mut base = None;
    let mut sums = None;
    let mut object = reader.begin_object("'{' starting a counter object")?;
    while let Some((key, offset)) = reader.next_key(&mut object)? {
        let duplicate = || TextError::DuplicateKey {
            offset,
            key: excerpt(&key),
        };
        match &*key {
            "base" if base.is_some() => return Err(duplicate()),
            "base" => base = Some(read_decimal(reader, BASE, |_| true)?),
            "nodes" if sums.is_some() => return Err(duplicate()),
            "nodes" => {
                sums = Some(read_node_pairs(
                    reader,
                    |reader| read_decimal(reader, SUM, |sum| !sum.is_negative()),
                    Decimal::is_zero,
                )?);
            }
            _ => {
                return Err(TextError::UnknownKey {
                    offset,
                    key: excerpt(&key),
                    expected: "\"base\" or \"nodes\"",
                })
            }
        }
    }
    Ok(CounterText {
        base: base.ok_or(TextError::MissingKey { key: "base" })?,
        sums: sums.ok_or(TextError::MissingKey { key: "nodes" })?,
    })
}

/// A JSON number as a decimal within the limits, accepted by `allowed`.
fn read_decimal(
    reader: &mut JsonReader<'_>,
    expected: &'static str,
    allowed: impl Fn(&Decimal) -> bool,
) -> Result<Decimal, TextError> {
    let number = reader.number(expected)?;
    number
        .text
        .parse::<Decimal>()
        .ok()
        .filter(allowed)
        .ok_or(TextError::InvalidNumber {
            offset: number.offset,
            expected,
        })
}

type Section<T> = BTreeMap<String, (T, usize)>;

/// Joins the sections into a doc, checking they agree (see the module docs).
fn assemble(
    value: Section<(String, usize)>,
    replaced: Option<Stamp>,
    mut stamps: Section<Stamp>,
    mut counters: Section<CounterText>,
    removed: Section<Stamp>,
) -> Result<Doc, TextError> {
    let inconsistent = |offset, key: &str, problem| TextError::Inconsistent {
        offset,
        key: excerpt(key),
        problem,
    };
    let covered = |stamp: Stamp| replaced.is_some_and(|watermark| stamp < watermark);
    const COVERED: &str = "is stamped before \"replaced\" (replacing the record removed it)";
    let mut properties = BTreeMap::new();
    for (key, ((json, json_at), key_at)) in value {
        if json == "null" {
            return Err(inconsistent(
                key_at,
                &key,
                "is null in \"value\" (removed properties belong in \"removed\")",
            ));
        }
        let Some((stamp, stamp_at)) = stamps.remove(&key) else {
            return Err(inconsistent(key_at, &key, "is in \"value\" but not in \"stamps\""));
        };
        if covered(stamp) {
            return Err(inconsistent(stamp_at, &key, COVERED));
        }
        let property = match counters.remove(&key) {
            None => Property::Value { json, stamp },
            Some((text, _)) => {
                let counter = CounterProperty {
                    base: text.base,
                    stamp,
                    sums: text
                        .sums
                        .into_iter()
                        .map(|(node, inc, dec)| (node, NodeSums { inc, dec }))
                        .collect(),
                };
                let computed = counter.value();
                let stated = if json::is_number(&json) {
                    Decimal::parse_with_integer_limit(&json, VALUE_INTEGER_DIGITS).ok()
                } else {
                    None
                };
                if stated.as_ref() != Some(&computed) {
                    return Err(TextError::DecimalMismatch {
                        offset: json_at,
                        stated: excerpt(&json),
                        computed: excerpt(&computed.to_string()),
                    });
                }
                Property::Counter(counter)
            }
        };
        properties.insert(key, property);
    }
    if let Some((key, (_, offset))) = stamps.iter().next() {
        return Err(inconsistent(*offset, key, "is in \"stamps\" but not in \"value\""));
    }
    if let Some((key, (_, offset))) = counters.iter().next() {
        return Err(inconsistent(*offset, key, "is in \"counters\" but not in \"value\""));
    }
    for (key, (stamp, offset)) in removed {
        if properties.contains_key(&key) {
            return Err(inconsistent(offset, &key, "is both in \"value\" and in \"removed\""));
        }
        if covered(stamp) {
            return Err(inconsistent(offset, &key, COVERED));
        }
        properties.insert(key, Property::Tombstone { stamp });
    }
    Ok(Doc { replaced, properties })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, dec, node, rich_doc};
    use super::*;

    const EMPTY: &str = r#"{"value": {}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}}"#;

    #[test]
    fn empty_doc() {
        assert_eq!(Doc::new().to_text(), EMPTY);
        assert_eq!(Doc::from_text(EMPTY), Ok(Doc::new()));
    }

    #[test]
    fn exact_layout() {
        let mut doc = Doc::new();
        doc.put(r#"{"name": "x", "n": 5}"#, at(10, 1)).expect("put");
        doc.add("n", &dec("-1.5"), node(2)).expect("add");
        doc.remove("gone", at(11, 1)).expect("remove");
        let (n1, n2) = (node(1), node(2));
        let text = format!(
            concat!(
                r#"{{"value": {{"n": 3.5, "name": "x"}}, "replaced": [10, "{n1}"], "#,
                r#""stamps": {{"n": [10, "{n1}"], "name": [10, "{n1}"]}}, "#,
                r#""counters": {{"n": {{"base": 5, "nodes": {{"{n2}": [0, 1.5]}}}}}}, "#,
                r#""removed": {{"gone": [11, "{n1}"]}}}}"#
            ),
            n1 = n1,
            n2 = n2
        );
        assert_eq!(doc.to_text(), text);
        assert_eq!(doc.to_string(), text);
        assert_eq!(Doc::from_text(&text).as_ref(), Ok(&doc));
        assert_eq!(text.parse::<Doc>(), Ok(doc));
    }

    #[test]
    fn round_trip_of_every_kind_of_value() {
        let doc = rich_doc();
        let text = doc.to_text();
        let parsed = Doc::from_text(&text).expect("own text");
        assert_eq!(parsed, doc);
        assert_eq!(parsed.to_text(), text);
        assert_eq!(parsed.encode(), doc.encode());
    }

    #[test]
    fn lenient_about_layout_strict_about_content() {
        let mut doc = Doc::new();
        doc.patch(r#"{"a": [1, {"y": 2, "x": 1}], "c": 9}"#, at(7, 3))
            .expect("patch");
        doc.add("c", &dec("1"), node(4)).expect("add");
        let (n3, n4) = (node(3), node(4));
        let upper = n3.to_string().to_uppercase();
        let text = format!(
            "\n{{ \"removed\":{{}},\"counters\" : {{\"c\":{{\"nodes\":{{\"{n4}\":[1,0]}},\"base\":9.0}}}},\
             \"value\":{{\"c\":10.00,\"a\":[1,{{\"x\":1,\"y\":2}}]}},\t\"stamps\":{{\"c\":[7,\"{upper}\"],\
             \"a\":[7,\"{n3}\"]}}, \"replaced\" : null }}\r\n"
        );
        assert_eq!(Doc::from_text(&text), Ok(doc));
    }

    #[test]
    fn rejects_contradictions_and_malformed_text() {
        let (a, b) = (node(0xa), node(0xb));
        let stamp = format!("[5, \"{a}\"]");
        let doc = |value: &str, replaced: &str, stamps: &str, counters: &str, removed: &str| {
            format!(
                r#"{{"value": {{{value}}}, "replaced": {replaced}, "stamps": {{{stamps}}}, "counters": {{{counters}}}, "removed": {{{removed}}}}}"#
            )
        };
        let ok = doc(r#""k": 1"#, "null", &format!(r#""k": {stamp}"#), "", "");
        assert!(Doc::from_text(&ok).is_ok());
        let counter = |base: &str, nodes: &str| format!(r#""k": {{"base": {base}, "nodes": {{{nodes}}}}}"#);
        let k = format!(r#""k": {stamp}"#);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "expected '{' starting a doc object at offset 0"),
            ("[]".into(), "expected '{' starting a doc object"),
            (format!("{ok} x"), "expected end of input"),
            (
                ok.replace(r#""removed": {}"#, r#""removed": {}, "extra": 1"#),
                "unknown key \"extra\"",
            ),
            (ok.replace(r#", "removed": {}"#, ""), "missing required key \"removed\""),
            (
                ok.replace(r#""replaced": null"#, r#""replaced": null, "replaced": null"#),
                "duplicate key \"replaced\"",
            ),
            (doc(r#""k": 1, "k": 2"#, "null", &k, "", ""), "duplicate key \"k\""),
            (
                doc(r#""k": 1"#, "null", &format!("{k}, {k}"), "", ""),
                "duplicate key \"k\"",
            ),
            (
                doc(r#""k": 1"#, "null", "", "", ""),
                "is in \"value\" but not in \"stamps\"",
            ),
            (doc("", "null", &k, "", ""), "is in \"stamps\" but not in \"value\""),
            (doc(r#""k": null"#, "null", &k, "", ""), "is null in \"value\""),
            (
                doc(r#""k": 1"#, "null", &k, "", &k),
                "is both in \"value\" and in \"removed\"",
            ),
            (
                doc("", "null", "", &counter("1", ""), ""),
                "is in \"counters\" but not in \"value\"",
            ),
            (
                doc(r#""k": 2"#, "null", &k, &counter("1", ""), ""),
                "value 2 at offset 16 does not match its counter, which adds up to 1",
            ),
            (
                doc(r#""k": "1""#, "null", &k, &counter("1", ""), ""),
                "does not match its counter",
            ),
            (
                doc(r#""k": 1e99999"#, "null", &k, &counter("1", ""), ""),
                "does not match its counter",
            ),
            (
                doc(r#""k": 1"#, "null", &k, &counter("1", &format!(r#""{b}": [0, 0]"#)), ""),
                "is [0, 0]",
            ),
            (
                doc(
                    r#""k": 1"#,
                    "null",
                    &k,
                    &counter("1", &format!(r#""{b}": [-1, 1]"#)),
                    "",
                ),
                "expected a number ≥ 0",
            ),
            (
                doc(
                    r#""k": 1"#,
                    "null",
                    &k,
                    &counter("1", &format!(r#""{b}": [1, 1], "{b}": [2, 2]"#)),
                    "",
                ),
                "duplicate key",
            ),
            (
                doc(r#""k": 1"#, "null", &k, &counter("1", r#""nope": [1, 0]"#), ""),
                "invalid node id",
            ),
            (
                doc(r#""k": 1"#, "null", &k, &counter("1e1000", ""), ""),
                "expected a number with at most 1000 digits",
            ),
            (
                doc(r#""k": 1"#, "null", &k, r#""k": {"base": 1}"#, ""),
                "missing required key \"nodes\"",
            ),
            (
                doc(r#""k": 1"#, "null", &k, r#""k": {"nodes": {}}"#, ""),
                "missing required key \"base\"",
            ),
            (
                doc(r#""k": 1"#, "null", &k, r#""k": {"base": 1, "nodes": {}, "x": 0}"#, ""),
                "unknown key \"x\"",
            ),
            (
                doc(
                    r#""k": 1"#,
                    "null",
                    &k,
                    r#""k": {"base": 1, "base": 1, "nodes": {}}"#,
                    "",
                ),
                "duplicate key \"base\"",
            ),
            (
                doc(r#""k": 1"#, &format!("[6, \"{a}\"]"), &k, "", ""),
                "is stamped before \"replaced\"",
            ),
            (
                doc("", &format!("[6, \"{a}\"]"), "", "", &k),
                "is stamped before \"replaced\"",
            ),
            (doc(r#""k": 1"#, "[6]", &k, "", ""), "expected ','"),
            (
                doc(r#""k": 1"#, "null", &format!(r#""k": [-1, "{a}"]"#), "", ""),
                "expected an hlc",
            ),
            (
                doc(r#""k": 1"#, "null", &format!(r#""k": [1.5, "{a}"]"#), "", ""),
                "expected an hlc",
            ),
            (doc(r#""k": 1"#, "null", r#""k": [1, "x"]"#, "", ""), "invalid node id"),
            (
                doc(r#""k": 1"#, "null", &format!(r#""k": [1, "{a}", 2]"#), "", ""),
                "expected ']'",
            ),
            (doc(r#""k": [1,]"#, "null", &k, "", ""), "expected a JSON value"),
            (
                doc(r#""k": {"x": 1, "x": 2}"#, "null", &k, "", ""),
                "duplicate key \"x\"",
            ),
            (doc(r#""k\u0000": 1"#, "null", &k, "", ""), "\\u0000"),
            (doc(r#""k": "\u0000""#, "null", &k, "", ""), "\\u0000"),
            (doc(r#""k": "\ud800""#, "null", &k, "", ""), "low surrogate"),
            (doc("", "nul", "", "", ""), "null or a [hlc, \"node\"] stamp"),
        ];
        for (text, message) in cases {
            let error = Doc::from_text(&text).expect_err(&text);
            assert!(
                error.to_string().contains(message),
                "{text}\n  got: {error}\n  expected: {message}"
            );
        }
    }

    #[test]
    fn written_layout_is_read_without_building_the_doc() {
        let mut doc = Doc::new();
        doc.put(r#"{"id": 4218009092, "name": "x \u00e9", "ok": true}"#, at(10, 1))
            .expect("put");
        doc.remove("gone", at(11, 2)).expect("remove");
        doc.remove("a", at(12, 2)).expect("remove");
        let text = doc.to_text();
        let layout = read_written_layout(&text).expect("the written layout");
        assert_eq!(layout.replaced(), doc.replaced);
        assert!(layout.entries.iter().copied().eq(doc.entries()));
        assert_eq!(Doc::encode_text(&text), Ok(doc.encode()));
        // What the shortcut leaves to the general reader: counters, containers, other layouts.
        let mut counted = doc.clone();
        counted.add("id", &dec("1"), node(3)).expect("add");
        let mut nested = Doc::new();
        nested.patch(r#"{"a": [1]}"#, at(1, 1)).expect("patch");
        for other in [
            counted.to_text(),
            nested.to_text(),
            format!("{text} "),
            text.replace(": ", ":"),
        ] {
            assert!(read_written_layout(&other).is_none(), "{other}");
            assert_eq!(Doc::encode_text(&other), Doc::from_text(&other).map(|doc| doc.encode()));
        }
    }

    #[test]
    fn messages_quote_long_input_briefly() {
        let a = node(0xa);
        let long = "k".repeat(10_000);
        let text = format!(
            r#"{{"value": {{}}, "replaced": null, "stamps": {{"{long}": [1, "{a}"]}}, "counters": {{}}, "removed": {{}}}}"#
        );
        let error = Doc::from_text(&text).expect_err("inconsistent");
        assert!(error.to_string().len() < 200, "{error}");
    }
}
