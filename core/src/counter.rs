//! The additive (PN) counter (docs/design.md, "Counter").
//!
//! State: per node, the sum of its increments and the sum of its decrements. Value =
//! Σinc − Σdec. Merge takes, per node, the larger of each sum; since each node only ever grows
//! its own two sums, the larger one is the later one, so merging never loses an increment and
//! never counts one twice.
//!
//! Canonical state: entries strictly sorted by node id, none with both sums 0. Equal states are
//! therefore byte-identical in every form, which lets callers compare encodings as bytes.
//!
//! Forms:
//! - binary (on disk and send/recv): `[version=1][varint n][n × (16-byte node id, varint inc,
//!   varint dec)]`, read in place through [`CounterView`];
//! - text (in/out): `{"value": 9, "nodes": {"<uuid>": [inc, dec], ...}}`.

use std::cmp::Ordering;
use std::fmt;
use std::iter::Peekable;

use crate::codec::{into_new_buffer, varint_len, write_varint, DecodeError, Reader, FORMAT_VERSION};
use crate::node::NodeId;
use crate::text::{excerpt, read_node_pairs, write_integer, JsonReader, TextError, WrittenText};

/// The smallest encoded entry: a 16-byte node id and two 1-byte varints. Bounds how many
/// entries a buffer can hold before anything is allocated for them.
pub const MIN_ENTRY_LEN: usize = 16 + 1 + 1;

/// One node's slot: the sums of its increments and of its decrements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterEntry {
    /// The node the sums belong to.
    pub node: NodeId,
    /// Sum of the node's increments.
    pub inc: u64,
    /// Sum of the magnitudes of the node's decrements.
    pub dec: u64,
}

impl CounterEntry {
    /// The merge rule, for two slots of the same node: each sum only grows, so the larger is
    /// the newer. This is the only place the rule is written down.
    fn merge(self, other: CounterEntry) -> CounterEntry {
        debug_assert_eq!(self.node, other.node);
        CounterEntry {
            node: self.node,
            inc: self.inc.max(other.inc),
            dec: self.dec.max(other.dec),
        }
    }

    fn encoded_len(&self) -> usize {
        16 + varint_len(self.inc) + varint_len(self.dec)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.node.as_bytes());
        write_varint(out, self.inc);
        write_varint(out, self.dec);
    }
}

/// Why a counter operation was refused. The counter is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterError {
    /// The change would overflow the node's 64-bit sum or take the value outside the `bigint`
    /// range. A counter behaves as a `bigint`: overflow is an error, never a wrap.
    Overflow,
}

impl fmt::Display for CounterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterError::Overflow => f.write_str("counter out of range: the result would not fit in a bigint"),
        }
    }
}

impl std::error::Error for CounterError {}

/// A PN counter, owned. Always canonical (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PnCounter {
    entries: Vec<CounterEntry>,
}

impl PnCounter {
    /// The empty counter (value 0).
    pub const fn new() -> Self {
        PnCounter { entries: Vec::new() }
    }

    /// A counter holding `value`, credited to `node` (the cast from a number).
    pub fn from_value(node: NodeId, value: i64) -> Self {
        let magnitude = value.unsigned_abs();
        let entries = match value.cmp(&0) {
            Ordering::Greater => vec![CounterEntry {
                node,
                inc: magnitude,
                dec: 0,
            }],
            Ordering::Less => vec![CounterEntry {
                node,
                inc: 0,
                dec: magnitude,
            }],
            Ordering::Equal => Vec::new(),
        };
        PnCounter { entries }
    }

    /// The value, Σinc − Σdec. An `i128`: merged states may leave the `i64` range.
    pub fn value(&self) -> i128 {
        sum_entries(self.entries.iter().copied())
    }

    /// The value if it fits a `bigint`.
    pub fn value_i64(&self) -> Option<i64> {
        i64::try_from(self.value()).ok()
    }

    /// The slots, sorted by node, none of them all-zero.
    pub fn entries(&self) -> &[CounterEntry] {
        &self.entries
    }

    /// `node`'s slot, if it has one.
    pub fn get(&self, node: NodeId) -> Option<&CounterEntry> {
        self.entries
            .binary_search_by(|e| e.node.cmp(&node))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The number of nodes with a slot.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no node has a slot (then the value is 0).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `delta` on `node`: a positive delta grows its increment sum, a negative one its
    /// decrement sum. Fails with [`CounterError::Overflow`], leaving the counter unchanged, if
    /// the node's sum would overflow `u64` or the resulting value would leave the `i64` range.
    pub fn add(&mut self, node: NodeId, delta: i64) -> Result<(), CounterError> {
        if delta == 0 {
            return Ok(());
        }
        if i64::try_from(self.value() + i128::from(delta)).is_err() {
            return Err(CounterError::Overflow);
        }
        // `unsigned_abs` is exact even for i64::MIN.
        let magnitude = delta.unsigned_abs();
        match self.entries.binary_search_by(|e| e.node.cmp(&node)) {
            Ok(i) => {
                let entry = &mut self.entries[i];
                let sum = if delta > 0 { &mut entry.inc } else { &mut entry.dec };
                *sum = sum.checked_add(magnitude).ok_or(CounterError::Overflow)?;
            }
            Err(i) => {
                let (inc, dec) = if delta > 0 { (magnitude, 0) } else { (0, magnitude) };
                self.entries.insert(i, CounterEntry { node, inc, dec });
            }
        }
        Ok(())
    }

    /// A local write of a counter column of a CRDT table (docs/design.md, "Table columns"): a
    /// state that descends from `old` (made with `+`/`-`, or merged) is kept as it is; anything
    /// else is a number assigned to the column, recorded as the difference from `old`'s value in
    /// `node`'s slot, so it composes with increments made concurrently elsewhere.
    pub fn write_local(old: &PnCounter, new: &PnCounter, node: NodeId) -> Result<PnCounter, CounterError> {
        let mut joined = old.clone();
        joined.merge(new);
        if &joined == new {
            return Ok(joined);
        }
        let difference = i64::try_from(new.value() - old.value()).map_err(|_| CounterError::Overflow)?;
        let mut assigned = old.clone();
        assigned.add(node, difference)?;
        Ok(assigned)
    }

    /// Whether [`PnCounter::write_local`] keeps `new` exactly as written — it descends from
    /// `old`, as `c = c + n` makes it — decided in one walk over the two encodings, nothing
    /// built. The stamping trigger's common case.
    pub fn write_local_keeps(old: &[u8], new: &[u8]) -> Result<bool, DecodeError> {
        CounterView::covers_each_other(new, old).map(|(new_covers_old, _)| new_covers_old)
    }

    /// Merges `other` into `self`: per node, the larger of each sum. Commutative, associative,
    /// idempotent; never fails.
    pub fn merge(&mut self, other: &PnCounter) {
        if !other.entries.is_empty() {
            self.entries = merge_entries(self.entries.iter().copied(), other.entries.iter().copied()).collect();
        }
    }

    /// Merges an encoded counter into `self` without decoding it to an owned value first
    /// (e.g. a `merge_agg` accumulator absorbing stored values).
    pub fn merge_view(&mut self, other: &CounterView<'_>) {
        if !other.is_empty() {
            self.entries = merge_entries(self.entries.iter().copied(), other.entries()).collect();
        }
    }

    /// The binary form's size in bytes.
    pub fn encoded_len(&self) -> usize {
        1 + varint_len(self.entries.len() as u64) + self.entries.iter().map(CounterEntry::encoded_len).sum::<usize>()
    }

    /// The binary form (on-disk payload and send/recv payload).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the binary form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(FORMAT_VERSION);
        write_varint(out, self.entries.len() as u64);
        for entry in &self.entries {
            entry.encode_into(out);
        }
    }

