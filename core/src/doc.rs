//! `crdt.doc`: a record of properties merged per property, the HarperDB record (docs/design.md, "Doc").
//!
//! State: property name → a value (canonical JSON text, see [`crate::json`]) with the stamp
//! of its write, a tombstone (the stamp of its removal), or a counter property (a base number
//! set at a stamp plus per-node increment and decrement sums, exact decimals); and a record
//! level *replace watermark*: every property stamped before it is gone.
//!
//! Merge, per property: the larger stamp wins; at equal stamps a counter beats a value or a
//! tombstone (it was built on that very write) and two counters on the same base add up per
//! node by the larger of each sum. A counter on an older base loses with all its increments:
//! a set wins over increments it had not seen. Then the watermark drops what it covers. Every
//! write (`patch`, `put`, `remove`) is applied *as* a merge with a state holding only that
//! write, so there is one rule for local writes and for replication.
//!
//! Forms: binary ([`DocView`] reads it in place, [`Doc::decode`] fully) in `doc/binary.rs`,
//! text (what `pg_dump` and text replication carry) in `doc/text_form.rs`.

mod binary;
mod text_form;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

pub use binary::{merge_encoded, DocView};
pub(crate) use text_form::read_written_layout;

use crate::decimal::{Decimal, MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS};
use crate::hlc::Stamp;
use crate::json;
use crate::node::NodeId;
use crate::text::{excerpt, JsonReader, TextError};

/// A record of properties (see the module docs). Always canonical: equal states are equal
/// values and encode to identical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Doc {
    replaced: Option<Stamp>,
    /// Sorted by the UTF-8 bytes of the name (`String`'s order), as every form lists them.
    properties: BTreeMap<String, Property>,
}

/// One property's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    /// A value set by `patch` or `put`.
    Value {
        /// Canonical JSON text of any JSON value but `null`.
        json: String,
        /// The write's stamp.
        stamp: Stamp,
    },
    /// A removed property, kept so that older writes arriving later stay removed.
    Tombstone {
        /// The removal's stamp.
        stamp: Stamp,
    },
    /// A counter property.
    Counter(CounterProperty),
}

/// A counter property: the number last set (by `patch`/`put`, or 0) plus the increments made
/// on that base, per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterProperty {
    base: Decimal,
    /// The stamp of the write that set the base (the watermark or a tombstone's stamp for a
    /// counter started on nothing).
    stamp: Stamp,
    /// No node with both sums zero.
    sums: BTreeMap<NodeId, NodeSums>,
}

/// One node's increments to a counter property, both sums ≥ 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeSums {
    /// Sum of the node's positive amounts.
    pub inc: Decimal,
    /// Sum of the magnitudes of the node's negative amounts.
    pub dec: Decimal,
}

/// What a stamp listed by [`Doc::metadata`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StampKind {
    /// The record's replace watermark (no key).
    Replaced,
    /// A value.
    Value,
    /// A counter property (the stamp of its base).
    Counter,
    /// A removed property.
    Tombstone,
}

impl StampKind {
    /// `"replaced"`, `"value"`, `"counter"` or `"tombstone"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StampKind::Replaced => "replaced",
            StampKind::Value => "value",
            StampKind::Counter => "counter",
            StampKind::Tombstone => "tombstone",
        }
    }
}

impl fmt::Display for StampKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stamp of a doc, for inspection: the watermark (no key) or a property's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampInfo<'a> {
    /// The property name; `None` for the watermark.
    pub key: Option<&'a str>,
    /// What the stamp belongs to.
    pub kind: StampKind,
    /// The stamp.
    pub stamp: Stamp,
}

/// Why a doc operation was refused. The doc is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocError {
    /// `patch`/`put` got valid JSON that is not an object (reported as `22023`).
    NotAnObject {
        /// What it is instead, e.g. `"an array"`.
        found: &'static str,
    },
    /// `add` on a property holding something other than a number (reported as `22023`).
    NotANumber {
        /// The property (shortened if long).
        key: String,
    },
    /// `add` would store a number beyond the limits of [`crate::decimal`] (reported as
    /// `22003`): the amount, the base taken over from a JSON number, or the node's new sum.
    Overflow {
        /// The property (shortened if long).
        key: String,
    },
    /// A property name containing U+0000, which no PostgreSQL text can carry (so it can only
    /// come from a caller bug; reported as `22023`).
    InvalidKey {
        /// The name (shortened if long).
        key: String,
    },
    /// Malformed JSON text (reported as `22P02`).
    Text(TextError),
}

impl fmt::Display for DocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocError::NotAnObject { found } => write!(f, "expected a JSON object, got {found}"),
            DocError::NotANumber { key } => write!(
                f,
                "property {key:?} does not hold a number, so it cannot be added to"
            ),
            DocError::Overflow { key } => write!(
                f,
                "counter property {key:?} out of range: amounts, bases and per-node sums are limited to {MAX_INTEGER_DIGITS} digits before and {MAX_FRACTION_DIGITS} after the decimal point"
            ),
            DocError::InvalidKey { key } => write!(
                f,
                "property name {key:?} contains U+0000, which PostgreSQL text cannot hold"
            ),
            DocError::Text(error) => write!(f, "invalid JSON: {error}"),
        }
    }
}

