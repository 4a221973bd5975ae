//! The binary form of `crdt.doc` (on disk and send/recv), and reading it in place.
//!
//! Layout (varints are the canonical LEB128 of [`crate::codec`]):
//!
//! ```text
//! [version = 1]
//! [varint max_hlc]                  the largest hlc of any stamp below (0 if there is none)
//! [varint n] [n × 16-byte node id]  every node a stamp or counter names: sorted, each used
//! [varint r]                        the watermark: 0 = none, else node index + 1, then
//!     [varint max_hlc − hlc]
//! [varint m] m × property, strictly sorted by the bytes of the name:
//!     [varint len] [name, UTF-8]
//!     [varint 3 × node index + kind]     kind: 0 value, 1 tombstone, 2 counter
//!     [varint max_hlc − hlc]
//!     value:   [varint len] [canonical JSON text]
//!     counter: [varint len] [decimal base] [varint k] k × ([varint node index, increasing]
//!              [decimal inc] [decimal dec])
//! decimal: [varint len] [canonical plain decimal text]
//! ```
//!
//! Per property that is about 4 bytes beyond the name and the JSON text: stamps refer to the
//! node table by index, and HLCs count down from the doc's largest, so the stamps of one write
//! cost one byte each. Values and counters carry their length, so a reader looking for one
//! key skips the others without reading them.
//!
//! Decoding accepts exactly what the encoder writes (anything else could merge differently
//! from its canonical twin): every rule above is checked, and no count or length read from
//! the input is trusted before the bytes it describes are known to be there.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    max_hlc_of, resolve, text_of, write_plain_object, CounterProperty, CounterRef, Doc, Entry, EntryBody, NodeSums,
    Property, Resolution, StampInfo,
};
use crate::codec::{varint_len, write_varint, DecodeError, Reader, FORMAT_VERSION};
use crate::decimal::Decimal;
use crate::hlc::Stamp;
use crate::json;
use crate::node::NodeId;

/// Bytes of one node id in the node table.
const NODE_LEN: usize = 16;

/// The smallest property: an empty name, tag and hlc delta (a tombstone). Bounds how many
/// properties a buffer can hold before anything is allocated for them.
const MIN_PROPERTY_LEN: usize = 3;

/// The smallest counter slot: a node index and two one-digit decimals with their lengths.
const MIN_SLOT_LEN: usize = 5;

const KIND_VALUE: u64 = 0;
const KIND_TOMBSTONE: u64 = 1;
const KIND_COUNTER: u64 = 2;
const KINDS: u64 = 3;

/// Where the encoder's bytes go: a buffer, or a counter of their number. One encoder serves
/// both, so [`Doc::encoded_len`] can't disagree with [`Doc::encode`].
trait ByteSink {
    /// Appends raw bytes.
    fn put(&mut self, bytes: &[u8]);
    /// Appends a canonical varint.
    fn varint(&mut self, value: u64);
}

impl ByteSink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn varint(&mut self, value: u64) {
        write_varint(self, value);
    }
}

/// Counts bytes instead of writing them.
struct Measure(usize);

impl ByteSink for Measure {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn varint(&mut self, value: u64) {
        self.0 += varint_len(value);
    }
}

impl Doc {
    /// The binary form's size in bytes.
    pub fn encoded_len(&self) -> usize {
        let mut measure = Measure(0);
        write_entries(&Layout::of(self.replaced, self.entries()), self.entries(), &mut measure);
        measure.0
    }

    /// The binary form (on-disk payload and send/recv payload).
    pub fn encode(&self) -> Vec<u8> {
        encode_entries(self.replaced, self.entries())
    }

    /// Appends the binary form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_entries_into(self.replaced, self.entries(), out);
    }

    /// Reads the binary form, validating it completely (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Doc, DecodeError> {
        let mut decoder = PropertyDecoder::start(bytes, true)?;
        let mut properties = BTreeMap::new();
        while let Some(raw) = decoder.next_property()? {
            properties.insert(raw.key.to_owned(), raw.into_property()?);
        }
        decoder.finish()?;
        Ok(Doc {
            replaced: decoder.header.replaced,
            properties,
        })
    }
}

/// Appends the binary form of a watermark and entries in key order to `out`, in one pass (the
/// text input writes into a buffer it reuses, so sizing it first would only cost).
pub(super) fn encode_entries_into<'e>(
    replaced: Option<Stamp>,
    entries: impl ExactSizeIterator<Item = (&'e str, Entry<'e>)> + Clone,
    out: &mut Vec<u8>,
) {
    write_entries(&Layout::of(replaced, entries.clone()), entries, out);
}

/// The binary form of a watermark and entries in key order, sized exactly.
pub(super) fn encode_entries<'e>(
    replaced: Option<Stamp>,
    entries: impl ExactSizeIterator<Item = (&'e str, Entry<'e>)> + Clone,
) -> Vec<u8> {
    // The layout is worked out once for both passes.
    let layout = Layout::of(replaced, entries.clone());
    let mut measure = Measure(0);
    write_entries(&layout, entries.clone(), &mut measure);
    let mut out = Vec::with_capacity(measure.0);
    write_entries(&layout, entries, &mut out);
    out
}

impl crate::StoredForm for Doc {
    fn decode_stored(bytes: &[u8]) -> Result<Self, DecodeError> {
        Doc::decode(bytes)
    }
    fn validate_stored(bytes: &[u8]) -> Result<(), DecodeError> {
        DocView::parse(bytes).map(drop)
    }
    fn write_text_of_stored(bytes: &[u8], out: &mut String) -> Result<(), DecodeError> {
        DocView::parse(bytes).map(|view| view.write_text(out))
    }
    fn encode_text_into_stored(text: &str, out: &mut Vec<u8>) -> Result<(), crate::TextError> {
        Doc::encode_text_into(text, out)
    }
}

