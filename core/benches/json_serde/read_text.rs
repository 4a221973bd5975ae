//! The doc and counter text forms read whole by serde_json, the serde counterparts of
//! `Doc::from_text` ([`serde_doc`], both readers) and `PnCounter::from_text`
//! ([`serde_counter`]), and the comparison of a serde-read doc with the core's `Doc`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use crdt_core::{json, CounterEntry, Decimal, Doc, NodeId, Property, Stamp};
use serde::de::{self, Deserializer, Error as _, MapAccess, Visitor};

use crate::read_parts::{Canonical, CounterText, ItemSeed, Keyed, NodePairs, ReplacedSeed, StampItem};
use crate::read_value::{Key, Numbers};

/// The five sections of a doc's text.
#[derive(Default)]
struct Sections {
    value: Option<BTreeMap<String, Canonical>>,
    replaced: Option<Option<Stamp>>,
    stamps: Option<BTreeMap<String, StampItem>>,
    counters: Option<BTreeMap<String, CounterText>>,
    removed: Option<BTreeMap<String, StampItem>>,
}

struct SectionsVisitor(Numbers);

const SECTIONS: &[&str] = &["value", "replaced", "stamps", "counters", "removed"];

/// Stores a section, refusing a second one.
fn section<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de> Visitor<'de> for SectionsVisitor {
    type Value = Sections;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a doc object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sections, A::Error> {
        let numbers = self.0;
        let mut s = Sections::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "value" => {
                    let value = map.next_value_seed(Keyed(ItemSeed::new(numbers)))?;
                    section(&mut s.value, "value", value)?;
                }
                "replaced" => {
                    let replaced = map.next_value_seed(ReplacedSeed)?;
                    section(&mut s.replaced, "replaced", replaced)?;
                }
                "stamps" => {
                    let stamps = map.next_value_seed(Keyed(ItemSeed::new(numbers)))?;
                    section(&mut s.stamps, "stamps", stamps)?;
                }
                "counters" => {
                    let counters = map.next_value_seed(Keyed(ItemSeed::new(numbers)))?;
                    section(&mut s.counters, "counters", counters)?;
                }
                "removed" => {
                    let removed = map.next_value_seed(Keyed(ItemSeed::new(numbers)))?;
                    section(&mut s.removed, "removed", removed)?;
                }
                other => return Err(A::Error::unknown_field(other, SECTIONS)),
            }
        }
        Ok(s)
    }
}

/// A doc as the serde reader builds it: what `Doc` holds, in the bench's own types (`Doc`
/// can't be built from parts outside the core).
#[derive(Debug, PartialEq)]
pub(crate) struct SerdeDoc {
    replaced: Option<Stamp>,
    pub(crate) properties: BTreeMap<String, SerdeProperty>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum SerdeProperty {
    Value {
        json: String,
        stamp: Stamp,
    },
    Tombstone {
        stamp: Stamp,
    },
    Counter {
        base: Decimal,
        stamp: Stamp,
        sums: BTreeMap<NodeId, (Decimal, Decimal)>,
    },
}

/// The serde counterpart of [`Doc::from_text`].
pub(crate) fn serde_doc(text: &str, numbers: Numbers) -> Result<SerdeDoc, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let sections = deserializer.deserialize_map(SectionsVisitor(numbers))?;
    deserializer.end()?;
    assemble(sections)
}

/// Joins the sections, checking they agree: the core's `assemble`, on the bench's types.
fn assemble(s: Sections) -> Result<SerdeDoc, serde_json::Error> {
    let missing = serde_json::Error::missing_field;
    let value = s.value.ok_or_else(|| missing("value"))?;
    let replaced = s.replaced.ok_or_else(|| missing("replaced"))?;
    let mut stamps = s.stamps.ok_or_else(|| missing("stamps"))?;
    let mut counters = s.counters.ok_or_else(|| missing("counters"))?;
    let removed = s.removed.ok_or_else(|| missing("removed"))?;
    let inconsistent = |key: &str, problem: &str| serde_json::Error::custom(format_args!("key {key:?} {problem}"));
    let covered = |stamp: Stamp| replaced.is_some_and(|watermark| stamp < watermark);
    let mut properties = BTreeMap::new();
    for (key, Canonical(json)) in value {
        if json == "null" {
            return Err(inconsistent(&key, "is null in \"value\""));
        }
        let Some(StampItem(stamp)) = stamps.remove(&key) else {
            return Err(inconsistent(&key, "is in \"value\" but not in \"stamps\""));
        };
        if covered(stamp) {
            return Err(inconsistent(&key, "is stamped before \"replaced\""));
        }
        let property = match counters.remove(&key) {
            None => SerdeProperty::Value { json, stamp },
            Some(counter) => {
                let sums: BTreeMap<NodeId, (Decimal, Decimal)> = counter
                    .sums
                    .into_iter()
                    .map(|(node, inc, dec)| (node, (inc, dec)))
                    .collect();
                let computed = sums
                    .values()
                    .fold(counter.base.clone(), |value, (inc, dec)| value.add(inc).sub(dec));
                if !json::is_number(&json) || !stated_matches(&json, &computed) {
                    return Err(inconsistent(&key, "does not match its counter"));
                }
                SerdeProperty::Counter {
                    base: counter.base,
                    stamp,
                    sums,
                }
            }
        };
        properties.insert(key, property);
    }
    if let Some(key) = stamps.keys().next() {
        return Err(inconsistent(key, "is in \"stamps\" but not in \"value\""));
    }
    if let Some(key) = counters.keys().next() {
        return Err(inconsistent(key, "is in \"counters\" but not in \"value\""));
    }
    for (key, StampItem(stamp)) in removed {
        if properties.contains_key(&key) {
            return Err(inconsistent(&key, "is both in \"value\" and in \"removed\""));
        }
        if covered(stamp) {
            return Err(inconsistent(&key, "is stamped before \"replaced\""));
        }
        properties.insert(key, SerdeProperty::Tombstone { stamp });
    }
    Ok(SerdeDoc { replaced, properties })
}