    /// Reads the binary form, validating it completely: version, canonical varints, a count
    /// the bytes can hold, strictly increasing node ids, no all-zero entries, no trailing
    /// bytes.
    pub fn decode(bytes: &[u8]) -> Result<PnCounter, DecodeError> {
        let mut decoder = EntryDecoder::start(bytes)?;
        // Bounded by the input: the count was checked against the bytes present.
        let mut entries = Vec::with_capacity(decoder.left);
        while let Some(entry) = decoder.next_entry()? {
            entries.push(entry);
        }
        decoder.finish()?;
        Ok(PnCounter { entries })
    }

    /// The canonical text form: `{"value": 9, "nodes": {"<uuid>": [inc, dec], ...}}`, keys
    /// sorted, spaced like PostgreSQL's `jsonb` output. Same as `to_string()`.
    pub fn to_text(&self) -> String {
        text_of(self.value(), self.entries.iter().copied(), self.entries.len())
    }

    /// The binary form of a text form: `PnCounter::from_text(text)?.encode()`, the same result
    /// and the same errors, with a shortcut for the layout [`PnCounter::to_text`] writes (what
    /// text-mode replication carries).
    pub fn encode_text(text: &str) -> Result<Vec<u8>, TextError> {
        into_new_buffer(|out| PnCounter::encode_text_into(text, out))
    }

    /// [`PnCounter::encode_text`], appended to `out` (which holds part of it on error).
    pub fn encode_text_into(text: &str, out: &mut Vec<u8>) -> Result<(), TextError> {
        read_written_layout(text)
            .map_or_else(|| PnCounter::from_text(text), Ok)?
            .encode_into(out);
        Ok(())
    }

    /// Reads the text form. Accepts any JSON whitespace and key order; requires `"nodes"`;
    /// `"value"`, if given, must equal the nodes' sum. Rejects unknown or duplicate keys, sums
    /// that are not integers from 0 to `u64::MAX`, invalid node ids, `[0, 0]` entries and
    /// trailing text.
    pub fn from_text(text: &str) -> Result<PnCounter, TextError> {
        let mut reader = JsonReader::new(text);
        let mut stated_value = None;
        let mut nodes = None;
        let mut object = reader.begin_object("'{' starting a counter object")?;
        while let Some((key, offset)) = reader.next_key(&mut object)? {
            let duplicate = || TextError::DuplicateKey {
                offset,
                key: excerpt(&key),
            };
            match &*key {
                "value" => {
                    if stated_value.is_some() {
                        return Err(duplicate());
                    }
                    let number = reader.number("an integer value")?;
                    if !number.is_integer {
                        return Err(TextError::InvalidNumber {
                            offset: number.offset,
                            expected: "an integer value",
                        });
                    }
                    stated_value = Some(number);
                }
                "nodes" => {
                    if nodes.is_some() {
                        return Err(duplicate());
                    }
                    nodes = Some(read_text_nodes(&mut reader)?);
                }
                _ => {
                    return Err(TextError::UnknownKey {
                        offset,
                        key: excerpt(&key),
                        expected: "\"value\" or \"nodes\"",
                    })
                }
            }
        }
        reader.finish()?;
        let counter = nodes.ok_or(TextError::MissingKey { key: "nodes" })?;
        if let Some(stated) = stated_value {
            let computed = counter.value();
            if stated.to_i128() != Some(computed) {
                return Err(TextError::ValueMismatch {
                    offset: stated.offset,
                    stated: excerpt(stated.text),
                    computed,
                });
            }
        }
        Ok(counter)
    }
}

impl std::str::FromStr for PnCounter {
    type Err = TextError;

    /// Same as [`PnCounter::from_text`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PnCounter::from_text(text)
    }
}

impl fmt::Display for PnCounter {
    /// The canonical text form (see [`PnCounter::to_text`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(f, self.value(), self.entries.iter().copied())
    }
}

/// A counter's text laid out exactly as [`write_text`] writes it, with nothing
/// [`PnCounter::from_text`] would refuse; `None` for any other text, which `from_text` then
/// reads (or says what is wrong with it). The property tests and fuzzing compare the two.
fn read_written_layout(text: &str) -> Option<PnCounter> {
    let mut layout = WrittenText::new(text);
    layout.literal("{\"value\": ")?;
    let negative = layout.literal("-").is_some();
    let magnitude = i128::from(layout.integer()?);
    let stated = if negative { -magnitude } else { magnitude };
    layout.literal(", \"nodes\": {")?;
    let sums = |layout: &mut WrittenText<'_>| {
        layout.literal("[")?;
        let inc = layout.integer()?;
        layout.literal(", ")?;
        let dec = layout.integer()?;
        layout.literal("]")?;
        ((inc, dec) != (0, 0)).then_some((inc, dec))
    };
    let mut entries = Vec::new();
    layout.sorted_members(WrittenText::node, sums, |node, (inc, dec)| {
        entries.push(CounterEntry { node, inc, dec });
        Some(())
    })?;
    layout.literal("}}")?;
    layout.end()?;
    let counter = PnCounter { entries };
    (counter.value() == stated && !(negative && stated == 0)).then_some(counter)
}