impl std::error::Error for DocError {}

impl From<TextError> for DocError {
    fn from(error: TextError) -> Self {
        DocError::Text(error)
    }
}

impl Property {
    /// The stamp that orders this entry: the write's, the removal's, or the counter's base.
    pub fn stamp(&self) -> Stamp {
        match self {
            Property::Value { stamp, .. } | Property::Tombstone { stamp } => *stamp,
            Property::Counter(counter) => counter.stamp,
        }
    }

    /// What kind of entry this is.
    pub fn kind(&self) -> StampKind {
        match self {
            Property::Value { .. } => StampKind::Value,
            Property::Tombstone { .. } => StampKind::Tombstone,
            Property::Counter(_) => StampKind::Counter,
        }
    }

    /// The JSON text a reader sees: the value, the counter's value as a plain decimal, or
    /// `None` for a removed property.
    pub fn json(&self) -> Option<Cow<'_, str>> {
        self.entry().json()
    }

    /// This entry by reference, as the binary merge also holds entries.
    fn entry(&self) -> Entry<'_> {
        Entry {
            stamp: self.stamp(),
            body: match self {
                Property::Value { json, .. } => EntryBody::Value(json),
                Property::Tombstone { .. } => EntryBody::Tombstone,
                Property::Counter(counter) => return counter.entry(),
            },
        }
    }

    /// The merge of one property, applied to the owned entry (the rule is [`resolve`]).
    fn merge(&mut self, other: &Property) {
        match resolve(self.entry(), other.entry()) {
            Resolution::Mine => {}
            Resolution::Theirs => *self = other.clone(),
            Resolution::CombinedCounters => {
                if let (Property::Counter(mine), Property::Counter(theirs)) = (self, other) {
                    mine.merge_same_base(theirs);
                }
            }
        }
    }
}

/// One property's entry by reference: what the owned doc and the binary merge both resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry<'a> {
    stamp: Stamp,
    body: EntryBody<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryBody<'a> {
    Value(&'a str),
    Tombstone,
    Counter(CounterRef<'a>),
}

/// A counter property as an entry refers to it: a doc's own, decoded, or one read in place from
/// an encoded doc (the binary merge's and the text output's), its numbers the doc's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CounterRef<'a> {
    Decoded(&'a CounterProperty),
    Text(&'a binary::CounterText<'a>),
}

impl CounterRef<'_> {
    /// Its value (as [`CounterProperty::value`]); `None` only for texts no decoder accepted.
    fn value(&self) -> Option<Decimal> {
        match self {
            CounterRef::Decoded(counter) => Some(counter.value()),
            // The base's stamp does not enter the value.
            CounterRef::Text(counter) => counter
                .to_property(Stamp::default())
                .ok()
                .map(|counter| counter.value()),
        }
    }
}

impl<'a> Entry<'a> {
    /// What a reader sees (as [`Property::json`]).
    fn json(&self) -> Option<Cow<'a, str>> {
        match self.body {
            EntryBody::Value(json) => Some(Cow::Borrowed(json)),
            EntryBody::Tombstone => None,
            EntryBody::Counter(counter) => counter.value().map(|value| Cow::Owned(value.to_string())),
        }
    }

    /// Which entry wins: the larger stamp, and at equal stamps a counter over a value over a
    /// tombstone. (Honest replicas never give one stamp to a value and a tombstone; ranking
    /// them anyway keeps merge commutative on any decodable state.)
    fn precedence(&self) -> (Stamp, u8) {
        let rank = match self.body {
            EntryBody::Tombstone => 0,
            EntryBody::Value(_) => 1,
            EntryBody::Counter(_) => 2,
        };
        (self.stamp, rank)
    }
}

/// The largest HLC of a watermark and entries (0 if there is none): the doc's, and the one
/// the binary form counts stamps down from.
fn max_hlc_of<'e>(replaced: Option<Stamp>, entries: impl Iterator<Item = (&'e str, Entry<'e>)>) -> u64 {
    entries
        .map(|(_, entry)| entry.stamp.hlc)
        .chain(replaced.map(|stamp| stamp.hlc))
        .max()
        .unwrap_or(0)
}

/// What merging two entries of one property gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Mine,
    Theirs,
    /// Two counters on the same base: per node the larger of each sum
    /// ([`CounterProperty::merge_same_base`]).
    CombinedCounters,
}

/// The merge rule of one property; the only place it is written down.
fn resolve(mine: Entry<'_>, theirs: Entry<'_>) -> Resolution {
    match mine.precedence().cmp(&theirs.precedence()) {
        std::cmp::Ordering::Less => Resolution::Theirs,
        std::cmp::Ordering::Greater => Resolution::Mine,
        std::cmp::Ordering::Equal => match (mine.body, theirs.body) {
            (EntryBody::Counter(_), EntryBody::Counter(_)) => Resolution::CombinedCounters,
            // Same stamp, different text only in forged states: pick one deterministically.
            (EntryBody::Value(mine), EntryBody::Value(theirs)) if theirs > mine => Resolution::Theirs,
            _ => Resolution::Mine,
        },
    }
}