/// Whether a counter's stated value (a JSON number) is `computed`. The core allows the stated
/// value 20 more integer digits than a stored decimal (a limit private to it); a text past the
/// public parser's limits is compared as text (without an exponent: leading and trailing zeros
/// dropped), which covers the saved fuzz input at those limits.
fn stated_matches(json: &str, computed: &Decimal) -> bool {
    if let Ok(stated) = json.parse::<Decimal>() {
        return stated == *computed;
    }
    if json.contains(['e', 'E']) {
        return false;
    }
    let (negative, magnitude) = json.strip_prefix('-').map_or((false, json), |rest| (true, rest));
    let (integer, fraction) = magnitude.split_once('.').unwrap_or((magnitude, ""));
    let integer = integer.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let mut plain = String::from(if negative { "-" } else { "" });
    plain.push_str(if integer.is_empty() { "0" } else { integer });
    if !fraction.is_empty() {
        plain.push('.');
        plain.push_str(fraction);
    }
    plain == computed.to_string()
}

/// Whether the serde reader's doc is `doc`.
pub(crate) fn same_doc(serde: &SerdeDoc, doc: &Doc) -> bool {
    same_doc_with(serde, doc, |a, b| a == b)
}

/// Whether the serde reader's doc is `doc`, values compared by `same_json`.
pub(crate) fn same_doc_with(serde: &SerdeDoc, doc: &Doc, same_json: impl Fn(&str, &str) -> bool) -> bool {
    serde.replaced == doc.replaced()
        && serde.properties.len() == doc.properties().count()
        && serde
            .properties
            .iter()
            .zip(doc.properties())
            .all(|((key, mine), (their_key, theirs))| {
                key == their_key
                    && match (mine, theirs) {
                        (SerdeProperty::Value { json, stamp }, Property::Value { json: j, stamp: s }) => {
                            same_json(json, j) && stamp == s
                        }
                        (SerdeProperty::Tombstone { stamp }, Property::Tombstone { stamp: s }) => stamp == s,
                        (SerdeProperty::Counter { base, stamp, sums }, Property::Counter(c)) => {
                            base == c.base()
                                && *stamp == c.stamp()
                                && sums.len() == c.sums().count()
                                && sums
                                    .iter()
                                    .zip(c.sums())
                                    .all(|((n, (inc, dec)), (m, s))| *n == m && *inc == s.inc && *dec == s.dec)
                        }
                        _ => false,
                    }
            })
}

/// The counter text form: `{"value": <integer>, "nodes": {"<node>": [<inc>, <dec>], ...}}`.
struct CounterVisitor;

impl<'de> Visitor<'de> for CounterVisitor {
    type Value = Vec<CounterEntry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a counter object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut stated: Option<serde_json::Number> = None;
        let mut nodes = None;
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "value" if stated.is_some() => return Err(A::Error::duplicate_field("value")),
                "value" => {
                    let number: serde_json::Number = map.next_value()?;
                    if number.as_str().contains(['.', 'e', 'E']) {
                        return Err(A::Error::custom("an integer value"));
                    }
                    stated = Some(number);
                }
                "nodes" if nodes.is_some() => return Err(A::Error::duplicate_field("nodes")),
                "nodes" => nodes = Some(map.next_value_seed(NodePairs::<u64>(PhantomData))?),
                other => return Err(A::Error::unknown_field(other, &["value", "nodes"])),
            }
        }
        let entries: Vec<CounterEntry> = nodes
            .ok_or_else(|| A::Error::missing_field("nodes"))?
            .into_iter()
            .map(|(node, inc, dec)| CounterEntry { node, inc, dec })
            .collect();
        if let Some(stated) = stated {
            let computed: i128 = entries.iter().map(|e| i128::from(e.inc) - i128::from(e.dec)).sum();
            if stated.as_str().parse::<i128>().ok() != Some(computed) {
                return Err(A::Error::custom(format_args!(
                    "\"value\" {stated} does not match the nodes, which add up to {computed}"
                )));
            }
        }
        Ok(entries)
    }
}

/// The serde counterpart of [`PnCounter::from_text`]: the counter's entries.
pub(crate) fn serde_counter(text: &str) -> Result<Vec<CounterEntry>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let entries = deserializer.deserialize_map(CounterVisitor)?;
    deserializer.end()?;
    Ok(entries)
}
