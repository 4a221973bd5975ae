//! Writing with serde_json's serializer in the core's layout: the serde counterparts of
//! `Doc::to_text`, `Doc::to_json` (also through public API only, each value a `RawValue`) and
//! `PnCounter::to_text`.

use std::io;

use crdt_core::{CounterEntry, CounterProperty, Doc, NodeId, PnCounter, Property, Stamp};
use serde::ser::{Serialize, SerializeMap, SerializeStruct, SerializeTuple, Serializer};
use serde_json::value::RawValue;

/// The struct name that makes serde_json's serializer write a string's text as raw JSON (what
/// `RawValue`'s own `Serialize` uses; serde_json keeps the constant private).
const RAW_TOKEN: &str = "$serde_json::private::RawValue";

/// `jsonb`'s spacing: `", "` between members and elements, `": "` after keys. serde_json's
/// own escaping is already `jsonb`'s (`\"`, `\\`, `\b \f \n \r \t`, `\u00XX` lowercase).
struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `value` as text through serde_json with [`Spaced`].
fn to_spaced_string<T: Serialize + ?Sized>(value: &T, capacity: usize) -> String {
    let mut serializer = serde_json::Serializer::with_formatter(Vec::with_capacity(capacity), Spaced);
    value.serialize(&mut serializer).expect("writing to a Vec cannot fail");
    String::from_utf8(serializer.into_inner()).expect("serde_json writes UTF-8")
}

/// JSON text written as is (a stored value is canonical already; `RawValue` would parse it
/// again to be built).
struct Raw<'a>(&'a str);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut raw = serializer.serialize_struct(RAW_TOKEN, 1)?;
        raw.serialize_field(RAW_TOKEN, self.0)?;
        raw.end()
    }
}

/// A node id as a JSON string.
struct NodeText(NodeId);

impl Serialize for NodeText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// `[<hlc>, "<node>"]`.
struct StampText(Stamp);

impl Serialize for StampText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.0.hlc)?;
        tuple.serialize_element(&NodeText(self.0.node))?;
        tuple.end()
    }
}

/// The plain object (what `Doc::to_json` writes).
struct PlainObject<'a>(&'a Doc);

impl Serialize for PlainObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, property) in self.0.properties() {
            if let Some(json) = property.json() {
                map.serialize_entry(key, &Raw(&json))?;
            }
        }
        map.end()
    }
}

/// One section of the text form: the properties `pick` gives an item for.
struct Section<'a, T, F: Fn(&'a Property) -> Option<T>> {
    doc: &'a Doc,
    pick: F,
}

impl<'a, T: Serialize, F: Fn(&'a Property) -> Option<T>> Serialize for Section<'a, T, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, property) in self.doc.properties() {
            if let Some(item) = (self.pick)(property) {
                map.serialize_entry(key, &item)?;
            }
        }
        map.end()
    }
}

/// `{"base": <number>, "nodes": {"<node>": [<inc>, <dec>], ...}}`.
struct CounterPropertyText<'a>(&'a CounterProperty);

impl Serialize for CounterPropertyText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Nodes<'a>(&'a CounterProperty);
        impl Serialize for Nodes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                for (node, sums) in self.0.sums() {
                    let (inc, dec) = (sums.inc.to_string(), sums.dec.to_string());
                    map.serialize_entry(&NodeText(node), &(Raw(&inc), Raw(&dec)))?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("base", &Raw(&self.0.base().to_string()))?;
        map.serialize_entry("nodes", &Nodes(self.0))?;
        map.end()
    }
}

/// The doc's text form (what `Doc::to_text` writes).
struct DocText<'a>(&'a Doc);

impl Serialize for DocText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("value", &PlainObject(doc))?;
        map.serialize_entry("replaced", &doc.replaced().map(StampText))?;
        let stamps = Section {
            doc,
            pick: |p: &Property| (!matches!(p, Property::Tombstone { .. })).then(|| StampText(p.stamp())),
        };
        map.serialize_entry("stamps", &stamps)?;
        let counters = Section {
            doc,
            pick: |p: &Property| match p {
                Property::Counter(counter) => Some(CounterPropertyText(counter)),
                _ => None,
            },
        };
        map.serialize_entry("counters", &counters)?;
        let removed = Section {
            doc,
            pick: |p: &Property| matches!(p, Property::Tombstone { .. }).then(|| StampText(p.stamp())),
        };
        map.serialize_entry("removed", &removed)?;
        map.end()
    }
}

/// A counter's text form (what `PnCounter::to_text` writes).
struct CounterTextForm<'a>(&'a PnCounter);

impl Serialize for CounterTextForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Nodes<'a>(&'a [CounterEntry]);
        impl Serialize for Nodes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for entry in self.0 {
                    map.serialize_entry(&NodeText(entry.node), &(entry.inc, entry.dec))?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("value", &self.0.value())?;
        map.serialize_entry("nodes", &Nodes(self.0.entries()))?;
        map.end()
    }
}

pub(crate) fn serde_doc_text(doc: &Doc) -> String {
    to_spaced_string(&DocText(doc), 128)
}

pub(crate) fn serde_doc_json(doc: &Doc) -> String {
    to_spaced_string(&PlainObject(doc), 64)
}

/// The plain object with public API only: each value made a `RawValue` (which parses it to
/// check it) instead of [`Raw`].
pub(crate) fn serde_doc_json_checked(doc: &Doc) -> String {
    struct Checked<'a>(&'a Doc);
    impl Serialize for Checked<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            for (key, property) in self.0.properties() {
                if let Some(json) = property.json() {
                    let raw = RawValue::from_string(json.into_owned()).map_err(serde::ser::Error::custom)?;
                    map.serialize_entry(key, &raw)?;
                }
            }
            map.end()
        }
    }
    to_spaced_string(&Checked(doc), 64)
}

pub(crate) fn serde_counter_text(counter: &PnCounter) -> String {
    to_spaced_string(&CounterTextForm(counter), 32 + 64 * counter.len())
}