/// Reads the `"nodes"` object of the text form into a canonical counter.
fn read_text_nodes(reader: &mut JsonReader<'_>) -> Result<PnCounter, TextError> {
    const SUM: &str = "an integer from 0 to 18446744073709551615";
    let pairs = read_node_pairs(
        reader,
        |reader| {
            let number = reader.number(SUM)?;
            number.to_u64().ok_or(TextError::InvalidNumber {
                offset: number.offset,
                expected: SUM,
            })
        },
        |&sum| sum == 0,
    )?;
    Ok(PnCounter {
        entries: pairs
            .into_iter()
            .map(|(node, inc, dec)| CounterEntry { node, inc, dec })
            .collect(),
    })
}

/// The canonical text form of a counter with `len` entries, in a string sized for it.
fn text_of(value: i128, entries: impl Iterator<Item = CounterEntry>, len: usize) -> String {
    let mut out = String::with_capacity(32 + 64 * len);
    // Writing to a String cannot fail.
    let _ = write_text(&mut out, value, entries);
    out
}

/// Writes the canonical text form. Shared by the owned counter and the in-place view, so the
/// two can't drift apart.
fn write_text(out: &mut impl fmt::Write, value: i128, entries: impl Iterator<Item = CounterEntry>) -> fmt::Result {
    out.write_str("{\"value\": ")?;
    write_integer(out, value)?;
    out.write_str(", \"nodes\": {")?;
    for (i, entry) in entries.enumerate() {
        out.write_str(if i == 0 { "\"" } else { ", \"" })?;
        entry.node.write_text(out)?;
        out.write_str("\": [")?;
        write_integer(out, i128::from(entry.inc))?;
        out.write_str(", ")?;
        write_integer(out, i128::from(entry.dec))?;
        out.write_str("]")?;
    }
    out.write_str("}}")
}

/// Σinc − Σdec. Cannot overflow: each term is below 2^64 and there are far fewer than 2^63
/// entries, so the sum stays well inside `i128`.
fn sum_entries(entries: impl Iterator<Item = CounterEntry>) -> i128 {
    entries.map(|e| i128::from(e.inc) - i128::from(e.dec)).sum()
}

/// The single implementation of counter merge: a sorted merge of two strictly sorted entry
/// streams, combining same-node slots with [`CounterEntry::merge`]. The owned merge, the
/// view merge and the byte-level [`merge_encoded`] all run this.
fn merge_entries<A, B>(a: A, b: B) -> MergeEntries<A, B>
where
    A: Iterator<Item = CounterEntry>,
    B: Iterator<Item = CounterEntry>,
{
    MergeEntries {
        a: a.peekable(),
        b: b.peekable(),
    }
}

/// The iterator behind [`merge_entries`]. Its output is strictly sorted and has no all-zero
/// entries whenever its inputs have none, so it is canonical.
struct MergeEntries<A: Iterator, B: Iterator> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<A, B> Iterator for MergeEntries<A, B>
where
    A: Iterator<Item = CounterEntry>,
    B: Iterator<Item = CounterEntry>,
{
    type Item = CounterEntry;

    fn next(&mut self) -> Option<CounterEntry> {
        let order = match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) => x.node.cmp(&y.node),
            (Some(_), None) => Ordering::Less,
            (None, _) => Ordering::Greater,
        };
        match order {
            Ordering::Less => self.a.next(),
            Ordering::Greater => self.b.next(),
            Ordering::Equal => {
                let x = self.a.next()?;
                let y = self.b.next()?;
                Some(x.merge(y))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (a_low, a_high) = self.a.size_hint();
        let (b_low, b_high) = self.b.size_hint();
        let high = a_high.zip(b_high).and_then(|(a, b)| a.checked_add(b));
        (a_low.max(b_low), high)
    }
}

impl crate::StoredForm for PnCounter {
    fn decode_stored(bytes: &[u8]) -> Result<Self, DecodeError> {
        PnCounter::decode(bytes)
    }
    fn validate_stored(bytes: &[u8]) -> Result<(), DecodeError> {
        CounterView::parse(bytes).map(drop)
    }
    fn write_text_of_stored(bytes: &[u8], out: &mut String) -> Result<(), DecodeError> {
        CounterView::parse(bytes).map(|view| view.write_text(out))
    }
    fn encode_text_into_stored(text: &str, out: &mut Vec<u8>) -> Result<(), TextError> {
        PnCounter::encode_text_into(text, out)
    }
}

/// Merges two encoded counters straight into `out` (appended), by a streaming sorted merge
/// over their bytes: neither input is decoded into an owned counter. Each entry is decoded
/// once, validated as it is read (as completely as [`CounterView::parse`]); on error `out` is
/// left as it was.
pub fn merge_encoded(a: &[u8], b: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = out.len();
    let mut a = CheckedEntries::new(EntryDecoder::start(a)?);
    let mut b = CheckedEntries::new(EntryDecoder::start(b)?);
    write_merged(merge_entries(a.by_ref(), b.by_ref()), out);
    let checked = a.finish().and_then(|()| b.finish());
    if checked.is_err() {
        out.truncate(start);
    }
    checked
}

/// Appends the binary form of the merged entries `entries` to `out`.
fn write_merged(entries: impl Iterator<Item = CounterEntry>, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    let count_at = out.len();
    let mut count: u64 = 0;
    for entry in entries {
        entry.encode_into(out);
        count += 1;
    }
    put_count_in_front(out, count_at, count);
}

/// Writes `count`'s varint at `count_at`, in front of the entries written after it: the count
/// is known only once they are, so it is appended and rotated there, which moves the bytes once
/// and allocates nothing.
fn put_count_in_front(out: &mut Vec<u8>, count_at: usize, count: u64) {
    let body_end = out.len();
    write_varint(out, count);
    let count_len = out.len() - body_end;
    out[count_at..].rotate_right(count_len);
}