/// Merges two encoded docs into `out` (appended). Both inputs are validated completely first;
/// on error `out` is unchanged.
///
/// The merge runs on the bytes: the entries of both docs are walked in key order, each key
/// resolved by the rule of [`Property`], and the winners written out. Nothing is built but
/// the combination of two counters on the same base.
pub fn merge_encoded(a: &[u8], b: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let (a_replaced, a) = parse_entries(a)?;
    let (b_replaced, b) = parse_entries(b)?;
    let replaced = a_replaced.max(b_replaced);
    let mut merged: Vec<MergedEntry<'_>> = Vec::with_capacity(a.len() + b.len());
    let (mut mine, mut theirs) = (a.iter().peekable(), b.iter().peekable());
    loop {
        // The smaller key next; both sides' entries when they share it.
        let x = mine.next_if(|x| theirs.peek().is_none_or(|y| x.key <= y.key));
        let y = theirs.next_if(|y| x.is_none_or(|x| x.key == y.key));
        let next = match (x, y) {
            (Some(x), Some(y)) => match resolve(x.entry(), y.entry()) {
                Resolution::Mine => MergedEntry::Kept(x),
                Resolution::Theirs => MergedEntry::Kept(y),
                Resolution::CombinedCounters => match (&x.body, &y.body) {
                    (ParsedBody::Counter(m), ParsedBody::Counter(t)) => {
                        MergedEntry::Combined(x, Box::new(m.merge_same_base(t)))
                    }
                    _ => MergedEntry::Kept(x),
                },
            },
            (Some(only), None) | (None, Some(only)) => MergedEntry::Kept(only),
            (None, None) => break,
        };
        // The later watermark drops what it covers, as in [`Doc::merge`].
        if replaced.is_none_or(|watermark| next.entry().1.stamp >= watermark) {
            merged.push(next);
        }
    }
    let entries = merged.iter().map(MergedEntry::entry);
    write_entries(&Layout::of(replaced, entries.clone()), entries, out);
    Ok(())
}

/// An entry of a validated binary doc: name and value borrowed, a counter decoded.
struct ParsedEntry<'a> {
    key: &'a str,
    stamp: Stamp,
    body: ParsedBody<'a>,
}

enum ParsedBody<'a> {
    Value(&'a str),
    Tombstone,
    Counter(CounterText<'a>),
}

impl ParsedEntry<'_> {
    fn entry(&self) -> Entry<'_> {
        Entry {
            stamp: self.stamp,
            body: match &self.body {
                ParsedBody::Value(json) => EntryBody::Value(json),
                ParsedBody::Tombstone => EntryBody::Tombstone,
                ParsedBody::Counter(counter) => EntryBody::Counter(CounterRef::Text(counter)),
            },
        }
    }
}

/// One entry of a merge's result: one side's, or two counters combined.
enum MergedEntry<'e> {
    Kept(&'e ParsedEntry<'e>),
    /// The first side's entry (its key and stamp) with the two sides' counters combined;
    /// boxed, so every entry of the merged list stays two words wide.
    Combined(&'e ParsedEntry<'e>, Box<CounterText<'e>>),
}

impl MergedEntry<'_> {
    fn entry(&self) -> (&str, Entry<'_>) {
        match self {
            MergedEntry::Kept(parsed) => (parsed.key, parsed.entry()),
            MergedEntry::Combined(parsed, counter) => (
                parsed.key,
                Entry {
                    stamp: parsed.stamp,
                    body: EntryBody::Counter(CounterRef::Text(counter)),
                },
            ),
        }
    }
}

/// Validates a binary doc completely (as [`Doc::decode`]) and lists its entries.
fn parse_entries(bytes: &[u8]) -> Result<(Option<Stamp>, Vec<ParsedEntry<'_>>), DecodeError> {
    let mut decoder = PropertyDecoder::start(bytes, true)?;
    // The count was checked against the bytes present, so this allocation is bounded.
    let mut entries = Vec::with_capacity(decoder.header.count);
    while let Some(raw) = decoder.next_property()? {
        entries.push(raw.parsed()?);
    }
    decoder.finish()?;
    Ok((decoder.header.replaced, entries))
}

/// The sorted node table: every node named by a stamp or a counter slot.
fn node_table<'e>(
    replaced: Option<Stamp>,
    entries: impl ExactSizeIterator<Item = (&'e str, Entry<'e>)>,
) -> Vec<NodeId> {
    let mut nodes = Vec::with_capacity(entries.len() + 4);
    nodes.extend(replaced.map(|stamp| stamp.node));
    for (_, entry) in entries {
        nodes.push(entry.stamp.node);
        match entry.body {
            EntryBody::Counter(CounterRef::Decoded(counter)) => nodes.extend(counter.sums.keys().copied()),
            EntryBody::Counter(CounterRef::Text(counter)) => nodes.extend(counter.slots.iter().map(|slot| slot.node)),
            EntryBody::Value(_) | EntryBody::Tombstone => {}
        }
    }
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// What the encoder derives from a watermark and entries before writing them: the node table
/// and the largest hlc.
struct Layout {
    replaced: Option<Stamp>,
    nodes: Vec<NodeId>,
    max_hlc: u64,
}

impl Layout {
    fn of<'e>(replaced: Option<Stamp>, entries: impl ExactSizeIterator<Item = (&'e str, Entry<'e>)> + Clone) -> Layout {
        Layout {
            replaced,
            nodes: node_table(replaced, entries.clone()),
            max_hlc: max_hlc_of(replaced, entries),
        }
    }
}

/// The one encoder (see the module docs for the layout), of the entries `layout` was worked
/// out from, in key order.
fn write_entries<'e, S: ByteSink>(
    layout: &Layout,
    entries: impl ExactSizeIterator<Item = (&'e str, Entry<'e>)>,
    sink: &mut S,
) {
    let Layout {
        replaced,
        ref nodes,
        max_hlc,
    } = *layout;
    // Every node is in the table (it was built from these entries), so the search always hits.
    let index = |node: NodeId| nodes.binary_search(&node).unwrap_or_else(|at| at) as u64;
    sink.put(&[FORMAT_VERSION]);
    sink.varint(max_hlc);
    sink.varint(nodes.len() as u64);
    for node in nodes {
        sink.put(node.as_bytes());
    }
    match replaced {
        None => sink.varint(0),
        Some(stamp) => {
            sink.varint(index(stamp.node) + 1);
            sink.varint(max_hlc - stamp.hlc);
        }
    }
    sink.varint(entries.len() as u64);
    for (key, entry) in entries {
        sink.varint(key.len() as u64);
        sink.put(key.as_bytes());
        let kind = match entry.body {
            EntryBody::Value(_) => KIND_VALUE,
            EntryBody::Tombstone => KIND_TOMBSTONE,
            EntryBody::Counter(_) => KIND_COUNTER,
        };
        sink.varint(index(entry.stamp.node) * KINDS + kind);
        sink.varint(max_hlc - entry.stamp.hlc);
        match entry.body {
            EntryBody::Value(json) => {
                sink.varint(json.len() as u64);
                sink.put(json.as_bytes());
            }
            EntryBody::Tombstone => {}
            EntryBody::Counter(counter) => {
                let mut measure = Measure(0);
                write_counter_body(counter, &index, &mut measure);
                sink.varint(measure.0 as u64);
                write_counter_body(counter, &index, sink);
            }
        }
    }
}