impl CounterProperty {
    /// This counter as an entry, stamped with its base's stamp.
    fn entry(&self) -> Entry<'_> {
        Entry {
            stamp: self.stamp,
            body: EntryBody::Counter(CounterRef::Decoded(self)),
        }
    }

    /// A counter on `base` set at `stamp`, with no increments yet.
    fn new(base: Decimal, stamp: Stamp) -> Self {
        CounterProperty {
            base,
            stamp,
            sums: BTreeMap::new(),
        }
    }

    /// The number set last (or 0).
    pub fn base(&self) -> &Decimal {
        &self.base
    }

    /// The stamp of the write that set the base.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// The per-node sums, sorted by node.
    pub fn sums(&self) -> impl Iterator<Item = (NodeId, &NodeSums)> {
        self.sums.iter().map(|(node, sums)| (*node, sums))
    }

    /// base + Σinc − Σdec, exactly.
    pub fn value(&self) -> Decimal {
        self.sums
            .values()
            .fold(self.base.clone(), |value, sums| value.add(&sums.inc).sub(&sums.dec))
    }

    /// Adds `amount` to `node`'s sums; `false` (and no change) if the sum would leave the
    /// limits.
    fn add(&mut self, node: NodeId, amount: &Decimal) -> bool {
        if amount.is_zero() {
            return true;
        }
        let mut sums = self.sums.get(&node).cloned().unwrap_or_default();
        let sum = if amount.is_negative() {
            &mut sums.dec
        } else {
            &mut sums.inc
        };
        let grown = sum.add(&amount.abs());
        if !grown.is_within_limits() {
            return false;
        }
        *sum = grown;
        self.sums.insert(node, sums);
        true
    }

    /// Two counters on the same base stamp: per node, the larger of each sum (each only ever
    /// grows, so the larger is the later). The larger base only matters for forged states.
    fn merge_same_base(&mut self, other: &CounterProperty) {
        if other.base > self.base {
            self.base = other.base.clone();
        }
        for (node, theirs) in &other.sums {
            let mine = self.sums.entry(*node).or_default();
            if theirs.inc > mine.inc {
                mine.inc = theirs.inc.clone();
            }
            if theirs.dec > mine.dec {
                mine.dec = theirs.dec.clone();
            }
        }
    }
}

impl Doc {
    /// The empty doc: no properties, never replaced.
    pub fn new() -> Self {
        Doc::default()
    }

    /// Merges in values written with their stamps, as one write (the same rule as every other
    /// write: a stale stamp loses). Each JSON text must be canonical and not `null`.
    pub(crate) fn merge_values(&mut self, values: impl IntoIterator<Item = (String, String, Stamp)>) {
        let mut write = Doc::new();
        for (key, json, stamp) in values {
            write.properties.insert(key, Property::Value { json, stamp });
        }
        if !write.properties.is_empty() {
            self.merge(&write);
        }
    }

    /// PATCH (RFC 7386 at the top level): each key of `object_json` is set to its value with
    /// `stamp`; a `null` removes the key (a tombstone); keys not given are untouched. Nested
    /// objects are values, replaced whole. `stamp` should be fresh (above [`Doc::max_hlc`]);
    /// a write older than what it replaces loses, as it would in a merge.
    pub fn patch(&mut self, object_json: &str, stamp: Stamp) -> Result<(), DocError> {
        let mut write = Doc::new();
        for (key, (json, _)) in read_object(object_json)? {
            let property = if json == "null" {
                Property::Tombstone { stamp }
            } else {
                Property::Value { json, stamp }
            };
            write.properties.insert(key, property);
        }
        self.merge(&write);
        Ok(())
    }

    /// PUT: the whole record is replaced at `stamp`. The watermark moves to `stamp`, so every
    /// property stamped before it (here or, after merging, anywhere) is gone; the keys given
    /// are set with `stamp` (`null` ones are simply absent).
    pub fn put(&mut self, object_json: &str, stamp: Stamp) -> Result<(), DocError> {
        let mut write = Doc {
            replaced: Some(stamp),
            properties: BTreeMap::new(),
        };
        for (key, (json, _)) in read_object(object_json)? {
            if json != "null" {
                write.properties.insert(key, Property::Value { json, stamp });
            }
        }
        self.merge(&write);
        Ok(())
    }

    /// Removes `key` at `stamp` (a tombstone).
    pub fn remove(&mut self, key: &str, stamp: Stamp) -> Result<(), DocError> {
        check_key(key)?;
        let mut write = Doc::new();
        write.properties.insert(key.to_owned(), Property::Tombstone { stamp });
        self.merge(&write);
        Ok(())
    }

