//! The pieces the serde readers of the text forms are built from: keyed sections (property
//! name → item, no name twice), a value's canonical text, stamps `[<hlc>, "<node>"]`, `replaced`,
//! the per-node `[<inc>, <dec>]` pairs, and a doc counter's `{"base": ..., "nodes": ...}`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use crdt_core::{Decimal, NodeId, Stamp};
use serde::de::{self, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

use crate::read_value::{nul, read_value, Key, Numbers};

/// What each member of a keyed section holds.
pub(crate) trait Item: Sized {
    fn read<'de, D: Deserializer<'de>>(deserializer: D, numbers: Numbers) -> Result<Self, D::Error>;
}

pub(crate) struct ItemSeed<T> {
    numbers: Numbers,
    item: PhantomData<T>,
}

impl<T> ItemSeed<T> {
    pub(crate) fn new(numbers: Numbers) -> Self {
        ItemSeed {
            numbers,
            item: PhantomData,
        }
    }
}

impl<'de, T: Item> DeserializeSeed<'de> for ItemSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::read(deserializer, self.numbers)
    }
}

/// An object whose keys are property names: name → item; a name given twice is an error.
pub(crate) struct Keyed<T>(pub(crate) ItemSeed<T>);

impl<'de, T: Item> DeserializeSeed<'de> for Keyed<T> {
    type Value = BTreeMap<String, T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Item> Visitor<'de> for Keyed<T> {
    type Value = BTreeMap<String, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = BTreeMap::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if key.contains('\0') {
                return Err(nul());
            }
            let item = map.next_value_seed(ItemSeed::<T>::new(self.0.numbers))?;
            if members.contains_key(&*key) {
                return Err(A::Error::custom(format_args!("duplicate key {key:?}")));
            }
            members.insert(key.into_owned(), item);
        }
        Ok(members)
    }
}

/// A value's canonical text.
pub(crate) struct Canonical(pub(crate) String);

impl Item for Canonical {
    fn read<'de, D: Deserializer<'de>>(deserializer: D, numbers: Numbers) -> Result<Self, D::Error> {
        read_value(deserializer, numbers).map(Canonical)
    }
}

/// A node id in a JSON string.
struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = NodeId;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeId, D::Error> {
        let text = deserializer.deserialize_str(Key)?;
        text.parse()
            .map_err(|error| D::Error::custom(format_args!("invalid node id: {error}")))
    }
}

/// `[<hlc>, "<node>"]`.
pub(crate) struct StampItem(pub(crate) Stamp);

impl Item for StampItem {
    fn read<'de, D: Deserializer<'de>>(deserializer: D, _: Numbers) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(StampVisitor).map(StampItem)
    }
}

struct StampVisitor;

impl<'de> Visitor<'de> for StampVisitor {
    type Value = Stamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [hlc, \"node\"] stamp")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stamp, A::Error> {
        let hlc: u64 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
        let node = seq
            .next_element_seed(NodeSeed)?
            .ok_or_else(|| A::Error::invalid_length(1, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(A::Error::invalid_length(3, &self));
        }
        Ok(Stamp::new(hlc, node))
    }
}

/// `null` or a stamp.
pub(crate) struct ReplacedSeed;

impl<'de> DeserializeSeed<'de> for ReplacedSeed {
    type Value = Option<Stamp>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ReplacedSeed {
    type Value = Option<Stamp>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null or a [hlc, \"node\"] stamp")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(StampVisitor).map(Some)
    }
}

/// What each sum of a per-node pair is: a doc counter's decimal or a `crdt.counter`'s `u64`.
pub(crate) trait Sum: Sized {
    fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
    fn is_zero(&self) -> bool;
}

/// A JSON number's text (as `arbitrary_precision` gives it).
fn number_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<serde_json::Number, D::Error> {
    <serde_json::Number as de::Deserialize>::deserialize(deserializer)
}

impl Sum for Decimal {
    fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = number_text(deserializer)?;
        number
            .as_str()
            .parse::<Decimal>()
            .ok()
            .filter(|sum| !sum.is_negative())
            .ok_or_else(|| {
                D::Error::custom("a number ≥ 0 with at most 1000 digits before and 1000 after the decimal point")
            })
    }