/// Why [`add_encoded`] wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddEncodedError {
    /// The encoding is not a valid counter.
    Decode(DecodeError),
    /// As [`PnCounter::add`]'s [`CounterError::Overflow`].
    Counter(CounterError),
}

impl From<DecodeError> for AddEncodedError {
    fn from(error: DecodeError) -> Self {
        AddEncodedError::Decode(error)
    }
}

/// [`PnCounter::add`] on an encoded counter, appending the result's binary form to `out`: one
/// walk over the bytes, each slot decoded once and validated as it is read (as completely as
/// [`PnCounter::decode`]); nothing is built. On error `out` is left as it was. What `counter +
/// n` runs.
pub fn add_encoded(bytes: &[u8], node: NodeId, delta: i64, out: &mut Vec<u8>) -> Result<(), AddEncodedError> {
    let start = out.len();
    let mut decoder = EntryDecoder::start(bytes)?;
    // `unsigned_abs` is exact even for i64::MIN.
    let magnitude = delta.unsigned_abs();
    let added = if delta > 0 {
        CounterEntry {
            node,
            inc: magnitude,
            dec: 0,
        }
    } else {
        CounterEntry {
            node,
            inc: 0,
            dec: magnitude,
        }
    };
    let mut pending = (delta != 0).then_some(added);
    out.push(FORMAT_VERSION);
    let count_at = out.len();
    let (mut count, mut value, mut overflow) = (0u64, 0i128, false);
    let mut emit = |entry: CounterEntry, out: &mut Vec<u8>| {
        entry.encode_into(out);
        count += 1;
        value += i128::from(entry.inc) - i128::from(entry.dec);
    };
    let walked = loop {
        let entry = match decoder.next_entry() {
            Ok(entry) => entry,
            Err(error) => break Err(error),
        };
        match (entry, pending) {
            (Some(entry), Some(added)) if entry.node == added.node => {
                let inc = entry.inc.checked_add(added.inc);
                let dec = entry.dec.checked_add(added.dec);
                overflow |= inc.is_none() || dec.is_none();
                emit(
                    CounterEntry {
                        node,
                        inc: inc.unwrap_or(entry.inc),
                        dec: dec.unwrap_or(entry.dec),
                    },
                    out,
                );
                pending = None;
            }
            (Some(entry), Some(added)) if added.node < entry.node => {
                emit(added, out);
                emit(entry, out);
                pending = None;
            }
            (Some(entry), _) => emit(entry, out),
            (None, Some(added)) => {
                emit(added, out);
                break decoder.finish();
            }
            (None, None) => break decoder.finish(),
        }
    };
    let result = match walked {
        Err(error) => Err(AddEncodedError::Decode(error)),
        // As `add`: adding nothing checks nothing (a merged state may hold a value beyond i64).
        Ok(()) if delta != 0 && (overflow || i64::try_from(value).is_err()) => {
            Err(AddEncodedError::Counter(CounterError::Overflow))
        }
        Ok(()) => Ok(()),
    };
    match result {
        Ok(()) => put_count_in_front(out, count_at, count),
        Err(_) => out.truncate(start),
    }
    result
}

/// The entries of an encoding not validated yet, as an iterator: ends at the first error, which
/// [`CheckedEntries::finish`] then reports (or the bytes left after the last entry).
struct CheckedEntries<'a> {
    decoder: EntryDecoder<'a>,
    error: Option<DecodeError>,
}

impl<'a> CheckedEntries<'a> {
    fn new(decoder: EntryDecoder<'a>) -> Self {
        CheckedEntries { decoder, error: None }
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match &self.error {
            Some(error) => Err(error.clone()),
            None => self.decoder.finish(),
        }
    }
}

impl Iterator for CheckedEntries<'_> {
    type Item = CounterEntry;

    fn next(&mut self) -> Option<CounterEntry> {
        if self.error.is_some() {
            return None;
        }
        self.decoder.next_entry().unwrap_or_else(|error| {
            self.error = Some(error);
            None
        })
    }
}

/// The one decoder of the binary form's entries. Validates as it goes; used to validate a view
/// once, to decode an owned counter, and (on bytes already validated) to iterate a view.
#[derive(Debug, Clone)]
struct EntryDecoder<'a> {
    reader: Reader<'a>,
    /// Entries not yet decoded.
    left: usize,
    previous: Option<NodeId>,
}

impl<'a> EntryDecoder<'a> {
    /// Reads the header (version and count) and checks the count against the bytes present.
    fn start(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        reader.version()?;
        let count_offset = reader.offset();
        let count = reader.varint()?;
        let max = reader.remaining() / MIN_ENTRY_LEN;
        let left = usize::try_from(count)
            .ok()
            .filter(|&count| count <= max)
            .ok_or(DecodeError::CountTooLarge {
                offset: count_offset,
                count,
                max: max as u64,
            })?;
        Ok(EntryDecoder {
            reader,
            left,
            previous: None,
        })
    }

    /// The next entry, `None` after the last.
    fn next_entry(&mut self) -> Result<Option<CounterEntry>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        let offset = self.reader.offset();
        let node = NodeId::from_bytes(self.reader.array()?);
        if self.previous.is_some_and(|previous| node <= previous) {
            return Err(DecodeError::UnsortedEntries { offset });
        }
        let inc = self.reader.varint()?;
        let dec = self.reader.varint()?;
        if inc == 0 && dec == 0 {
            return Err(DecodeError::EmptyEntry { offset });
        }
        self.previous = Some(node);
        self.left -= 1;
        Ok(Some(CounterEntry { node, inc, dec }))
    }

    /// After the last entry: checks nothing follows.
    fn finish(&self) -> Result<(), DecodeError> {
        self.reader.finish()
    }
}

/// An encoded counter read in place: validated once by [`CounterView::parse`], then read
/// without allocating: an operation that doesn't need the whole value must not build it
/// (docs/design.md, "Stored forms and input").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterView<'a> {
    bytes: &'a [u8],
    len: usize,
}