    /// Adds `amount` to the counter property `key` in `node`'s sums (HarperDB's `addTo`):
    /// a positive amount grows its increments, a negative one its decrements.
    ///
    /// A property holding a JSON number becomes a counter on that number (same stamp); a
    /// missing one a counter on 0 stamped with the watermark (or the least stamp); a removed
    /// one a counter on 0 with the tombstone's stamp. A non-number is [`DocError::NotANumber`];
    /// an amount, base or sum beyond the decimal limits is [`DocError::Overflow`].
    pub fn add(&mut self, key: &str, amount: &Decimal, node: NodeId) -> Result<(), DocError> {
        check_key(key)?;
        let overflow = || DocError::Overflow { key: excerpt(key) };
        if !amount.is_within_limits() {
            return Err(overflow());
        }
        let mut counter = match self.properties.get(key) {
            Some(Property::Counter(counter)) => counter.clone(),
            Some(Property::Value { json, stamp }) => {
                if !json::is_number(json) {
                    return Err(DocError::NotANumber { key: excerpt(key) });
                }
                let base: Decimal = json.parse().map_err(|_| overflow())?;
                CounterProperty::new(base, *stamp)
            }
            Some(Property::Tombstone { stamp }) => CounterProperty::new(Decimal::ZERO, *stamp),
            None => CounterProperty::new(Decimal::ZERO, self.replaced.unwrap_or_default()),
        };
        if !counter.add(node, amount) {
            return Err(overflow());
        }
        self.properties.insert(key.to_owned(), Property::Counter(counter));
        Ok(())
    }

    /// Merges `other` into `self`: the later watermark, and per property the winning entry
    /// (see the module docs); then drops what the watermark covers. Commutative,
    /// associative, idempotent; never fails.
    pub fn merge(&mut self, other: &Doc) {
        for (key, theirs) in &other.properties {
            match self.properties.get_mut(key) {
                Some(mine) => mine.merge(theirs),
                None => {
                    self.properties.insert(key.clone(), theirs.clone());
                }
            }
        }
        self.replaced = self.replaced.max(other.replaced);
        if let Some(watermark) = self.replaced {
            self.properties.retain(|_, p| p.stamp() >= watermark);
        }
    }

    /// The replace watermark: the stamp of the last `put`, if any.
    pub fn replaced(&self) -> Option<Stamp> {
        self.replaced
    }

    /// The largest HLC of any stamp in the doc (0 if none): a new write's stamp must be above
    /// it, and a value far ahead of the wall clock is worth a warning.
    pub fn max_hlc(&self) -> u64 {
        max_hlc_of(self.replaced, self.entries())
    }

    /// Every entry by reference, in key order (what the encoder writes).
    fn entries(&self) -> impl ExactSizeIterator<Item = (&str, Entry<'_>)> + Clone {
        self.properties
            .iter()
            .map(|(key, property)| (key.as_str(), property.entry()))
    }

    /// The entry of `key`, tombstones included.
    pub fn property(&self, key: &str) -> Option<&Property> {
        self.properties.get(key)
    }

    /// Every entry, tombstones included, sorted by key bytes.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &Property)> {
        self.properties.iter().map(|(key, p)| (key.as_str(), p))
    }

    /// `doc -> key`: the property's JSON text (a counter's value as a plain decimal); `None`
    /// if absent or removed.
    pub fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        self.properties.get(key).and_then(Property::json)
    }

    /// `doc ->> key`: a string property's unescaped text, any other property's JSON text.
    pub fn get_text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key).map(text_of)
    }

    /// The plain object, as canonical JSON text: every present property with its value.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64);
        write_plain_object(&mut out, self.entries().map(|(key, entry)| (key, entry.json())));
        out
    }

    /// Every stamp, for inspection: the watermark first (if any), then each property's, in
    /// key order.
    pub fn metadata(&self) -> impl Iterator<Item = StampInfo<'_>> {
        let watermark = self.replaced.map(|stamp| StampInfo {
            key: None,
            kind: StampKind::Replaced,
            stamp,
        });
        watermark.into_iter().chain(self.properties().map(|(key, p)| StampInfo {
            key: Some(key),
            kind: p.kind(),
            stamp: p.stamp(),
        }))
    }
}

/// `->>` of a JSON text: strings unescaped, anything else as is.
fn text_of(json: Cow<'_, str>) -> Cow<'_, str> {
    match json {
        Cow::Borrowed(text) => json::as_text(text),
        Cow::Owned(text) => Cow::Owned(json::as_text(&text).into_owned()),
    }
}

/// The plain object from `(key, JSON text or None if removed)` pairs in key order. Shared by
/// the owned doc and the in-place view so they can't drift apart.
fn write_plain_object<'a>(out: &mut String, entries: impl Iterator<Item = (&'a str, Option<Cow<'a, str>>)>) {
    out.push('{');
    let mut first = true;
    for (key, json) in entries {
        let Some(json) = json else { continue };
        if !first {
            out.push_str(", ");
        }
        first = false;
        json::write_string(out, key);
        out.push_str(": ");
        out.push_str(&json);
    }
    out.push('}');
}

/// Refuses a property name no PostgreSQL text (and so no form of the doc) can carry.
fn check_key(key: &str) -> Result<(), DocError> {
    if key.contains('\0') {
        return Err(DocError::InvalidKey { key: excerpt(key) });
    }
    Ok(())
}