    fn is_zero(&self) -> bool {
        Decimal::is_zero(self)
    }
}

impl Sum for u64 {
    fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <u64 as de::Deserialize>::deserialize(deserializer)
    }

    fn is_zero(&self) -> bool {
        *self == 0
    }
}

/// `[<inc>, <dec>]`.
struct PairVisitor<T>(PhantomData<T>);

struct SumSeed<T>(PhantomData<T>);

impl<'de, T: Sum> DeserializeSeed<'de> for SumSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::read(deserializer)
    }
}

impl<'de, T: Sum> Visitor<'de> for PairVisitor<T> {
    type Value = (T, T);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an [inc, dec] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(T, T), A::Error> {
        let inc = seq
            .next_element_seed(SumSeed(PhantomData))?
            .ok_or_else(|| A::Error::invalid_length(0, &self))?;
        let dec = seq
            .next_element_seed(SumSeed(PhantomData))?
            .ok_or_else(|| A::Error::invalid_length(1, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(A::Error::invalid_length(3, &self));
        }
        Ok((inc, dec))
    }
}

struct PairSeed<T>(PhantomData<T>);

impl<'de, T: Sum> DeserializeSeed<'de> for PairSeed<T> {
    type Value = (T, T);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(T, T), D::Error> {
        deserializer.deserialize_seq(PairVisitor(PhantomData))
    }
}

/// `{"<node>": [<inc>, <dec>], ...}`: sorted by node; a node twice (in any spelling) or with
/// both sums zero is an error.
pub(crate) struct NodePairs<T>(pub(crate) PhantomData<T>);

impl<'de, T: Sum> DeserializeSeed<'de> for NodePairs<T> {
    type Value = Vec<(NodeId, T, T)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Sum> Visitor<'de> for NodePairs<T> {
    type Value = Vec<(NodeId, T, T)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the nodes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut listed: Vec<(NodeId, T, T)> = Vec::new();
        while let Some(node) = map.next_key_seed(NodeSeed)? {
            let (inc, dec) = map.next_value_seed(PairSeed::<T>(PhantomData))?;
            if inc.is_zero() && dec.is_zero() {
                return Err(A::Error::custom(format_args!("node {node} is [0, 0]")));
            }
            listed.push((node, inc, dec));
        }
        listed.sort_by_key(|entry| entry.0);
        if let Some(pair) = listed.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(A::Error::custom(format_args!("duplicate key \"{}\"", pair[1].0)));
        }
        Ok(listed)
    }
}

/// A doc counter's entry in `counters`.
pub(crate) struct CounterText {
    pub(crate) base: Decimal,
    pub(crate) sums: Vec<(NodeId, Decimal, Decimal)>,
}

impl Item for CounterText {
    fn read<'de, D: Deserializer<'de>>(deserializer: D, _: Numbers) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CounterTextVisitor)
    }
}

struct CounterTextVisitor;

impl<'de> Visitor<'de> for CounterTextVisitor {
    type Value = CounterText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a counter object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CounterText, A::Error> {
        let mut base = None;
        let mut sums = None;
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "base" if base.is_some() => return Err(A::Error::duplicate_field("base")),
                "base" => {
                    let number: serde_json::Number = map.next_value()?;
                    base = Some(number.as_str().parse::<Decimal>().map_err(|_| {
                        A::Error::custom("a number with at most 1000 digits before and 1000 after the decimal point")
                    })?);
                }
                "nodes" if sums.is_some() => return Err(A::Error::duplicate_field("nodes")),
                "nodes" => sums = Some(map.next_value_seed(NodePairs::<Decimal>(PhantomData))?),
                other => return Err(A::Error::unknown_field(other, &["base", "nodes"])),
            }
        }
        Ok(CounterText {
            base: base.ok_or_else(|| A::Error::missing_field("base"))?,
            sums: sums.ok_or_else(|| A::Error::missing_field("nodes"))?,
        })
    }
}