fn write_counter_body<S: ByteSink>(counter: CounterRef<'_>, index: &impl Fn(NodeId) -> u64, sink: &mut S) {
    match counter {
        CounterRef::Decoded(counter) => {
            let slots = counter.sums.iter().map(|(node, sums)| (*node, &sums.inc, &sums.dec));
            write_counter_parts(&counter.base, slots, index, sink, write_decimal);
        }
        // The texts were read as canonical: written as they are, nothing formatted.
        CounterRef::Text(counter) => {
            let slots = counter.slots.iter().map(|slot| (slot.node, slot.inc, slot.dec));
            write_counter_parts(counter.base, slots, index, sink, write_decimal_text);
        }
    }
}

/// A counter's body from its base and its nodes' sums, in node order, each number written by
/// `write_number`.
fn write_counter_parts<D, S: ByteSink>(
    base: D,
    slots: impl ExactSizeIterator<Item = (NodeId, D, D)>,
    index: &impl Fn(NodeId) -> u64,
    sink: &mut S,
    write_number: impl Fn(D, &mut S),
) {
    write_number(base, sink);
    sink.varint(slots.len() as u64);
    for (node, inc, dec) in slots {
        sink.varint(index(node));
        write_number(inc, sink);
        write_number(dec, sink);
    }
}

fn write_decimal_text<S: ByteSink>(text: &str, sink: &mut S) {
    sink.varint(text.len() as u64);
    sink.put(text.as_bytes());
}

fn write_decimal<S: ByteSink>(value: &Decimal, sink: &mut S) {
    let mut length = Measure(0);
    // Neither sink fails, so neither `write!` can.
    let _ = write!(SinkText(&mut length), "{value}");
    sink.varint(length.0 as u64);
    let _ = write!(SinkText(sink), "{value}");
}

/// Formats text into a sink (no intermediate string).
struct SinkText<'s, S: ByteSink>(&'s mut S);

impl<S: ByteSink> std::fmt::Write for SinkText<'_, S> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.put(text.as_bytes());
        Ok(())
    }
}

/// The node table of an encoded doc.
#[derive(Debug, Clone, Copy)]
struct NodeTable<'a> {
    bytes: &'a [u8],
    /// Where it starts in the doc (for errors).
    offset: usize,
}

impl NodeTable<'_> {
    fn get(&self, index: u64) -> Option<NodeId> {
        let start = usize::try_from(index).ok()?.checked_mul(NODE_LEN)?;
        let id = self.bytes.get(start..start.checked_add(NODE_LEN)?)?;
        Some(NodeId::from_bytes(id.try_into().ok()?))
    }
}

/// What precedes the properties.
#[derive(Debug, Clone, Copy)]
struct Header<'a> {
    max_hlc: u64,
    nodes: NodeTable<'a>,
    replaced: Option<Stamp>,
    count: usize,
    /// Offset of the first property.
    properties_at: usize,
}

/// Whole-doc rules checked while decoding: every node used, `max_hlc` reached by a stamp.
#[derive(Debug)]
struct Checks {
    used: UsedNodes,
    saw_max: bool,
}

/// Which entries of the node table something used: bits for the usual few nodes (no
/// allocation per decode), flags beyond 64.
#[derive(Debug)]
enum UsedNodes {
    Few { count: usize, bits: u64 },
    Many(Vec<bool>),
}

impl UsedNodes {
    fn none_of(count: usize) -> UsedNodes {
        if count <= 64 {
            UsedNodes::Few { count, bits: 0 }
        } else {
            UsedNodes::Many(vec![false; count])
        }
    }

    fn first_unused(&self) -> Option<usize> {
        match self {
            UsedNodes::Few { count, bits } => Some((!bits).trailing_zeros() as usize).filter(|i| i < count),
            UsedNodes::Many(used) => used.iter().position(|used| !used),
        }
    }
}

impl Checks {
    fn use_node(&mut self, index: u64) {
        let Ok(index) = usize::try_from(index) else { return };
        match &mut self.used {
            UsedNodes::Few { count, bits } => {
                if index < *count {
                    *bits |= 1 << index;
                }
            }
            UsedNodes::Many(used) => {
                if let Some(used) = used.get_mut(index) {
                    *used = true;
                }
            }
        }
    }
}

/// A property as encoded: borrowed name and value, counter read on demand.
#[derive(Debug)]
struct RawProperty<'a> {
    key: &'a str,
    stamp: Stamp,
    body: RawBody<'a>,
}

#[derive(Debug)]
enum RawBody<'a> {
    Value(&'a str),
    Tombstone,
    Counter(CounterBody<'a>),
}

/// A counter's bytes, decoded when needed (already decoded when the decoder validated it).
#[derive(Debug)]
struct CounterBody<'a> {
    doc: &'a [u8],
    start: usize,
    end: usize,
    nodes: NodeTable<'a>,
    stamp: Stamp,
    decoded: Option<CounterText<'a>>,
}

impl<'a> CounterBody<'a> {
    fn decode(self) -> Result<CounterProperty, DecodeError> {
        let stamp = self.stamp;
        self.text()?.to_property(stamp)
    }

    fn text(self) -> Result<CounterText<'a>, DecodeError> {
        if let Some(counter) = self.decoded {
            return Ok(counter);
        }
        let mut reader = Reader::new(self.doc);
        reader.bytes(self.start)?;
        read_counter_text(&mut reader, self.end, &self.nodes, None)
    }
}

/// A counter property of an encoded doc read in place: its numbers are the doc's canonical
/// texts. The binary merge combines and writes counters in this form, so it parses and formats
/// no number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CounterText<'a> {
    pub(super) base: &'a str,
    /// One per node with a non-zero sum, in node order.
    pub(super) slots: Vec<CounterSlot<'a>>,
}

/// One node's sums in a [`CounterText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CounterSlot<'a> {
    pub(super) node: NodeId,
    pub(super) inc: &'a str,
    pub(super) dec: &'a str,
}

impl<'a> CounterText<'a> {
    /// The decoded counter, its base set at `stamp` (its texts were checked as canonical and
    /// within the limits when they were read, so they parse).
    pub(super) fn to_property(&self, stamp: Stamp) -> Result<CounterProperty, DecodeError> {
        let parse = |text: &str| {
            text.parse::<Decimal>().map_err(|_| DecodeError::Invalid {
                offset: 0,
                problem: "not a decimal within the limits",
            })
        };
        let mut sums = BTreeMap::new();
        for slot in &self.slots {
            sums.insert(
                slot.node,
                NodeSums {
                    inc: parse(slot.inc)?,
                    dec: parse(slot.dec)?,
                },
            );
        }
        Ok(CounterProperty {
            base: parse(self.base)?,
            stamp,
            sums,
        })
    }