/// The members of the JSON object `text`: name → (canonical value text, offset of the name).
/// Valid JSON of another kind is [`DocError::NotAnObject`]; anything else a text error.
fn read_object(text: &str) -> Result<BTreeMap<String, (String, usize)>, DocError> {
    let mut reader = JsonReader::new(text);
    if reader.peek_token() != Some(b'{') {
        let canonical = json::canonical_json(text)?;
        return Err(DocError::NotAnObject {
            found: json::kind_name(&canonical),
        });
    }
    let members = read_keyed(&mut reader, "'{' starting an object", read_json_value)?;
    reader.finish()?;
    Ok(members)
}

/// One JSON value in canonical text.
fn read_json_value(reader: &mut JsonReader<'_>) -> Result<String, TextError> {
    let mut json = String::new();
    json::read_canonical(reader, &mut json)?;
    Ok(json)
}

/// Reads an object whose members are property names, each value read by `read`: name →
/// (value, offset of the name). A name given twice is an error at its second occurrence.
fn read_keyed<T>(
    reader: &mut JsonReader<'_>,
    expected: &'static str,
    mut read: impl FnMut(&mut JsonReader<'_>) -> Result<T, TextError>,
) -> Result<BTreeMap<String, (T, usize)>, TextError> {
    let mut members = BTreeMap::new();
    let mut object = reader.begin_object(expected)?;
    while let Some((key, offset)) = reader.next_key(&mut object)? {
        if key.contains('\0') {
            return Err(reader.syntax_error(offset, "a key without \\u0000 (PostgreSQL text cannot hold it)"));
        }
        let value = read(reader)?;
        if members.contains_key(&*key) {
            return Err(TextError::DuplicateKey {
                offset,
                key: excerpt(&key),
            });
        }
        members.insert(key.into_owned(), (value, offset));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn node(n: u8) -> NodeId {
        NodeId::from_bytes([n; 16])
    }

    pub(super) fn at(hlc: u64, n: u8) -> Stamp {
        Stamp::new(hlc, node(n))
    }

    pub(super) fn dec(text: &str) -> Decimal {
        text.parse().expect(text)
    }

    /// A doc with every kind of entry and of JSON value: a watermark, values with escapes,
    /// unicode, big and fractional numbers, arrays and nested objects, tombstones, counters
    /// on several nodes (one started on a number, one on nothing, one on a tombstone).
    pub(super) fn rich_doc() -> Doc {
        let mut doc = Doc::new();
        doc.put(r#"{"old": 1, "kept": "from the put"}"#, at(1_000, 1))
            .expect("put");
        doc.patch(
            r#"{"s": "tab\there \"q\" \\ \/ \u00e9 \ud83d\ude00 \u0001 ☃", "n": 1.50,
                "big": 12345678901234567890123, "neg": -0.5e-3, "z": 0,
                "arr": [1, "two", [3, []], {"x": null, "b": false}, true, null],
                "obj": {"b": {"c": []}, "a": true, "": "", "é": 1E+2},
                "gone": null, "": "empty key", "é": "unicode key", "ctl\n": "\u001f"}"#,
            at(2_000, 2),
        )
        .expect("patch");
        doc.add("n", &dec("2.25"), node(3)).expect("add");
        doc.add("n", &dec("-1"), node(1)).expect("add");
        doc.add("n", &dec("0.000001"), node(2)).expect("add");
        doc.add("fresh", &dec("7"), node(2)).expect("add");
        doc.add("gone", &dec("-3"), node(4)).expect("add");
        doc.remove("old", at(3_000, 4)).expect("remove");
        doc.remove("never", at(3_001, 5)).expect("remove");
        doc
    }

    #[test]
    fn rich_doc_reads_as_expected() {
        let doc = rich_doc();
        assert_eq!(
            doc.to_json(),
            concat!(
                r#"{"": "empty key", "arr": [1, "two", [3, []], {"b": false, "x": null}, true, null], "#,
                r#""big": 12345678901234567890123, "ctl\n": "\u001f", "fresh": 7, "gone": -3, "#,
                r#""kept": "from the put", "n": 2.750001, "neg": -0.5e-3, "#,
                r#""obj": {"": "", "a": true, "b": {"c": []}, "é": 1E+2}, "#,
                "\"s\": \"tab\\there \\\"q\\\" \\\\ / é 😀 \\u0001 ☃\", ",
                r#""z": 0, "é": "unicode key"}"#
            )
        );
        assert_eq!(doc.get_text("s").as_deref(), Some("tab\there \"q\" \\ / é 😀 \u{1} ☃"));
        assert_eq!(doc.get_text("ctl\n").as_deref(), Some("\u{1f}"));
        assert_eq!(doc.get("fresh").as_deref(), Some("7"));
        assert_eq!(doc.replaced(), Some(at(1_000, 1)));
        assert_eq!(doc.max_hlc(), 3_001);
    }

    fn merged(a: &Doc, b: &Doc) -> Doc {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    /// Merges in both orders, checks they agree byte for byte, returns the result.
    fn converge(a: &Doc, b: &Doc) -> Doc {
        let ab = merged(a, b);
        let ba = merged(b, a);
        assert_eq!(ab.encode(), ba.encode());
        assert_eq!(ab, ba);
        ab
    }

    fn patched(json: &str, stamp: Stamp) -> Doc {
        let mut doc = Doc::new();
        doc.patch(json, stamp).expect(json);
        doc
    }

    #[test]
    fn inventory_case() {
        let (a, b) = (node(0xa), node(0xb));
        let start = patched(r#"{"name":"x","inventoryCount":5}"#, at(100, 0xa));
        let mut on_a = start.clone();
        let mut on_b = start.clone();
        on_a.patch(r#"{"name": "new name"}"#, at(200, 0xa)).expect("patch");
        on_a.add("inventoryCount", &dec("5"), a).expect("add");
        on_b.add("inventoryCount", &dec("-1"), b).expect("add");
        let both = converge(&on_a, &on_b);
        assert_eq!(both.to_json(), r#"{"inventoryCount": 9, "name": "new name"}"#);
        assert_eq!(both.get("inventoryCount").as_deref(), Some("9"));
        // Replaying any state changes nothing.
        assert_eq!(merged(&both, &on_a), both);
        assert_eq!(merged(&both, &start), both);
    }

    #[test]
    fn patch_sets_removes_and_leaves_the_rest() {
        let mut doc = patched(r#"{"a": 1, "b": {"x": [1, 2]}, "c": "keep"}"#, at(1, 1));
        doc.patch(r#"{"a": null, "b": {"y": true}}"#, at(2, 1)).expect("patch");
        assert_eq!(doc.to_json(), r#"{"b": {"y": true}, "c": "keep"}"#);
        assert_eq!(doc.property("a"), Some(&Property::Tombstone { stamp: at(2, 1) }));
        assert_eq!(doc.get("a"), None);
        assert_eq!(doc.get("zzz"), None);
        // Patching nothing changes nothing; an older write loses.
        let before = doc.clone();
        doc.patch("{}", at(3, 1)).expect("empty patch");
        doc.patch(r#"{"c": "older"}"#, at(0, 9)).expect("older patch");
        assert_eq!(doc, before);
    }

    #[test]
    fn patch_and_put_refuse_non_objects_and_bad_json() {
        let mut doc = Doc::new();
        for (input, found) in [
            ("[1]", "an array"),
            ("\"s\"", "a string"),
            ("1.5", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ] {
            assert_eq!(
                doc.patch(input, at(1, 1)),
                Err(DocError::NotAnObject { found }),
                "{input}"
            );
            assert_eq!(doc.put(input, at(1, 1)), Err(DocError::NotAnObject { found }));
        }
        for bad in [
            "",
            "{",
            "{\"a\": 1",
            "{\"a\": 1} x",
            "[1,",
            "{\"a\": 1, \"a\": 2}",
            "nope",
        ] {
            assert!(matches!(doc.patch(bad, at(1, 1)), Err(DocError::Text(_))), "{bad:?}");
        }
        assert_eq!(doc, Doc::new());
        let err = doc.patch("[]", at(1, 1)).expect_err("array");
        assert_eq!(err.to_string(), "expected a JSON object, got an array");
    }

    #[test]
    fn same_property_on_two_nodes_later_stamp_wins_ties_by_node() {
        let on_a = patched(r#"{"p": "from a"}"#, at(10, 0xa));
        let on_b = patched(r#"{"p": "from b"}"#, at(11, 0xb));
        assert_eq!(converge(&on_a, &on_b).get("p").as_deref(), Some("\"from b\""));
        // Equal HLCs: the larger node id wins, on both.
        let on_a = patched(r#"{"p": "from a"}"#, at(10, 0xa));
        let on_b = patched(r#"{"p": "from b"}"#, at(10, 0x0b));
        let on_c = patched(r#"{"p": "from c"}"#, at(10, 0xc));
        assert_eq!(converge(&on_a, &on_b).get("p").as_deref(), Some("\"from b\""));
        assert_eq!(converge(&on_a, &on_c).get("p").as_deref(), Some("\"from c\""));
        // A removal competes like any write.
        let mut removed = on_a.clone();
        removed.remove("p", at(12, 0xa)).expect("remove");
        assert_eq!(converge(&removed, &on_b).get("p"), None);
    }

    #[test]
    fn put_drops_older_properties_everywhere_and_keeps_newer_ones() {
        let start = patched(r#"{"a": 1, "b": 2}"#, at(10, 1));
        // Node 1 replaces the record; node 2 concurrently (earlier stamp) patches c.
        let mut on_1 = start.clone();
        on_1.put(r#"{"a": 100, "gone": null}"#, at(20, 1)).expect("put");
        assert_eq!(on_1.to_json(), r#"{"a": 100}"#);
        assert_eq!(on_1.replaced(), Some(at(20, 1)));
        let mut on_2 = start.clone();
        on_2.patch(r#"{"c": 3}"#, at(15, 2)).expect("patch");
        let both = converge(&on_1, &on_2);
        assert_eq!(both.to_json(), r#"{"a": 100}"#);
        assert_eq!(
            both.properties().count(),
            1,
            "older entries are dropped, not tombstoned"
        );
        // A patch on top of the put survives, here and after merging.
        let mut later = on_2.clone();
        later.patch(r#"{"d": 4}"#, at(25, 2)).expect("patch");
        let all = converge(&both, &later);
        assert_eq!(all.to_json(), r#"{"a": 100, "d": 4}"#);
        // An older put loses to a newer one.
        let mut old_put = start.clone();
        old_put.put(r#"{"z": 0}"#, at(18, 3)).expect("put");
        assert_eq!(converge(&all, &old_put), all);
    }

    #[test]
    fn a_set_wins_over_increments_it_had_not_seen_and_keeps_later_ones() {
        let (a, b) = (node(0xa), node(0xb));
        let start = patched(r#"{"n": 5}"#, at(10, 0xa));
        // B adds 3 on base 5; A, not having seen it, sets n to 100 and then adds 1.
        let mut on_b = start.clone();
        on_b.add("n", &dec("3"), b).expect("add");
        let mut on_a = start.clone();
        on_a.patch(r#"{"n": 100}"#, at(20, 0xa)).expect("set");
        on_a.add("n", &dec("1"), a).expect("add");
        let both = converge(&on_a, &on_b);
        assert_eq!(both.get("n").as_deref(), Some("101"));
        // B, having seen the set, adds again: that one counts.
        let mut on_b = both.clone();
        on_b.add("n", &dec("-2.5"), b).expect("add");
        let all = converge(&on_b, &on_a);
        assert_eq!(all.get("n").as_deref(), Some("98.5"));
        // A set without later adds is just a value again.
        let mut reset = all.clone();
        reset.patch(r#"{"n": 0}"#, at(30, 0xb)).expect("set");
        assert_eq!(converge(&reset, &all).get("n").as_deref(), Some("0"));
    }

    #[test]
    fn add_starts_counters_on_missing_removed_and_numeric_properties() {
        let (a, b) = (node(0xa), node(0xb));
        // Missing, never replaced: base 0 at the least stamp, shared by every node.
        let mut on_a = Doc::new();
        on_a.add("m", &dec("2"), a).expect("add");
        let mut on_b = Doc::new();
        on_b.add("m", &dec("3"), b).expect("add");
        let both = converge(&on_a, &on_b);
        assert_eq!(both.get("m").as_deref(), Some("5"));
        match both.property("m") {
            Some(Property::Counter(c)) => {
                assert_eq!(c.stamp(), Stamp::default());
                assert_eq!(c.base(), &Decimal::ZERO);
                assert_eq!(c.sums().count(), 2);
            }
            other => panic!("{other:?}"),
        }
        // Missing after a put: based on the watermark, so the put doesn't drop it.
        let mut doc = Doc::new();
        doc.put(r#"{"x": 1}"#, at(50, 0xa)).expect("put");
        doc.add("m", &dec("1"), a).expect("add");
        assert_eq!(doc.property("m").map(Property::stamp), Some(at(50, 0xa)));
        assert_eq!(merged(&doc, &doc).get("m").as_deref(), Some("1"));
        // Removed: base 0 at the tombstone's stamp, so it beats that tombstone.
        let mut removed = patched(r#"{"r": null}"#, at(60, 0xb));
        let tombstone = removed.clone();
        removed.add("r", &dec("-4"), a).expect("add");
        assert_eq!(converge(&removed, &tombstone).get("r").as_deref(), Some("-4"));
        // A number value: base is the number, at the value's stamp (exact decimal).
        let mut numeric = patched(r#"{"v": 1.50, "big": 12345678901234567890123}"#, at(70, 0xb));
        numeric.add("v", &dec("0.25"), a).expect("add");
        numeric.add("big", &dec("1"), a).expect("add");
        assert_eq!(numeric.get("v").as_deref(), Some("1.75"));
        assert_eq!(numeric.get("big").as_deref(), Some("12345678901234567890124"));
        assert_eq!(numeric.property("v").map(Property::stamp), Some(at(70, 0xb)));
        // Adding zero still makes a counter (value normalized).
        numeric.patch(r#"{"z": 2.50}"#, at(71, 0xb)).expect("patch");
        numeric.add("z", &Decimal::ZERO, a).expect("add");
        assert_eq!(numeric.get("z").as_deref(), Some("2.5"));
        assert_eq!(numeric.property("z").map(Property::kind), Some(StampKind::Counter));
    }

    #[test]
    fn add_refuses_non_numbers_and_out_of_range() {
        let a = node(0xa);
        let mut doc = patched(
            r#"{"s": "5", "o": {}, "t": true, "huge": 1e1000, "ok": 1e999}"#,
            at(1, 1),
        );
        let before = doc.clone();
        for key in ["s", "o", "t"] {
            assert_eq!(
                doc.add(key, &dec("1"), a),
                Err(DocError::NotANumber { key: key.into() })
            );
        }
        assert_eq!(
            doc.add("huge", &dec("1"), a),
            Err(DocError::Overflow { key: "huge".into() })
        );
        assert_eq!(doc, before, "refused adds change nothing");
        let max = dec(&"9".repeat(MAX_INTEGER_DIGITS));
        doc.add("ok", &max, a).expect("within limits");
        let grown = doc.clone();
        assert_eq!(doc.add("ok", &max, a), Err(DocError::Overflow { key: "ok".into() }));
        assert_eq!(doc, grown);
        // Decrements have their own sum.
        doc.add("ok", &max.neg(), a).expect("dec sum");
        let tiny = dec(&format!("0.{}1", "0".repeat(MAX_FRACTION_DIGITS - 1)));
        doc.add("ok", &tiny, a).expect("fraction within limits");
        // Amounts out of range are refused before anything else (only sums can make them).
        let too_big = max.add(&Decimal::from(1));
        assert_eq!(
            doc.add("new", &too_big, a),
            Err(DocError::Overflow { key: "new".into() })
        );
        assert_eq!(doc.get("new"), None);
        assert_eq!(
            doc.add("a\0b", &dec("1"), a),
            Err(DocError::InvalidKey { key: "a\0b".into() })
        );
        assert!(matches!(doc.remove("\0", at(9, 1)), Err(DocError::InvalidKey { .. })));
        for error in [
            DocError::NotANumber { key: "s".into() },
            DocError::Overflow { key: "ok".into() },
        ] {
            assert!(error.to_string().contains('"'), "{error}");
        }
    }

    #[test]
    fn equal_stamp_counter_beats_value_and_same_base_counters_add_up() {
        let (a, b) = (node(0xa), node(0xb));
        let value = patched(r#"{"n": 10}"#, at(5, 1));
        let mut c1 = value.clone();
        c1.add("n", &dec("1"), a).expect("add");
        c1.add("n", &dec("-3"), a).expect("add");
        let mut c2 = value.clone();
        c2.add("n", &dec("7"), b).expect("add");
        let all = converge(&converge(&c1, &value), &c2);
        assert_eq!(all.get("n").as_deref(), Some("15"));
        // Per node the larger sums are kept, so an older state of the same node adds nothing.
        let mut c1_later = c1.clone();
        c1_later.add("n", &dec("1"), a).expect("add");
        assert_eq!(converge(&all, &c1_later).get("n").as_deref(), Some("16"));
    }

    #[test]
    fn metadata_and_max_hlc() {
        let mut doc = Doc::new();
        assert_eq!(doc.max_hlc(), 0);
        assert_eq!(doc.metadata().count(), 0);
        doc.put(r#"{"a": 1}"#, at(7, 1)).expect("put");
        doc.patch(r#"{"b": null}"#, at(9, 2)).expect("patch");
        doc.add("c", &dec("1"), node(3)).expect("add");
        let listed: Vec<_> = doc.metadata().map(|i| (i.key, i.kind.as_str(), i.stamp)).collect();
        assert_eq!(
            listed,
            [
                (None, "replaced", at(7, 1)),
                (Some("a"), "value", at(7, 1)),
                (Some("b"), "tombstone", at(9, 2)),
                (Some("c"), "counter", at(7, 1)),
            ]
        );
        assert_eq!(doc.max_hlc(), 9);
        assert_eq!(StampKind::Counter.to_string(), "counter");
    }

    #[test]
    fn reading_values_and_text() {
        let doc = patched(
            r#"{"s": "a\"b\n\u00e9", "n": 1.50, "o": {"k": [1, "x", null]}, "t": false}"#,
            at(1, 1),
        );
        assert_eq!(doc.get("s").as_deref(), Some(r#""a\"b\né""#));
        assert_eq!(doc.get_text("s").as_deref(), Some("a\"b\né"));
        assert_eq!(doc.get_text("n").as_deref(), Some("1.50"));
        assert_eq!(doc.get_text("o").as_deref(), Some(r#"{"k": [1, "x", null]}"#));
        assert_eq!(doc.get_text("t").as_deref(), Some("false"));
        assert_eq!(doc.get_text("missing"), None);
        assert_eq!(Doc::new().to_json(), "{}");
    }

    #[test]
    fn merge_laws_on_forged_equal_stamps() {
        // States honest replicas never produce (one stamp, different entries) still merge
        // the same way in every order.
        let s = at(5, 5);
        let docs = [
            patched(r#"{"k": 1}"#, s),
            patched(r#"{"k": 2}"#, s),
            patched(r#"{"k": null}"#, s),
            {
                let mut d = patched(r#"{"k": 3}"#, s);
                d.add("k", &dec("1"), node(1)).expect("add");
                d
            },
            {
                let mut d = patched(r#"{"k": 4}"#, s);
                d.add("k", &dec("2"), node(1)).expect("add");
                d
            },
        ];
        for x in &docs {
            assert_eq!(merged(x, x), *x);
            for y in &docs {
                converge(x, y);
                for z in &docs {
                    assert_eq!(merged(&merged(x, y), z), merged(x, &merged(y, z)));
                }
            }
        }
    }
}