impl<'a> CounterView<'a> {
    /// Validates `bytes` as a complete binary counter (the same checks as
    /// [`PnCounter::decode`]) without allocating.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut decoder = EntryDecoder::start(bytes)?;
        let len = decoder.left;
        while decoder.next_entry()?.is_some() {}
        decoder.finish()?;
        Ok(CounterView { bytes, len })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The number of nodes with a slot.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no node has a slot.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slots in node order, decoded on the fly.
    pub fn entries(&self) -> CounterEntries<'a> {
        // `parse` already accepted these bytes, so starting again cannot fail; should it
        // anyway, the iterator is simply empty rather than a panic.
        CounterEntries {
            decoder: EntryDecoder::start(self.bytes).ok(),
        }
    }

    /// `node`'s slot, if it has one (a scan that stops at the first larger node).
    pub fn get(&self, node: NodeId) -> Option<CounterEntry> {
        self.entries().take_while(|e| e.node <= node).find(|e| e.node == node)
    }

    /// The value, Σinc − Σdec, computed without allocating.
    pub fn value(&self) -> i128 {
        sum_entries(self.entries())
    }

    /// The value if it fits a `bigint`.
    pub fn value_i64(&self) -> Option<i64> {
        i64::try_from(self.value()).ok()
    }

    /// Decodes into an owned counter.
    pub fn to_counter(&self) -> PnCounter {
        PnCounter {
            entries: self.entries().collect(),
        }
    }

    /// The canonical text form, written straight from the bytes.
    pub fn to_text(&self) -> String {
        text_of(self.value(), self.entries(), self.len())
    }

    /// Appends the canonical text form to `out` (an output function reuses one buffer).
    pub fn write_text(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = write_text(out, self.value(), self.entries());
    }

    /// Whether merging the encoded counter `theirs` into `mine` changes nothing (every node of
    /// `theirs` has a slot in `mine`, with sums at least as large), and whether merging `mine`
    /// into `theirs` changes nothing: both in one walk over the two encodings, which checks
    /// them as completely as [`CounterView::parse`]. The merge trigger's common case, one side
    /// holding the other, is decided by this alone: nothing parsed first, no merge written.
    pub fn covers_each_other(mine: &[u8], theirs: &[u8]) -> Result<(bool, bool), DecodeError> {
        let (mut mine, mut theirs) = (EntryDecoder::start(mine)?, EntryDecoder::start(theirs)?);
        let (mut m, mut t) = (mine.next_entry()?, theirs.next_entry()?);
        let (mut mine_covers, mut theirs_covers) = (true, true);
        loop {
            // Which side's slot comes first in node order (both: the same node).
            let (mine_next, theirs_next) = match (m, t) {
                (None, None) => break,
                (Some(_), None) => (true, false),
                (None, Some(_)) => (false, true),
                (Some(x), Some(y)) => (x.node <= y.node, y.node <= x.node),
            };
            match (m.filter(|_| mine_next), t.filter(|_| theirs_next)) {
                (Some(x), Some(y)) => {
                    mine_covers &= x.inc >= y.inc && x.dec >= y.dec;
                    theirs_covers &= y.inc >= x.inc && y.dec >= x.dec;
                }
                (Some(_), None) => theirs_covers = false,
                (None, _) => mine_covers = false,
            }
            if mine_next {
                m = mine.next_entry()?;
            }
            if theirs_next {
                t = theirs.next_entry()?;
            }
        }
        mine.finish()?;
        theirs.finish()?;
        Ok((mine_covers, theirs_covers))
    }

    /// Appends the binary form of `merge(self, other)` to `out`, streaming both inputs.
    pub fn merge_into(&self, other: &CounterView<'_>, out: &mut Vec<u8>) {
        write_merged(merge_entries(self.entries(), other.entries()), out);
    }
}

impl fmt::Display for CounterView<'_> {
    /// The canonical text form, identical to the owned counter's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(f, self.value(), self.entries())
    }
}

/// The slots of a [`CounterView`], decoded on the fly.
#[derive(Debug, Clone)]
pub struct CounterEntries<'a> {
    decoder: Option<EntryDecoder<'a>>,
}