    /// [`CounterProperty::merge_same_base`] on the texts: per node the larger of each sum (a
    /// node one side lacks has sums of zero there), and the larger base.
    fn merge_same_base(&self, other: &CounterText<'a>) -> CounterText<'a> {
        let larger = |mine: &'a str, theirs: &'a str| {
            if Decimal::cmp_canonical_text(theirs, mine).is_gt() {
                theirs
            } else {
                mine
            }
        };
        let mut slots = Vec::with_capacity(self.slots.len() + other.slots.len());
        let (mut mine, mut theirs) = (self.slots.iter().peekable(), other.slots.iter().peekable());
        loop {
            let x = mine.next_if(|x| theirs.peek().is_none_or(|y| x.node <= y.node));
            let y = theirs.next_if(|y| x.is_none_or(|x| x.node == y.node));
            slots.push(match (x, y) {
                (Some(x), Some(y)) => CounterSlot {
                    node: x.node,
                    inc: larger(x.inc, y.inc),
                    dec: larger(x.dec, y.dec),
                },
                (Some(only), None) | (None, Some(only)) => *only,
                (None, None) => break,
            });
        }
        CounterText {
            base: larger(self.base, other.base),
            slots,
        }
    }
}

impl<'a> RawProperty<'a> {
    fn kind(&self) -> super::StampKind {
        match self.body {
            RawBody::Value(_) => super::StampKind::Value,
            RawBody::Tombstone => super::StampKind::Tombstone,
            RawBody::Counter(_) => super::StampKind::Counter,
        }
    }

    /// What a reader sees (as [`Property::json`]).
    fn json(self) -> Option<Cow<'a, str>> {
        match self.body {
            RawBody::Value(json) => Some(Cow::Borrowed(json)),
            RawBody::Tombstone => None,
            RawBody::Counter(body) => body
                .decode()
                .ok()
                .map(|counter| Cow::Owned(counter.value().to_string())),
        }
    }

    fn parsed(self) -> Result<ParsedEntry<'a>, DecodeError> {
        let body = match self.body {
            RawBody::Value(json) => ParsedBody::Value(json),
            RawBody::Tombstone => ParsedBody::Tombstone,
            RawBody::Counter(counter) => ParsedBody::Counter(counter.text()?),
        };
        Ok(ParsedEntry {
            key: self.key,
            stamp: self.stamp,
            body,
        })
    }

    fn into_property(self) -> Result<Property, DecodeError> {
        Ok(match self.body {
            RawBody::Value(json) => Property::Value {
                json: json.to_owned(),
                stamp: self.stamp,
            },
            RawBody::Tombstone => Property::Tombstone { stamp: self.stamp },
            RawBody::Counter(body) => Property::Counter(body.decode()?),
        })
    }
}

/// The one decoder of the binary form. With checks it validates everything (used once per
/// input by [`Doc::decode`] and [`DocView::parse`]); without, it walks bytes already
/// validated, skipping values and counters by their lengths.
#[derive(Debug)]
struct PropertyDecoder<'a> {
    bytes: &'a [u8],
    reader: Reader<'a>,
    header: Header<'a>,
    left: usize,
    previous_key: Option<&'a [u8]>,
    checks: Option<Checks>,
}

impl<'a> PropertyDecoder<'a> {
    /// Reads and checks the header.
    fn start(bytes: &'a [u8], check: bool) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        reader.version()?;
        let max_hlc = reader.varint()?;
        let node_count = read_count(&mut reader, NODE_LEN)?;
        let nodes_at = reader.offset();
        // The count was checked against the bytes present, so this can't overflow.
        let table = reader.bytes(node_count * NODE_LEN)?;
        let ids = table.chunks_exact(NODE_LEN);
        if let Some(i) = ids.clone().zip(ids.skip(1)).position(|(a, b)| a >= b) {
            return Err(DecodeError::UnsortedEntries {
                offset: nodes_at + (i + 1) * NODE_LEN,
            });
        }
        let nodes = NodeTable {
            bytes: table,
            offset: nodes_at,
        };
        let mut checks = check.then(|| Checks {
            used: UsedNodes::none_of(node_count),
            saw_max: false,
        });
        let replaced_at = reader.offset();
        let replaced = match reader.varint()? {
            0 => None,
            tag => Some(read_stamp(
                &mut reader,
                &nodes,
                tag - 1,
                max_hlc,
                replaced_at,
                checks.as_mut(),
            )?),
        };
        let count = read_count(&mut reader, MIN_PROPERTY_LEN)?;
        let header = Header {
            max_hlc,
            nodes,
            replaced,
            count,
            properties_at: reader.offset(),
        };
        Ok(PropertyDecoder {
            bytes,
            reader,
            header,
            left: count,
            previous_key: None,
            checks,
        })
    }

    /// Walks the properties of bytes [`DocView::parse`] accepted, from a header it read.
    fn resume(bytes: &'a [u8], header: Header<'a>) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        reader.bytes(header.properties_at)?;
        Ok(PropertyDecoder {
            bytes,
            reader,
            header,
            left: header.count,
            previous_key: None,
            checks: None,
        })
    }

    /// The next property, `None` after the last.
    fn next_property(&mut self) -> Result<Option<RawProperty<'a>>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        let reader = &mut self.reader;
        let key_at = reader.offset();
        let key_bytes = read_len_prefixed(reader)?;
        let key = crate::codec::utf8(key_bytes).map_err(|_| DecodeError::Invalid {
            offset: key_at,
            problem: "property name is not valid UTF-8",
        })?;
        if key.contains('\0') {
            return Err(DecodeError::Invalid {
                offset: key_at,
                problem: "property name contains U+0000",
            });
        }
        if self.previous_key.is_some_and(|previous| previous >= key_bytes) {
            return Err(DecodeError::UnsortedEntries { offset: key_at });
        }
        let tag_at = reader.offset();
        let tag = reader.varint()?;
        let stamp = read_stamp(
            reader,
            &self.header.nodes,
            tag / KINDS,
            self.header.max_hlc,
            tag_at,
            self.checks.as_mut(),
        )?;
        if self.header.replaced.is_some_and(|watermark| stamp < watermark) {
            return Err(DecodeError::Invalid {
                offset: tag_at,
                problem: "property stamped before the record's replace watermark",
            });
        }
        let body_at = reader.offset();
        let body = match tag % KINDS {
            KIND_VALUE => {
                let json = crate::codec::utf8(read_len_prefixed(reader)?).map_err(|_| DecodeError::Invalid {
                    offset: body_at,
                    problem: "value is not valid UTF-8",
                })?;
                if self.checks.is_some() {
                    if json == "null" {
                        return Err(DecodeError::Invalid {
                            offset: body_at,
                            problem: "value is null (removed properties are tombstones)",
                        });
                    }
                    if !json::is_canonical_json(json) {
                        return Err(DecodeError::Invalid {
                            offset: body_at,
                            problem: "value is not canonical JSON text",
                        });
                    }
                }
                RawBody::Value(json)
            }
            KIND_TOMBSTONE => RawBody::Tombstone,
            _ => {
                let len = reader.varint()?;
                let start = reader.offset();
                let end = usize::try_from(len)
                    .ok()
                    .filter(|&len| len <= reader.remaining())
                    .map(|len| start + len)
                    .ok_or(DecodeError::UnexpectedEnd {
                        offset: start,
                        needed: usize::try_from(len).unwrap_or(usize::MAX),
                        available: reader.remaining(),
                    })?;
                let decoded = match self.checks.as_mut() {
                    Some(checks) => Some(read_counter_text(reader, end, &self.header.nodes, Some(checks))?),
                    None => {
                        reader.bytes(end - start)?;
                        None
                    }
                };
                RawBody::Counter(CounterBody {
                    doc: self.bytes,
                    start,
                    end,
                    nodes: self.header.nodes,
                    stamp,
                    decoded,
                })
            }
        };
        self.previous_key = Some(key_bytes);
        self.left -= 1;
        Ok(Some(RawProperty { key, stamp, body }))
    }

    /// After the last property: nothing may follow, and the whole-doc rules must hold.
    fn finish(&self) -> Result<(), DecodeError> {
        self.reader.finish()?;
        let Some(checks) = &self.checks else {
            return Ok(());
        };
        if let Some(unused) = checks.used.first_unused() {
            return Err(DecodeError::Invalid {
                offset: self.header.nodes.offset + unused * NODE_LEN,
                problem: "node table entry that no stamp or counter uses",
            });
        }
        let has_stamps = self.header.replaced.is_some() || self.header.count > 0;
        if has_stamps != checks.saw_max || (!has_stamps && self.header.max_hlc != 0) {
            return Err(DecodeError::Invalid {
                offset: 1,
                problem: "largest hlc is not the largest hlc of the stamps",
            });
        }
        Ok(())
    }
}

/// Reads an element count and checks the remaining bytes could hold that many elements of at
/// least `min_len` bytes, before anything is allocated for them.
fn read_count(reader: &mut Reader<'_>, min_len: usize) -> Result<usize, DecodeError> {
    let available = reader.remaining();
    read_count_within(reader, available, min_len)
}

fn read_count_within(reader: &mut Reader<'_>, available_after: usize, min_len: usize) -> Result<usize, DecodeError> {
    let offset = reader.offset();
    let count = reader.varint()?;
    // `available_after` was measured from before the count; what the count itself took is
    // not available to the elements.
    let max = available_after.saturating_sub(reader.offset() - offset) / min_len;
    usize::try_from(count)
        .ok()
        .filter(|&count| count <= max)
        .ok_or(DecodeError::CountTooLarge {
            offset,
            count,
            max: max as u64,
        })
}

/// A stamp whose node index is already read (`at` is its offset, for errors); the hlc delta
/// follows.
fn read_stamp(
    reader: &mut Reader<'_>,
    nodes: &NodeTable<'_>,
    index: u64,
    max_hlc: u64,
    at: usize,
    checks: Option<&mut Checks>,
) -> Result<Stamp, DecodeError> {
    let node = nodes.get(index).ok_or(DecodeError::Invalid {
        offset: at,
        problem: "node index beyond the node table",
    })?;
    let delta_at = reader.offset();
    let delta = reader.varint()?;
    let hlc = max_hlc.checked_sub(delta).ok_or(DecodeError::Invalid {
        offset: delta_at,
        problem: "hlc delta larger than the largest hlc",
    })?;
    if let Some(checks) = checks {
        checks.use_node(index);
        checks.saw_max |= delta == 0;
    }
    Ok(Stamp::new(hlc, node))
}

/// A counter's body, which must end exactly at `end`.
fn read_counter_text<'a>(
    reader: &mut Reader<'a>,
    end: usize,
    nodes: &NodeTable<'_>,
    mut checks: Option<&mut Checks>,
) -> Result<CounterText<'a>, DecodeError> {
    let start = reader.offset();
    let base = read_decimal_text(reader, true)?;
    let available = end.saturating_sub(reader.offset());
    let count = read_count_within(reader, available, MIN_SLOT_LEN)?;
    let mut slots = Vec::with_capacity(count);
    let mut previous: Option<u64> = None;
    for _ in 0..count {
        let slot_at = reader.offset();
        let index = reader.varint()?;
        if previous.is_some_and(|previous| index <= previous) {
            return Err(DecodeError::UnsortedEntries { offset: slot_at });
        }
        let node = nodes.get(index).ok_or(DecodeError::Invalid {
            offset: slot_at,
            problem: "node index beyond the node table",
        })?;
        if let Some(checks) = checks.as_deref_mut() {
            checks.use_node(index);
        }
        let inc = read_decimal_text(reader, false)?;
        let dec = read_decimal_text(reader, false)?;
        if inc == "0" && dec == "0" {
            return Err(DecodeError::EmptyEntry { offset: slot_at });
        }
        // The node table is sorted, so increasing indexes are nodes in order.
        slots.push(CounterSlot { node, inc, dec });
        previous = Some(index);
    }
    if reader.offset() != end {
        return Err(DecodeError::Invalid {
            offset: start,
            problem: "counter length does not match its contents",
        });
    }
    Ok(CounterText { base, slots })
}

/// A decimal's canonical text, checked (within the limits; a sum is not negative) but not
/// parsed.
fn read_decimal_text<'a>(reader: &mut Reader<'a>, signed: bool) -> Result<&'a str, DecodeError> {
    let offset = reader.offset();
    let invalid = |problem| DecodeError::Invalid { offset, problem };
    let text = crate::codec::utf8(read_len_prefixed(reader)?).map_err(|_| invalid("decimal is not valid UTF-8"))?;
    if !Decimal::is_canonical_within_limits(text) {
        let only_not_canonical = !Decimal::is_canonical_text(text) && text.parse::<Decimal>().is_ok();
        return Err(invalid(if only_not_canonical {
            "decimal not in canonical form"
        } else {
            "not a decimal within the limits"
        }));
    }
    if !signed && text.starts_with('-') {
        return Err(invalid("negative counter sum"));
    }
    Ok(text)
}