impl Iterator for CounterEntries<'_> {
    type Item = CounterEntry;

    fn next(&mut self) -> Option<CounterEntry> {
        let decoder = self.decoder.as_mut()?;
        match decoder.next_entry() {
            Ok(Some(entry)) => Some(entry),
            // Validated bytes can't fail; stop cleanly if they somehow do.
            Ok(None) | Err(_) => {
                self.decoder = None;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Exact for validated bytes (the only kind a view holds).
        let left = self.decoder.as_ref().map_or(0, |d| d.left);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId::from_bytes([n; 16])
    }

    fn counter(slots: &[(u8, u64, u64)]) -> PnCounter {
        PnCounter {
            entries: slots
                .iter()
                .map(|&(n, inc, dec)| CounterEntry {
                    node: node(n),
                    inc,
                    dec,
                })
                .collect(),
        }
    }

    fn merged(a: &PnCounter, b: &PnCounter) -> PnCounter {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    #[test]
    fn write_local_keeps_descendants_and_turns_assignments_into_differences() {
        let (a, b) = (NodeId::from_bytes([1; 16]), NodeId::from_bytes([2; 16]));
        let mut old = PnCounter::from_value(a, 5);
        old.add(b, 4).unwrap(); // 9
        let mut incremented = old.clone();
        incremented.add(b, 1).unwrap();
        assert_eq!(PnCounter::write_local(&old, &incremented, b), Ok(incremented.clone()));
        // SET n = 20 on node b while node a adds 1 elsewhere: 21 after merging
        let assigned = PnCounter::write_local(&old, &PnCounter::from_value(b, 20), b).unwrap();
        assert_eq!(assigned.value(), 20);
        let mut elsewhere = old.clone();
        elsewhere.add(a, 1).unwrap();
        let mut merged = assigned.clone();
        merged.merge(&elsewhere);
        assert_eq!(merged.value(), 21);
        let lowered = PnCounter::write_local(&old, &PnCounter::from_value(b, 3), b).unwrap();
        assert_eq!(lowered.value(), 3);
    }

    #[test]
    fn written_layout_is_read_by_the_shortcut() {
        let mut counter = PnCounter::new();
        counter.add(node(2), 5).expect("add");
        counter.add(node(1), -7).expect("add");
        let text = counter.to_text();
        assert_eq!(read_written_layout(&text), Some(counter.clone()));
        assert_eq!(PnCounter::encode_text(&text), Ok(counter.encode()));
        // Other layouts, and what the general reader explains, are left to it.
        let (n1, n2) = (node(1), node(2));
        for other in [
            format!(r#"{{"value": -2, "nodes": {{"{n2}": [5, 0], "{n1}": [0, 7]}}}}"#),
            format!(r#"{{"value": -3, "nodes": {{"{n1}": [0, 7], "{n2}": [5, 0]}}}}"#),
            r#"{"value": -0, "nodes": {}}"#.to_owned(),
            format!("{text} "),
            text.replace(": ", ":"),
        ] {
            assert_eq!(read_written_layout(&other), None, "{other}");
            assert_eq!(
                PnCounter::encode_text(&other),
                PnCounter::from_text(&other).map(|c| c.encode())
            );
        }
    }

    #[test]
    fn inventory_case() {
        let (a, b) = (node(0xa), node(0xb));
        let start = PnCounter::from_value(a, 5);
        let mut on_a = start.clone();
        let mut on_b = start;
        on_a.add(a, 5).expect("add");
        on_b.add(b, -1).expect("add");
        assert_eq!(merged(&on_a, &on_b).value(), 9);
        assert_eq!(merged(&on_b, &on_a).value(), 9);
        assert_eq!(merged(&on_a, &on_b), merged(&on_b, &on_a));
        // Replaying the same states changes nothing.
        let both = merged(&on_a, &on_b);
        assert_eq!(merged(&both, &on_a), both);
        assert_eq!(
            both.to_text(),
            format!("{{\"value\": 9, \"nodes\": {{\"{a}\": [10, 0], \"{b}\": [0, 1]}}}}")
        );
    }

    #[test]
    fn from_value_and_value() {
        assert_eq!(PnCounter::from_value(node(1), 0), PnCounter::new());
        assert_eq!(PnCounter::from_value(node(1), 7), counter(&[(1, 7, 0)]));
        assert_eq!(PnCounter::from_value(node(1), -7), counter(&[(1, 0, 7)]));
        let min = PnCounter::from_value(node(1), i64::MIN);
        assert_eq!(min, counter(&[(1, 0, 1 << 63)]));
        assert_eq!(min.value_i64(), Some(i64::MIN));
        assert_eq!(PnCounter::from_value(node(1), i64::MAX).value_i64(), Some(i64::MAX));
    }

    #[test]
    fn add_keeps_entries_sorted_and_canonical() {
        let mut c = PnCounter::new();
        c.add(node(3), 1).expect("add");
        c.add(node(1), -2).expect("add");
        c.add(node(2), 0).expect("zero delta is a no-op");
        c.add(node(3), 4).expect("add");
        assert_eq!(c, counter(&[(1, 0, 2), (3, 5, 0)]));
        assert_eq!(c.value(), 3);
        assert_eq!(c.get(node(3)).map(|e| e.inc), Some(5));
        assert_eq!(c.get(node(2)), None);
    }

    #[test]
    fn add_i64_min_and_max() {
        let mut c = PnCounter::new();
        c.add(node(1), i64::MIN).expect("exactly representable");
        assert_eq!(c.value(), i128::from(i64::MIN));
        assert_eq!(c.add(node(1), -1), Err(CounterError::Overflow));
        c.add(node(2), i64::MAX).expect("back to -1");
        assert_eq!(c.value(), -1);
        c.add(node(2), 1).expect("to 0");
        assert_eq!(c.add(node(2), i64::MAX), Ok(()));
        assert_eq!(c.add(node(2), 1), Err(CounterError::Overflow));
        assert_eq!(c.value_i64(), Some(i64::MAX));
    }

    #[test]
    fn add_errors_leave_state_unchanged() {
        // Value in range but the node's own sum at the u64 limit.
        let mut c = counter(&[(1, u64::MAX, u64::MAX)]);
        let before = c.clone();
        assert_eq!(c.add(node(1), 1), Err(CounterError::Overflow));
        assert_eq!(c.add(node(1), -1), Err(CounterError::Overflow));
        assert_eq!(c, before);
        // Another node is fine.
        c.add(node(2), 1).expect("other node");
        assert_eq!(c.value(), 1);
        // Value out of range.
        let mut big = PnCounter::from_value(node(1), i64::MAX);
        assert_eq!(big.add(node(2), 1), Err(CounterError::Overflow));
        assert_eq!(big, PnCounter::from_value(node(1), i64::MAX));
        assert!(CounterError::Overflow.to_string().contains("out of range"));
    }

    #[test]
    fn merged_value_may_exceed_i64() {
        let a = PnCounter::from_value(node(1), i64::MAX);
        let b = PnCounter::from_value(node(2), i64::MAX);
        let m = merged(&a, &b);
        assert_eq!(m.value(), 2 * i128::from(i64::MAX));
        assert_eq!(m.value_i64(), None);
        let mut m2 = m.clone();
        assert_eq!(m2.add(node(3), 1), Err(CounterError::Overflow));
        m2.add(node(3), -i64::MAX).expect("back into range");
        assert_eq!(m2.value_i64(), Some(i64::MAX));
    }

    #[test]
    fn merge_takes_max_per_sum() {
        let a = counter(&[(1, 5, 1), (2, 3, 0)]);
        let b = counter(&[(1, 4, 2), (3, 0, 9)]);
        let expected = counter(&[(1, 5, 2), (2, 3, 0), (3, 0, 9)]);
        assert_eq!(merged(&a, &b), expected);
        assert_eq!(merged(&b, &a), expected);
        assert_eq!(merged(&a, &a), a);
        assert_eq!(merged(&a, &PnCounter::new()), a);
        assert_eq!(merged(&PnCounter::new(), &a), a);
    }

    #[test]
    fn merge_encoded_and_merge_view_agree_with_merge() {
        let a = counter(&[(1, 5, 1), (2, 300, 0)]);
        let b = counter(&[(1, 4, 2), (3, 0, 9)]);
        let expected = merged(&a, &b).encode();
        let mut out = vec![0xee]; // appends after existing bytes
        merge_encoded(&a.encode(), &b.encode(), &mut out).expect("valid");
        assert_eq!(&out[1..], &expected[..]);
        let mut via_view = a.clone();
        via_view.merge_view(&CounterView::parse(&b.encode()).expect("valid"));
        assert_eq!(via_view.encode(), expected);
        // Invalid input leaves out unchanged.
        let mut out = vec![1, 2];
        assert!(merge_encoded(&a.encode(), &[1, 1], &mut out).is_err());
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn merge_encoded_with_count_needing_two_bytes() {
        let a = PnCounter {
            entries: (0..100)
                .map(|i| CounterEntry {
                    node: node(2 * i),
                    inc: 1,
                    dec: 0,
                })
                .collect(),
        };
        let b = PnCounter {
            entries: (0..100)
                .map(|i| CounterEntry {
                    node: node(2 * i + 1),
                    inc: 0,
                    dec: 1,
                })
                .collect(),
        };
        let mut out = Vec::new();
        merge_encoded(&a.encode(), &b.encode(), &mut out).expect("valid");
        assert_eq!(out, merged(&a, &b).encode());
        assert_eq!(PnCounter::decode(&out).map(|c| c.len()), Ok(200));
    }

    #[test]
    fn binary_layout() {
        assert_eq!(PnCounter::new().encode(), [1, 0]);
        let c = counter(&[(0xab, 300, 1)]);
        let mut expected = vec![1, 1];
        expected.extend([0xab; 16]);
        expected.extend([0xac, 0x02, 0x01]);
        assert_eq!(c.encode(), expected);
        assert_eq!(c.encoded_len(), expected.len());
        assert_eq!(PnCounter::decode(&expected), Ok(c));
    }

    fn entry_bytes(n: u8, inc: u8, dec: u8) -> Vec<u8> {
        let mut b = vec![n; 16];
        b.extend([inc, dec]);
        b
    }

    fn raw(count: u8, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![1, count];
        for e in entries {
            b.extend(e);
        }
        b
    }

    #[test]
    fn decode_rejects_invalid_states() {
        let ok = raw(2, &[entry_bytes(1, 1, 0), entry_bytes(2, 0, 1)]);
        assert!(PnCounter::decode(&ok).is_ok());
        let cases: Vec<(Vec<u8>, DecodeError)> = vec![
            (
                vec![],
                DecodeError::UnexpectedEnd {
                    offset: 0,
                    needed: 1,
                    available: 0,
                },
            ),
            (vec![2, 0], DecodeError::UnsupportedVersion { offset: 0, version: 2 }),
            (
                vec![1],
                DecodeError::UnexpectedEnd {
                    offset: 1,
                    needed: 1,
                    available: 0,
                },
            ),
            (vec![1, 0x80, 0x00], DecodeError::OverlongVarint { offset: 1 }),
            (
                raw(2, &[entry_bytes(2, 1, 0), entry_bytes(1, 1, 0)]),
                DecodeError::UnsortedEntries { offset: 20 },
            ),
            (
                raw(2, &[entry_bytes(1, 1, 0), entry_bytes(1, 2, 0)]),
                DecodeError::UnsortedEntries { offset: 20 },
            ),
            (raw(1, &[entry_bytes(1, 0, 0)]), DecodeError::EmptyEntry { offset: 2 }),
            (
                raw(1, &[entry_bytes(1, 1, 0), vec![9]]),
                DecodeError::TrailingBytes { offset: 20, count: 1 },
            ),
            (vec![1, 0, 0], DecodeError::TrailingBytes { offset: 2, count: 1 }),
            (
                raw(2, &[entry_bytes(1, 1, 0)]),
                DecodeError::CountTooLarge {
                    offset: 1,
                    count: 2,
                    max: 1,
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(PnCounter::decode(&bytes), Err(expected.clone()), "{bytes:?}");
            assert_eq!(CounterView::parse(&bytes), Err(expected.clone()), "{bytes:?}");
        }
        // Overlong varint inside an entry.
        let mut overlong = raw(1, &[vec![1; 16]]);
        overlong.extend([0x81, 0x00, 0x00]);
        assert_eq!(
            PnCounter::decode(&overlong),
            Err(DecodeError::OverlongVarint { offset: 18 })
        );
        // Truncated entry (count passes the bound check, the entry is cut short).
        let mut cut = raw(1, &[entry_bytes(1, 0x80, 0x80)]);
        assert_eq!(
            PnCounter::decode(&cut),
            Err(DecodeError::UnexpectedEnd {
                offset: 18,
                needed: 3,
                available: 2
            })
        );
        cut.truncate(10);
        assert!(matches!(
            PnCounter::decode(&cut),
            Err(DecodeError::CountTooLarge { .. })
        ));
    }

    #[test]
    fn huge_count_in_short_buffer_errors_before_allocating() {
        // Count 2^27 (a 4-byte varint) in a 5-byte buffer.
        let mut five = vec![1];
        write_varint(&mut five, 1 << 27);
        assert_eq!(five.len(), 5);
        assert_eq!(
            PnCounter::decode(&five),
            Err(DecodeError::CountTooLarge {
                offset: 1,
                count: 1 << 27,
                max: 0
            })
        );
        // Count u64::MAX / 2 (a 9-byte varint).
        let mut bytes = vec![1];
        write_varint(&mut bytes, u64::MAX / 2);
        bytes.extend([0; 40]);
        assert_eq!(
            PnCounter::decode(&bytes),
            Err(DecodeError::CountTooLarge {
                offset: 1,
                count: u64::MAX / 2,
                max: 2
            })
        );
        assert!(CounterView::parse(&bytes).is_err());
    }

    #[test]
    fn view_reads_in_place() {
        let c = counter(&[(1, 5, 1), (2, 300, 0), (9, 0, 1 << 40)]);
        let bytes = c.encode();
        let view = CounterView::parse(&bytes).expect("valid");
        assert_eq!(view.len(), 3);
        assert_eq!(view.value(), c.value());
        assert_eq!(view.value_i64(), c.value_i64());
        assert_eq!(view.entries().collect::<Vec<_>>(), c.entries());
        assert_eq!(view.get(node(2)).map(|e| e.inc), Some(300));
        assert_eq!(view.get(node(3)), None);
        assert_eq!(view.to_counter(), c);
        assert_eq!(view.to_text(), c.to_text());
        assert_eq!(view.as_bytes(), &bytes[..]);
        let empty = [1, 0];
        let view = CounterView::parse(&empty).expect("valid");
        assert!(view.is_empty());
        assert_eq!(view.value(), 0);
    }

    #[test]
    fn text_form() {
        assert_eq!(PnCounter::new().to_text(), r#"{"value": 0, "nodes": {}}"#);
        let c = counter(&[(0x01, 10, 0), (0xab, 0, u64::MAX)]);
        let text = c.to_text();
        assert_eq!(
            text,
            format!(
                "{{\"value\": {}, \"nodes\": {{\"{}\": [10, 0], \"{}\": [0, 18446744073709551615]}}}}",
                10 - i128::from(u64::MAX),
                node(1),
                node(0xab)
            )
        );
        assert_eq!(PnCounter::from_text(&text), Ok(c));
        assert_eq!(
            PnCounter::from_text(r#"{"value": 0, "nodes": {}}"#),
            Ok(PnCounter::new())
        );
    }

    #[test]
    fn from_text_is_lenient_about_layout() {
        let (a, b) = (node(0xa), node(0xb));
        let expected = counter(&[(0xa, 10, 0), (0xb, 0, 1)]);
        let texts = [
            format!("{{\"nodes\":{{\"{b}\":[0,1],\"{a}\":[10,0]}},\"value\":9}}"),
            format!("\n\t{{ \"nodes\" : {{ \"{a}\" : [ 10 , 0 ] ,\r\n \"{b}\": [0, 1] }} }} \n"),
            format!(
                "{{\"nodes\": {{\"{}\": [10, 0], \"{b}\": [0, 1]}}}}",
                a.to_string().to_uppercase()
            ),
            format!("{{\"\\u0076alue\": 9, \"nodes\": {{\"{a}\": [10, 0], \"{b}\": [0, 1]}}}}"),
        ];
        for text in texts {
            assert_eq!(PnCounter::from_text(&text), Ok(expected.clone()), "{text}");
        }
    }

    #[test]
    fn from_text_rejects_bad_input() {
        let a = node(0xa);
        let bad: Vec<(String, &str)> = vec![
            (String::new(), "expected '{' starting a counter object at offset 0, found end of input"),
            ("[]".into(), "expected '{' starting a counter object at offset 0, found '['"),
            (r#"{"value": 0}"#.into(), "missing required key \"nodes\""),
            (r#"{"value": 1, "nodes": {}}"#.into(), "\"value\" 1 at offset 10 does not match the nodes, which add up to 0"),
            (r#"{"value": 1.0, "nodes": {}}"#.into(), "expected an integer value at offset 10"),
            (r#"{"value": "0", "nodes": {}}"#.into(), "expected an integer value at offset 10, found '\"'"),
            (r#"{"nodes": {}, "extra": 1}"#.into(), "unknown key \"extra\" at offset 14: expected \"value\" or \"nodes\""),
            (r#"{"nodes": {}, "nodes": {}}"#.into(), "duplicate key \"nodes\" at offset 14: each key may appear once"),
            (r#"{"value": 0, "value": 0, "nodes": {}}"#.into(), "duplicate key \"value\" at offset 13: each key may appear once"),
            (r#"{"nodes": {}} x"#.into(), "expected end of input at offset 14, found 'x'"),
            (r#"{"nodes": {},}"#.into(), "expected a key (a double-quoted string) at offset 13, found '}'"),
            (r#"{"nodes": {"nope": [1, 0]}}"#.into(), "invalid node id at offset 11: expected a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (36 characters), got 4 bytes"),
            (format!("{{\"nodes\": {{\"{a}\": [0, 0]}}}}"), "is [0, 0]: nodes with nothing counted must be omitted"),
            (format!("{{\"nodes\": {{\"{a}\": [-1, 2]}}}}"), "expected an integer from 0 to 18446744073709551615 at offset 52"),
            (format!("{{\"nodes\": {{\"{a}\": [1.5, 2]}}}}"), "expected an integer from 0 to 18446744073709551615"),
            (format!("{{\"nodes\": {{\"{a}\": [1e2, 2]}}}}"), "expected an integer from 0 to 18446744073709551615"),
            (format!("{{\"nodes\": {{\"{a}\": [18446744073709551616, 0]}}}}"), "expected an integer from 0 to 18446744073709551615"),
            (format!("{{\"nodes\": {{\"{a}\": [1]}}}}"), "expected ',' (an [inc, dec] pair has two numbers)"),
            (format!("{{\"nodes\": {{\"{a}\": [1, 2, 3]}}}}"), "expected ']' (an [inc, dec] pair has two numbers)"),
            (format!("{{\"nodes\": {{\"{a}\": 1}}}}"), "expected '[' starting an [inc, dec] pair"),
            (format!("{{\"nodes\": {{\"{a}\": [1, 0], \"{a}\": [2, 0]}}}}"), "duplicate key"),
            (format!("{{\"nodes\": {{\"{a}\": [1, 0], \"{}\": [2, 0]}}}}", a.to_string().to_uppercase()), "duplicate key"),
        ];
        for (text, message) in bad {
            let err = PnCounter::from_text(&text).expect_err(&text);
            assert!(
                err.to_string().contains(message),
                "{text}: got {err}, expected {message}"
            );
        }
    }

    #[test]
    fn duplicate_node_reports_second_occurrence() {
        let a = node(0xa);
        let text = format!("{{\"nodes\": {{\"{a}\": [1, 0], \"{a}\": [2, 0]}}}}");
        let second = text.rfind(&format!("\"{a}\"")).expect("present");
        assert_eq!(
            PnCounter::from_text(&text),
            Err(TextError::DuplicateKey {
                offset: second,
                key: a.to_string()
            })
        );
    }

    #[test]
    fn value_mismatch_quotes_long_values_briefly() {
        let huge = "9".repeat(10_000);
        let err = PnCounter::from_text(&format!("{{\"value\": {huge}, \"nodes\": {{}}}}")).expect_err("mismatch");
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn encoded_size_of_small_counters() {
        // Version byte + 1-byte count + 18 bytes per node while each sum is below 128.
        for (nodes, expected) in [(1u8, 20), (3, 56), (10, 182)] {
            let mut c = PnCounter::new();
            for n in 0..nodes {
                c.add(node(n), i64::from(n) + 1).expect("add");
                c.add(node(n), -1).expect("add");
            }
            assert_eq!(c.encoded_len(), expected, "{nodes} nodes");
            assert_eq!(c.encode().len(), expected, "{nodes} nodes");
        }
    }
}