/// A varint length and that many bytes.
fn read_len_prefixed<'a>(reader: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let len = reader.varint()?;
    reader.bytes(usize::try_from(len).unwrap_or(usize::MAX))
}

/// An encoded doc read in place: validated once by [`DocView::parse`], then read without
/// building the doc. Looking up one key skips the others by their lengths.
#[derive(Debug, Clone, Copy)]
pub struct DocView<'a> {
    bytes: &'a [u8],
    header: Header<'a>,
}

impl<'a> DocView<'a> {
    /// Validates `bytes` as a complete binary doc (the same checks as [`Doc::decode`])
    /// without building it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        DocView::parse_visiting_values(bytes, |_| {})
    }

    /// [`DocView::parse`], handing each entry's value text (`None` for a tombstone or a
    /// counter) to `visit` during the one walk, for callers that check the values too.
    pub(crate) fn parse_visiting_values(
        bytes: &'a [u8],
        mut visit: impl FnMut(Option<&'a str>),
    ) -> Result<Self, DecodeError> {
        let mut decoder = PropertyDecoder::start(bytes, true)?;
        while let Some(raw) = decoder.next_property()? {
            visit(match raw.body {
                RawBody::Value(json) => Some(json),
                RawBody::Tombstone | RawBody::Counter(_) => None,
            });
        }
        decoder.finish()?;
        Ok(DocView {
            bytes,
            header: decoder.header,
        })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.header.count
    }

    /// Whether there are no entries at all.
    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    /// The largest HLC of any stamp (as [`Doc::max_hlc`]), read from the header.
    pub fn max_hlc(&self) -> u64 {
        self.header.max_hlc
    }

    /// The replace watermark (as [`Doc::replaced`]).
    pub fn replaced(&self) -> Option<Stamp> {
        self.header.replaced
    }

    /// The entries in key order, read on the fly.
    fn entries(&self) -> impl Iterator<Item = RawProperty<'a>> {
        // `parse` accepted these bytes, so walking them again cannot fail; should it anyway,
        // the walk just ends early rather than panicking.
        let mut decoder = PropertyDecoder::resume(self.bytes, self.header).ok();
        std::iter::from_fn(move || match decoder.as_mut()?.next_property() {
            Ok(Some(raw)) => Some(raw),
            Ok(None) | Err(_) => {
                decoder = None;
                None
            }
        })
    }

    /// `doc -> key` (as [`Doc::get`]), straight from the bytes: a value is borrowed, a
    /// counter's value computed.
    pub fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        for raw in self.entries() {
            match raw.key.as_bytes().cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return raw.json(),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }

    /// `doc ->> key` (as [`Doc::get_text`]).
    pub fn get_text(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).map(text_of)
    }

    /// The plain object (as [`Doc::to_json`]).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64);
        write_plain_object(&mut out, self.entries().map(|raw| (raw.key, raw.json())));
        out
    }

    /// Every stamp (as [`Doc::metadata`]).
    pub fn metadata(&self) -> impl Iterator<Item = StampInfo<'a>> {
        let watermark = self.header.replaced.map(|stamp| StampInfo {
            key: None,
            kind: super::StampKind::Replaced,
            stamp,
        });
        watermark.into_iter().chain(self.entries().map(|raw| StampInfo {
            key: Some(raw.key),
            kind: raw.kind(),
            stamp: raw.stamp,
        }))
    }

    /// The owned doc.
    pub fn to_doc(&self) -> Doc {
        let properties = self
            .entries()
            .filter_map(|raw| {
                let key = raw.key.to_owned();
                raw.into_property().ok().map(|property| (key, property))
            })
            .collect();
        Doc {
            replaced: self.header.replaced,
            properties,
        }
    }

    /// The canonical text form (as [`Doc::to_text`]), written from the bytes.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out);
        out
    }

    /// Appends the canonical text form to `out` (an output function reuses one buffer).
    pub fn write_text(&self, out: &mut String) {
        // `parse` accepted these bytes, so no counter fails to decode.
        let entries: Vec<ParsedEntry<'_>> = self.entries().filter_map(|raw| raw.parsed().ok()).collect();
        out.reserve(128 + 96 * entries.len());
        super::text_form::write_text(
            out,
            self.header.replaced,
            entries.iter().map(|parsed| (parsed.key, parsed.entry())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, dec, node, rich_doc};
    use super::*;

    fn merged(a: &Doc, b: &Doc) -> Doc {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    /// Raw bytes for hand-made encodings.
    #[derive(Clone)]
    struct Raw(Vec<u8>);

    impl Raw {
        fn new() -> Raw {
            Raw(vec![FORMAT_VERSION])
        }
        fn v(mut self, value: u64) -> Raw {
            write_varint(&mut self.0, value);
            self
        }
        fn b(mut self, bytes: &[u8]) -> Raw {
            self.0.extend_from_slice(bytes);
            self
        }
        /// A length-prefixed text.
        fn s(self, text: &str) -> Raw {
            self.v(text.len() as u64).b(text.as_bytes())
        }
        /// A length-prefixed counter body.
        fn counter(self, body: Raw) -> Raw {
            let body = &body.0[1..];
            self.v(body.len() as u64).b(body)
        }
    }

    /// A body for [`Raw::counter`] (its leading version byte is dropped).
    fn body() -> Raw {
        Raw::new()
    }

    #[test]
    fn empty_and_small_layouts() {
        assert_eq!(Doc::new().encode(), [1, 0, 0, 0, 0]);
        assert_eq!(Doc::decode(&[1, 0, 0, 0, 0]), Ok(Doc::new()));
        let mut doc = Doc::new();
        doc.patch(r#"{"a": 1, "b": null}"#, at(300, 7)).expect("patch");
        let expected = Raw::new()
            .v(300)
            .v(1)
            .b(&[7; 16])
            .v(0)
            .v(2)
            .s("a")
            .v(0)
            .v(0)
            .s("1")
            .s("b")
            .v(1)
            .v(0);
        assert_eq!(doc.encode(), expected.0);
        assert_eq!(doc.encoded_len(), expected.0.len());
        // A counter and a watermark.
        let mut doc = Doc::new();
        doc.put("{}", at(5, 2)).expect("put");
        doc.add("c", &dec("-1.5"), node(9)).expect("add");
        let expected = Raw::new()
            .v(5)
            .v(2)
            .b(&[2; 16])
            .b(&[9; 16])
            .v(1)
            .v(0)
            .v(1)
            .s("c")
            .v(2)
            .v(0)
            .counter(body().s("0").v(1).v(1).s("0").s("1.5"));
        assert_eq!(doc.encode(), expected.0);
        assert_eq!(Doc::decode(&expected.0), Ok(doc));
    }

    #[test]
    fn round_trips_and_view_agree() {
        let doc = rich_doc();
        let bytes = doc.encode();
        assert_eq!(bytes.len(), doc.encoded_len());
        assert_eq!(Doc::decode(&bytes).as_ref(), Ok(&doc));
        let view = DocView::parse(&bytes).expect("valid");
        assert_eq!(view.as_bytes(), &bytes[..]);
        assert_eq!(view.to_doc(), doc);
        assert_eq!(view.to_json(), doc.to_json());
        assert_eq!(view.to_text(), doc.to_text());
        assert_eq!(view.max_hlc(), doc.max_hlc());
        assert_eq!(view.replaced(), doc.replaced());
        assert_eq!(view.len(), doc.properties().count());
        assert!(!view.is_empty());
        assert_eq!(view.metadata().collect::<Vec<_>>(), doc.metadata().collect::<Vec<_>>());
        for (key, _) in doc.properties() {
            assert_eq!(view.get(key), doc.get(key), "{key}");
            assert_eq!(view.get_text(key), doc.get_text(key), "{key}");
        }
        for missing in ["", "a", "zzz", "ñ", "never", "old"] {
            assert_eq!(view.get(missing), doc.get(missing), "{missing}");
        }
        assert_eq!(view.get("n").as_deref(), Some("2.750001"));
        assert!(matches!(view.get("s"), Some(Cow::Borrowed(_))), "values are borrowed");
    }

    #[test]
    fn merge_encoded_agrees_with_merge() {
        let a = rich_doc();
        let mut b = Doc::new();
        b.patch(r#"{"s": "newer", "x": [1]}"#, at(5_000, 6)).expect("patch");
        b.add("n", &dec("1"), node(6)).expect("add");
        let mut out = vec![0xee];
        merge_encoded(&a.encode(), &b.encode(), &mut out).expect("valid");
        assert_eq!(&out[1..], &merged(&a, &b).encode()[..]);
        let mut out = vec![1, 2];
        assert!(merge_encoded(&a.encode(), &[1, 9], &mut out).is_err());
        assert_eq!(out, [1, 2], "unchanged on error");
    }

    /// A valid doc: node 1 at index 0, one value property "a" = 1 at hlc 10.
    fn valid() -> Raw {
        Raw::new().v(10).v(1).b(&[1; 16]).v(0).v(1).s("a").v(0).v(0).s("1")
    }

    #[test]
    fn decode_rejects_what_the_encoder_never_writes() {
        assert!(Doc::decode(&valid().0).is_ok());
        let invalid = |problem: &'static str| move |e: &DecodeError| e.to_string().contains(problem);
        let one_node = || Raw::new().v(10).v(1).b(&[1; 16]).v(0);
        let counter_doc = |body: Raw| one_node().v(1).s("c").v(2).v(0).counter(body);
        type Refusal = Box<dyn Fn(&DecodeError) -> bool>;
        let cases: Vec<(&str, Raw, Refusal)> = vec![
            (
                "empty",
                Raw(vec![]),
                Box::new(|e| matches!(e, DecodeError::UnexpectedEnd { .. })),
            ),
            (
                "version",
                Raw(vec![2, 0, 0, 0, 0]),
                Box::new(|e| matches!(e, DecodeError::UnsupportedVersion { .. })),
            ),
            (
                "trailing",
                valid().b(&[0]),
                Box::new(|e| matches!(e, DecodeError::TrailingBytes { .. })),
            ),
            (
                "truncated",
                Raw(valid().0[..valid().0.len() - 1].to_vec()),
                Box::new(|e| matches!(e, DecodeError::UnexpectedEnd { .. })),
            ),
            (
                "max hlc without stamps",
                Raw::new().v(1).v(0).v(0).v(0),
                Box::new(invalid("largest hlc")),
            ),
            (
                "max hlc not reached",
                Raw::new().v(10).v(1).b(&[1; 16]).v(0).v(1).s("a").v(0).v(1).s("1"),
                Box::new(invalid("largest hlc")),
            ),
            (
                "delta beyond max",
                Raw::new().v(10).v(1).b(&[1; 16]).v(0).v(1).s("a").v(0).v(11).s("1"),
                Box::new(invalid("delta larger")),
            ),
            (
                "unsorted nodes",
                Raw::new()
                    .v(10)
                    .v(2)
                    .b(&[2; 16])
                    .b(&[1; 16])
                    .v(0)
                    .v(2)
                    .s("a")
                    .v(0)
                    .v(0)
                    .s("1")
                    .s("b")
                    .v(3)
                    .v(0)
                    .s("1"),
                Box::new(|e| matches!(e, DecodeError::UnsortedEntries { offset: 19 })),
            ),
            (
                "duplicate nodes",
                Raw::new()
                    .v(10)
                    .v(2)
                    .b(&[1; 16])
                    .b(&[1; 16])
                    .v(0)
                    .v(2)
                    .s("a")
                    .v(0)
                    .v(0)
                    .s("1")
                    .s("b")
                    .v(3)
                    .v(0)
                    .s("1"),
                Box::new(|e| matches!(e, DecodeError::UnsortedEntries { .. })),
            ),
            (
                "unused node",
                Raw::new()
                    .v(10)
                    .v(2)
                    .b(&[1; 16])
                    .b(&[2; 16])
                    .v(0)
                    .v(1)
                    .s("a")
                    .v(0)
                    .v(0)
                    .s("1"),
                Box::new(invalid("no stamp or counter uses")),
            ),
            (
                "node index",
                one_node().v(1).s("a").v(3).v(0).s("1"),
                Box::new(invalid("beyond the node table")),
            ),
            (
                "watermark node index",
                Raw::new().v(10).v(1).b(&[1; 16]).v(2).v(0).v(0),
                Box::new(invalid("beyond the node table")),
            ),
            (
                "unsorted keys",
                one_node().v(2).s("b").v(0).v(0).s("1").s("a").v(0).v(0).s("1"),
                Box::new(|e| matches!(e, DecodeError::UnsortedEntries { .. })),
            ),
            (
                "duplicate keys",
                one_node().v(2).s("a").v(0).v(0).s("1").s("a").v(0).v(0).s("2"),
                Box::new(|e| matches!(e, DecodeError::UnsortedEntries { .. })),
            ),
            (
                "key utf-8",
                one_node().v(1).v(1).b(&[0xff]).v(0).v(0).s("1"),
                Box::new(invalid("not valid UTF-8")),
            ),
            (
                "key NUL",
                one_node().v(1).s("a\0").v(0).v(0).s("1"),
                Box::new(invalid("U+0000")),
            ),
            (
                "value utf-8",
                one_node().v(1).s("a").v(0).v(0).v(1).b(&[0xc3]),
                Box::new(invalid("not valid UTF-8")),
            ),
            (
                "value not canonical",
                one_node().v(1).s("a").v(0).v(0).s("[1,2]"),
                Box::new(invalid("not canonical JSON")),
            ),
            (
                "value unsorted object",
                one_node().v(1).s("a").v(0).v(0).s(r#"{"b": 1, "a": 2}"#),
                Box::new(invalid("not canonical JSON")),
            ),
            (
                "value not JSON",
                one_node().v(1).s("a").v(0).v(0).s("nope"),
                Box::new(invalid("not canonical JSON")),
            ),
            (
                "value empty",
                one_node().v(1).s("a").v(0).v(0).s(""),
                Box::new(invalid("not canonical JSON")),
            ),
            (
                "value null",
                one_node().v(1).s("a").v(0).v(0).s("null"),
                Box::new(invalid("null")),
            ),
            (
                "before watermark",
                Raw::new().v(10).v(1).b(&[1; 16]).v(1).v(0).v(1).s("a").v(0).v(1).s("1"),
                Box::new(invalid("before the record's replace watermark")),
            ),
            (
                "property count",
                one_node().v(5).s("a").v(0).v(0).s("1"),
                Box::new(|e| matches!(e, DecodeError::CountTooLarge { .. })),
            ),
            (
                "node count",
                Raw::new().v(10).v(2).b(&[1; 16]).v(0).v(0),
                Box::new(|e| matches!(e, DecodeError::CountTooLarge { .. })),
            ),
            (
                "counter ok",
                counter_doc(body().s("5").v(1).v(0).s("1").s("0")),
                Box::new(|_| false),
            ),
            (
                "counter zero slot",
                counter_doc(body().s("5").v(1).v(0).s("0").s("0")),
                Box::new(|e| matches!(e, DecodeError::EmptyEntry { .. })),
            ),
            (
                "counter negative sum",
                counter_doc(body().s("5").v(1).v(0).s("-1").s("0")),
                Box::new(invalid("negative counter sum")),
            ),
            (
                "counter decimal form",
                counter_doc(body().s("5.0").v(0)),
                Box::new(invalid("canonical form")),
            ),
            (
                "counter decimal plus",
                counter_doc(body().s("+5").v(0)),
                Box::new(invalid("canonical form")),
            ),
            (
                "counter decimal junk",
                counter_doc(body().s("5x").v(0)),
                Box::new(invalid("within the limits")),
            ),
            (
                "counter decimal range",
                counter_doc(body().s(&format!("1{}", "0".repeat(1000))).v(0)),
                Box::new(invalid("within the limits")),
            ),
            (
                "counter slot count",
                counter_doc(body().s("5").v(3).v(0).s("1").s("0")),
                Box::new(|e| matches!(e, DecodeError::CountTooLarge { .. })),
            ),
            (
                "counter slot node",
                counter_doc(body().s("5").v(1).v(1).s("1").s("0")),
                Box::new(invalid("beyond the node table")),
            ),
            (
                "counter length short",
                one_node().v(1).s("c").v(2).v(0).v(3).s("5").v(1).v(0).s("1").s("0"),
                Box::new(|_| true),
            ),
            (
                "counter length long",
                one_node().v(1).s("c").v(2).v(0).counter(body().s("5").v(0).b(&[0])),
                Box::new(invalid("counter length")),
            ),
            (
                "counter length beyond",
                one_node().v(1).s("c").v(2).v(0).v(200).s("5"),
                Box::new(|e| matches!(e, DecodeError::UnexpectedEnd { .. })),
            ),
        ];
        for (name, raw, check) in cases {
            let decoded = Doc::decode(&raw.0);
            let parsed = DocView::parse(&raw.0);
            assert_eq!(decoded.is_ok(), parsed.is_ok(), "{name}");
            if name == "counter ok" {
                assert!(decoded.is_ok(), "{name}: {decoded:?}");
                continue;
            }
            let error = decoded.expect_err(name);
            assert!(check(&error), "{name}: {error}");
            assert_eq!(parsed.expect_err(name), error, "{name}");
        }
        // Unsorted counter slots need two nodes.
        let two = Raw::new().v(10).v(2).b(&[1; 16]).b(&[2; 16]).v(0).v(1).s("c").v(2).v(0);
        let ok = two
            .clone()
            .counter(body().s("0").v(2).v(0).s("1").s("0").v(1).s("1").s("0"));
        assert!(Doc::decode(&ok.0).is_ok());
        let unsorted = two.counter(body().s("0").v(2).v(1).s("1").s("0").v(0).s("1").s("0"));
        assert!(matches!(
            Doc::decode(&unsorted.0),
            Err(DecodeError::UnsortedEntries { .. })
        ));
    }

    #[test]
    fn huge_counts_fail_before_allocating() {
        for raw in [
            Raw::new().v(0).v(u64::MAX / 2),
            Raw::new().v(0).v(0).v(0).v(1 << 40),
            Raw::new().v(0).v(usize::MAX as u64).b(&[0; 64]),
        ] {
            assert!(
                matches!(Doc::decode(&raw.0), Err(DecodeError::CountTooLarge { .. })),
                "{:?}",
                raw.0
            );
        }
    }

    #[test]
    fn encoded_size_of_a_ten_property_doc() {
        // Short strings and small ints patched on one node: the stamps of one write cost a
        // byte each, the node id is stored once.
        let object = r#"{"p0": "value-0", "p1": 1, "p2": "value-2", "p3": 3, "p4": "value-4", "p5": 5, "p6": "value-6", "p7": 7, "p8": "value-8", "p9": 9}"#;
        let mut doc = Doc::new();
        let stamp = Stamp::new(
            crate::hlc::hlc_from_parts(1_764_000_000_000, 0).expect("fits"),
            node(0xa),
        );
        doc.patch(object, stamp).expect("patch");
        assert_eq!(doc.to_json(), object);
        let size = doc.encoded_len();
        // 1 version + 9 max hlc + 1 + 16 node table + 1 watermark + 1 count, then per
        // property 1 + 2 name + 1 tag + 1 delta + 1 + the value's JSON text.
        assert_eq!(size, 29 + 10 * 6 + 5 * 9 + 5);
        assert_eq!(size, 139);
        // The JSON text is 130 bytes: 4 bytes of overhead per property and the 29-byte
        // header, less the separators JSON text has and this form does not.
        assert_eq!(object.len(), 130);
        assert_eq!(doc.encode().len(), size);
    }
}
