//! The invariants every decoder and parser of this crate must keep on hostile input, written
//! once and run by three callers: the cargo-fuzz targets in `fuzz/` (one per [`TARGETS`]
//! entry), the replay of saved crashers in `tests/fuzz_regressions.rs`, and the proptest
//! hostile-input cases in `tests/*_properties.rs`.
//!
//! Each check takes arbitrary bytes and panics (an `assert!`) when an invariant is broken;
//! returning means the input was handled correctly, whether it was accepted or refused:
//!
//! - decoding or parsing never panics, whatever the input;
//! - the owned decoder and the in-place view accept exactly the same inputs;
//! - what is accepted is canonical: it re-encodes to the very same bytes (binary forms), and
//!   every form of it reads back to the same state (binary ↔ text ↔ view);
//! - what is accepted merges: with itself (idempotently) and with known-good values (in both
//!   orders to the same result), through the owned merge and the byte-level one alike, and
//!   the result is itself a valid value;
//! - what is accepted can still be written to (`add`, `patch`, `remove`, `stamp`) and stays
//!   valid.
//!
//! Not part of the public API: hidden from the docs, kept public only so the fuzz crate can
//! call it.

use crate::counter::{add_encoded, merge_encoded as merge_encoded_counters, AddEncodedError, CounterView, PnCounter};
use crate::decimal::{Decimal, DecimalError};
use crate::doc::{merge_encoded as merge_encoded_docs, Doc, DocView};
use crate::hlc::Stamp;
use crate::json;
use crate::node::NodeId;
use crate::row_clock::{ColumnChoice, RowClock};
use crate::text::TextError;

/// One fuzz target: its name (the cargo-fuzz target and the directory of its saved crashers
/// under `tests/fuzz_regressions/`), its check, and the seed inputs its corpus starts from.
#[derive(Clone, Copy)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Runs every invariant on one input; panics if one is broken.
    pub check: fn(&[u8]),
    /// Valid inputs to start fuzzing from (every one of them passes `check`).
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every fuzz target. `fuzz/fuzz_targets/<name>.rs` calls `check` of the entry named `<name>`.
pub const TARGETS: &[Target] = &[
    Target {
        name: "counter_binary",
        check: counter_binary,
        seeds: || known_counters().iter().map(PnCounter::encode).collect(),
    },
    Target {
        name: "counter_text",
        check: counter_text,
        seeds: || known_counters().iter().map(|c| c.to_text().into_bytes()).collect(),
    },
    Target {
        name: "counter_merge",
        check: counter_merge,
        seeds: || pairs(&known_counters().iter().map(PnCounter::encode).collect::<Vec<_>>()),
    },
    Target {
        name: "doc_binary",
        check: doc_binary,
        seeds: || known_docs().iter().map(Doc::encode).collect(),
    },
    Target {
        name: "doc_text",
        check: doc_text,
        seeds: || known_docs().iter().map(|d| d.to_text().into_bytes()).collect(),
    },
    Target {
        name: "doc_merge",
        check: doc_merge,
        seeds: || pairs(&known_docs().iter().map(Doc::encode).collect::<Vec<_>>()),
    },
    Target {
        name: "row_clock_binary",
        check: row_clock_binary,
        seeds: || known_row_clocks().iter().map(RowClock::encode).collect(),
    },
    Target {
        name: "row_clock_text",
        check: row_clock_text,
        seeds: || known_row_clocks().iter().map(|c| c.to_text().into_bytes()).collect(),
    },
    Target {
        name: "row_clock_merge",
        check: row_clock_merge,
        seeds: || pairs(&known_row_clocks().iter().map(RowClock::encode).collect::<Vec<_>>()),
    },
    Target {
        name: "json_text",
        check: json_text,
        seeds: || JSON_SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect(),
    },
    Target {
        name: "decimal_text",
        check: decimal_text,
        seeds: || DECIMAL_SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect(),
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

// ---------------------------------------------------------------------------------------------
// Inputs of two values, for the merge targets.

/// Splits one input into two: a 2-byte little-endian length, that many bytes, the rest.
/// Shorter inputs are the first value with an empty second one.
pub fn split_pair(data: &[u8]) -> (&[u8], &[u8]) {
    match data {
        [lo, hi, rest @ ..] => {
            let first = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
            rest.split_at(first)
        }
        _ => (data, &[]),
    }
}

/// The input [`split_pair`] splits into `a` and `b`.
pub fn join_pair(a: &[u8], b: &[u8]) -> Vec<u8> {
    let len = u16::try_from(a.len()).expect("seed values are short");
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}

/// Every ordered pair of `values`, joined.
fn pairs(values: &[Vec<u8>]) -> Vec<Vec<u8>> {
    values
        .iter()
        .flat_map(|a| values.iter().map(move |b| join_pair(a, b)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Known-good values: what hostile values are merged with, and the seeds of the corpora.

fn node(n: u8) -> NodeId {
    NodeId::from_bytes([n; 16])
}

fn at(hlc: u64, n: u8) -> Stamp {
    Stamp::new(hlc, node(n))
}

fn decimal(text: &str) -> Decimal {
    text.parse().expect("a valid decimal")
}

/// Counters of every shape: empty, one node, several nodes, sums at the `u64` limit.
pub fn known_counters() -> Vec<PnCounter> {
    let mut one = PnCounter::new();
    one.add(node(1), 5).expect("small");
    let mut several = one.clone();
    several.add(node(2), -3).expect("small");
    several.add(node(0xab), 300).expect("small");
    several.add(node(1), -1).expect("small");
    let mut huge = PnCounter::from_value(node(3), i64::MAX);
    huge.merge(&PnCounter::from_value(node(4), i64::MIN));
    vec![PnCounter::new(), one, several, huge]
}

/// Docs of every shape: empty, values of every JSON kind, a watermark, tombstones, counter
/// properties on several nodes with fractional sums.
pub fn known_docs() -> Vec<Doc> {
    let mut plain = Doc::new();
    plain
        .patch(
            r#"{"name": "x", "n": 5, "list": [1, "two", null], "obj": {"b": 1, "a": true}}"#,
            at(100, 1),
        )
        .expect("valid patch");
    let mut rich = plain.clone();
    rich.put(
        r#"{"name": "y", "n": 1.50, "é": "\u00e9\ud83d\ude00", "": ""}"#,
        at(200, 2),
    )
    .expect("valid put");
    rich.add("n", &decimal("2.25"), node(3)).expect("small");
    rich.add("n", &decimal("-1"), node(1)).expect("small");
    rich.add("fresh", &decimal("7"), node(2)).expect("small");
    rich.remove("gone", at(300, 4)).expect("valid key");
    let mut far = Doc::new();
    far.patch(r#"{"k": -0.5e-3}"#, at(u64::MAX, 0xff)).expect("valid patch");
    far.add("c", &decimal(&"9".repeat(40)), node(0)).expect("within limits");
    vec![Doc::new(), plain, rich, far]
}

/// Row clocks: empty, and a few columns stamped on two nodes.
pub fn known_row_clocks() -> Vec<RowClock> {
    let mut clock = RowClock::new();
    clock.stamp("id", 11, at(100, 1));
    clock.stamp("name", 4_000_000_000, at(200, 2));
    clock.stamp("qty", 0, at(150, 1));
    let mut other = RowClock::new();
    other.stamp("name", 7, at(250, 3));
    other.stamp("a b \"c\"", 1, at(90, 3));
    vec![RowClock::new(), clock, other]
}

const JSON_SEEDS: &[&str] = &[
    "null",
    "true",
    "-0.5e-3",
    "12345678901234567890123",
    r#""tab\t \"q\" \\ \/ \u00e9 \ud83d\ude00 ☃""#,
    r#"[1, "two", [3, []], {"x": null, "b": false}]"#,
    r#"{"b": {"c": []}, "a": true, "": "", "é": 1E+2}"#,
    r#" { "z" : 1 , "a" : [ ] } "#,
];

const DECIMAL_SEEDS: &[&str] = &["0", "-12", "1.50", "0.000001", "-2.5E-7", "1e999", ".5", "+7."];

// ---------------------------------------------------------------------------------------------
// Counters.

/// `crdt.counter` binary form: [`PnCounter::decode`] and [`CounterView::parse`].
pub fn counter_binary(data: &[u8]) {
    let decoded = PnCounter::decode(data);
    let viewed = CounterView::parse(data);
    assert_eq!(
        decoded.as_ref().err(),
        viewed.as_ref().err(),
        "decode and view disagree"
    );
    // `counter + n` on the bytes refuses exactly what decode refuses, writing nothing then.
    let mut added = vec![0xee];
    match add_encoded(data, NodeId::derive(0xadd, 1), 1, &mut added) {
        Err(AddEncodedError::Decode(error)) => {
            assert_eq!(decoded.as_ref().err(), Some(&error), "add and decode disagree");
            assert_eq!(added, [0xee], "a failed add wrote output");
        }
        _ => assert!(decoded.is_ok(), "add accepted bytes decode refuses"),
    }
    let Ok(counter) = decoded else { return };
    assert_eq!(counter.encode(), data, "accepted bytes are not canonical");
    check_counter(&counter);
}

/// `crdt.counter` text form: [`PnCounter::from_text`].
pub fn counter_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = PnCounter::from_text(text);
    check_encode_text(PnCounter::encode_text(text), &parsed, PnCounter::encode);
    if let Ok(counter) = parsed {
        check_counter(&counter);
    }
}

/// A type's text shortcut (`encode_text`) gives what its general reader and `encode` give,
/// errors included.
fn check_encode_text<T>(
    encoded: Result<Vec<u8>, TextError>,
    parsed: &Result<T, TextError>,
    encode: impl Fn(&T) -> Vec<u8>,
) {
    assert_eq!(
        encoded,
        parsed.as_ref().map(encode).map_err(Clone::clone),
        "encode_text and from_text disagree"
    );
}

/// `crdt.merge(counter, counter)`: [`merge_encoded_counters`] on two arbitrary inputs.
pub fn counter_merge(data: &[u8]) {
    let (a, b) = split_pair(data);
    let mut out = vec![0xee];
    let result = merge_encoded_counters(a, b, &mut out);
    let both = PnCounter::decode(a).and_then(|a| Ok((a, PnCounter::decode(b)?)));
    match (result, both) {
        (Ok(()), Ok((a, b))) => {
            assert_eq!(out[1..], merged_counters(&a, &b).encode()[..], "byte merge differs");
            let mut reversed = Vec::new();
            merge_encoded_counters(&b.encode(), &a.encode(), &mut reversed).expect("valid");
            assert_eq!(out[1..], reversed[..], "byte merge is not commutative");
            check_counter(&PnCounter::decode(&out[1..]).expect("a merge result decodes"));
            // The merge trigger's shortcut: each side covers the other exactly when the merge
            // is that side.
            let merge = merged_counters(&a, &b);
            assert_eq!(
                CounterView::covers_each_other(&a.encode(), &b.encode()),
                Ok((merge == a, merge == b))
            );
        }
        (Err(_), Err(_)) => {
            assert_eq!(out, [0xee], "a failed merge wrote output");
            assert!(
                CounterView::covers_each_other(a, b).is_err(),
                "covering read a counter decoding refuses"
            );
        }
        (result, both) => panic!("merge {result:?} but decoding {:?}", both.map(|_| ())),
    }
}

fn merged_counters(a: &PnCounter, b: &PnCounter) -> PnCounter {
    let mut out = a.clone();
    out.merge(b);
    out
}

/// Every invariant of an accepted counter.
fn check_counter(counter: &PnCounter) {
    let bytes = counter.encode();
    assert_eq!(bytes.len(), counter.encoded_len());
    assert_eq!(PnCounter::decode(&bytes).as_ref(), Ok(counter), "binary round trip");
    let view = CounterView::parse(&bytes).expect("its own encoding parses");
    assert_eq!(view.to_counter(), *counter, "view differs");
    assert_eq!(
        PnCounter::encode_text(&counter.to_text()).as_ref(),
        Ok(&bytes),
        "text encoded differs"
    );
    assert_eq!(view.value(), counter.value());
    assert_eq!(view.value_i64(), counter.value_i64());
    assert_eq!(view.len(), counter.len());
    let text = counter.to_text();
    assert_eq!(view.to_text(), text, "view text differs");
    assert_eq!(PnCounter::from_text(&text).as_ref(), Ok(counter), "text round trip");
    // Merges: idempotent, commutative with known values, absorbing, same through bytes.
    assert_eq!(merged_counters(counter, counter), *counter, "merge is not idempotent");
    let mut out = Vec::new();
    merge_encoded_counters(&bytes, &bytes, &mut out).expect("valid");
    assert_eq!(out, bytes, "byte merge is not idempotent");
    for good in known_counters() {
        let ab = merged_counters(counter, &good);
        assert_eq!(ab, merged_counters(&good, counter), "merge is not commutative");
        assert_eq!(merged_counters(&ab, counter), ab, "merge does not absorb");
        let mut out = Vec::new();
        merge_encoded_counters(&bytes, &good.encode(), &mut out).expect("valid");
        assert_eq!(out, ab.encode(), "byte merge differs");
        assert_eq!(PnCounter::decode(&out).as_ref(), Ok(&ab));
    }
    // Writes: refused (overflow) or applied, and the result is valid.
    for delta in [1, -1, i64::MAX, i64::MIN] {
        let mut written = counter.clone();
        if written.add(node(9), delta).is_ok() {
            assert_eq!(PnCounter::decode(&written.encode()), Ok(written.clone()));
        } else {
            assert_eq!(written, *counter, "a refused add changed the counter");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Docs.

/// `crdt.doc` binary form: [`Doc::decode`] and [`DocView::parse`]; also read as a row clock.
pub fn doc_binary(data: &[u8]) {
    let decoded = Doc::decode(data);
    let viewed = DocView::parse(data);
    assert_eq!(
        decoded.as_ref().err(),
        viewed.as_ref().err(),
        "decode and view disagree"
    );
    let Ok(doc) = decoded else { return };
    assert_eq!(doc.encode(), data, "accepted bytes are not canonical");
    check_doc(&doc);
}

/// `crdt.doc` text form: [`Doc::from_text`].
pub fn doc_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Doc::from_text(text);
    check_encode_text(Doc::encode_text(text), &parsed, Doc::encode);
    if let Ok(doc) = parsed {
        check_doc(&doc);
    }
}

/// `crdt.merge(doc, doc)`: [`merge_encoded_docs`] on two arbitrary inputs.
pub fn doc_merge(data: &[u8]) {
    let (a, b) = split_pair(data);
    let mut out = vec![0xee];
    let result = merge_encoded_docs(a, b, &mut out);
    let both = Doc::decode(a).and_then(|a| Ok((a, Doc::decode(b)?)));
    match (result, both) {
        (Ok(()), Ok((a, b))) => {
            assert_eq!(out[1..], merged_docs(&a, &b).encode()[..], "byte merge differs");
            let mut reversed = Vec::new();
            merge_encoded_docs(&b.encode(), &a.encode(), &mut reversed).expect("valid");
            assert_eq!(out[1..], reversed[..], "byte merge is not commutative");
            check_doc(&Doc::decode(&out[1..]).expect("a merge result decodes"));
        }
        (Err(_), Err(_)) => assert_eq!(out, [0xee], "a failed merge wrote output"),
        (result, both) => panic!("merge {result:?} but decoding {:?}", both.map(|_| ())),
    }
}

fn merged_docs(a: &Doc, b: &Doc) -> Doc {
    let mut out = a.clone();
    out.merge(b);
    out
}

/// Every invariant of an accepted doc.
fn check_doc(doc: &Doc) {
    check_doc_forms(doc);
    // The plain object (what `doc::jsonb` shows) can be written back: patched into an empty
    // doc it gives the same plain object. (Values may nest as deep as the limit, so the object
    // around them one level more: it is read member by member, as a patch reads it.)
    let plain = doc.to_json();
    let mut rewritten = Doc::new();
    rewritten
        .patch(&plain, at(1, 9))
        .expect("the plain object is a valid patch");
    assert_eq!(rewritten.to_json(), plain, "the plain object does not read back");
    // Merges: idempotent, commutative with known values, absorbing, same through bytes.
    let bytes = doc.encode();
    assert_eq!(merged_docs(doc, doc), *doc, "merge is not idempotent");
    let mut out = Vec::new();
    merge_encoded_docs(&bytes, &bytes, &mut out).expect("valid");
    assert_eq!(out, bytes, "byte merge is not idempotent");
    for good in known_docs() {
        let ab = merged_docs(doc, &good);
        assert_eq!(ab, merged_docs(&good, doc), "merge is not commutative");
        assert_eq!(merged_docs(&ab, doc), ab, "merge does not absorb");
        let mut out = Vec::new();
        merge_encoded_docs(&bytes, &good.encode(), &mut out).expect("valid");
        assert_eq!(out, ab.encode(), "byte merge differs");
        check_doc_forms(&ab);
    }
    // Writes on the first few properties (and a new one): refused or applied, and the result
    // is valid. Stamps after the doc's newest, as the extension makes them.
    let keys: Vec<String> = doc.properties().take(3).map(|(key, _)| key.to_owned()).collect();
    let fresh = doc.max_hlc().checked_add(1).map(|hlc| Stamp::new(hlc, node(9)));
    for key in keys.iter().map(String::as_str).chain(["new"]) {
        for amount in ["1", "-0.5", &"9".repeat(1000)] {
            let mut written = doc.clone();
            match written.add(key, &decimal(amount), node(9)) {
                Ok(()) => check_doc_forms(&written),
                Err(_) => assert_eq!(written, *doc, "a refused add changed the doc"),
            }
        }
        if let Some(stamp) = fresh {
            let mut written = doc.clone();
            written.remove(key, stamp).expect("a key the doc holds is valid");
            check_doc_forms(&written);
            let mut object = String::from("{");
            json::write_string(&mut object, key);
            object.push_str(": [1]}");
            let mut written = doc.clone();
            written.patch(&object, stamp).expect("valid patch");
            check_doc_forms(&written);
        }
    }
    if let Ok(clock) = RowClock::decode(&bytes) {
        check_row_clock(&clock);
    }
}

/// The doc reads the same through every form: binary, the in-place view, text.
fn check_doc_forms(doc: &Doc) {
    let bytes = doc.encode();
    assert_eq!(bytes.len(), doc.encoded_len());
    assert_eq!(Doc::decode(&bytes).as_ref(), Ok(doc), "binary round trip");
    let view = DocView::parse(&bytes).expect("its own encoding parses");
    assert_eq!(view.to_doc(), *doc, "view differs");
    assert_eq!(view.max_hlc(), doc.max_hlc());
    assert_eq!(view.replaced(), doc.replaced());
    assert_eq!(view.len(), doc.properties().count());
    assert!(view.metadata().eq(doc.metadata()), "view metadata differs");
    let plain = doc.to_json();
    assert_eq!(view.to_json(), plain, "view JSON differs");
    for (key, _) in doc.properties() {
        assert_eq!(view.get(key), doc.get(key), "view get differs");
        assert_eq!(view.get_text(key), doc.get_text(key), "view get_text differs");
    }
    let text = doc.to_text();
    assert_eq!(view.to_text(), text, "view text differs");
    assert_eq!(Doc::from_text(&text).as_ref(), Ok(doc), "text round trip");
    assert_eq!(Doc::encode_text(&text).as_ref(), Ok(&bytes), "text encoded differs");
}

// ---------------------------------------------------------------------------------------------
// Row clocks.

/// `crdt.row_clock` binary form: [`RowClock::decode`].
pub fn row_clock_binary(data: &[u8]) {
    let decoded = RowClock::decode(data);
    if decoded.is_ok() {
        assert!(Doc::decode(data).is_ok(), "a row clock that is not a doc");
    }
    let Ok(clock) = decoded else { return };
    assert_eq!(clock.encode(), data, "accepted bytes are not canonical");
    check_row_clock(&clock);
}

/// `crdt.row_clock` text form: [`RowClock::from_text`].
pub fn row_clock_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = RowClock::from_text(text);
    check_encode_text(RowClock::encode_text(text), &parsed, RowClock::encode);
    if parsed.is_ok() {
        assert!(Doc::from_text(text).is_ok(), "a row clock that is not a doc");
    }
    if let Ok(clock) = parsed {
        check_row_clock(&clock);
    }
}

/// The merge trigger's step, [`RowClock::merge_replicated`], on two arbitrary clocks (the
/// local and the replicated one) and the columns they name.
pub fn row_clock_merge(data: &[u8]) {
    let (a, b) = split_pair(data);
    let (Ok(local), Ok(remote)) = (RowClock::decode(a), RowClock::decode(b)) else {
        return;
    };
    check_replicated_merge(&local, &remote);
}

/// Every invariant of an accepted row clock.
fn check_row_clock(clock: &RowClock) {
    let bytes = clock.encode();
    assert_eq!(RowClock::decode(&bytes).as_ref(), Ok(clock), "binary round trip");
    let text = clock.to_text();
    assert_eq!(RowClock::from_text(&text).as_ref(), Ok(clock), "text round trip");
    assert_eq!(
        RowClock::encode_text(&text).as_ref(),
        Ok(&bytes),
        "text encoded differs"
    );
    assert_eq!(
        RowClock::validate(&bytes).map(|view| view.to_text()).as_ref(),
        Ok(&text),
        "view text differs"
    );
    assert_eq!(
        Doc::decode(&bytes).map(|doc| doc.to_text()),
        Ok(text),
        "the doc forms differ"
    );
    assert_eq!(clock.row_stamp().map_or(0, |stamp| stamp.hlc), clock.max_hlc());
    for good in known_row_clocks() {
        check_replicated_merge(clock, &good);
        check_replicated_merge(&good, clock);
    }
    if let Some(hlc) = clock.max_hlc().checked_add(1) {
        let mut written = clock.clone();
        written.stamp("new", 5, Stamp::new(hlc, node(9)));
        assert_eq!(written.column("new").map(|c| c.fingerprint), Some(5));
        assert_eq!(RowClock::decode(&written.encode()), Ok(written));
    }
}

/// `local.merge_replicated(remote, columns)` for the columns either clock names (up to a
/// few), with the fingerprints the remote gave them, and for no columns at all.
fn check_replicated_merge(local: &RowClock, remote: &RowClock) {
    // With no columns named every column merges last writer wins: a plain, commutative merge.
    let mut ab = local.clone();
    assert!(ab.merge_replicated(remote, &[]).is_empty());
    let mut ba = remote.clone();
    ba.merge_replicated(local, &[]);
    assert_eq!(ab, ba, "row clock merge is not commutative");
    let mut again = ab.clone();
    again.merge_replicated(remote, &[]);
    assert_eq!(again, ab, "row clock merge is not idempotent");
    assert_eq!(RowClock::decode(&ab.encode()).as_ref(), Ok(&ab));

    // As the merge trigger calls it: the table's columns, each with the fingerprint of the
    // value the replicated row carries (here the one its stamp was given to, or not).
    let names: Vec<String> = remote_names(local, remote);
    let columns: Vec<(&str, u32)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let theirs = remote.column(name).map_or(0, |c| c.fingerprint);
            (name.as_str(), if i % 2 == 0 { theirs } else { theirs ^ 1 })
        })
        .collect();
    let mut merged = local.clone();
    let choices = merged.merge_replicated(remote, &columns);
    assert_eq!(choices.len(), columns.len());
    for (&(name, fingerprint), choice) in columns.iter().zip(&choices) {
        let (mine, theirs) = (local.column(name), remote.column(name));
        match choice {
            ColumnChoice::Remote => {
                let theirs = theirs.expect("adopted from a stamp the remote has");
                assert_eq!(theirs.fingerprint, fingerprint, "adopted without its value");
                assert!(
                    mine.is_none_or(|mine| theirs.stamp > mine.stamp),
                    "adopted an older stamp"
                );
                assert_eq!(merged.column(name), Some(theirs));
            }
            ColumnChoice::Local => assert_eq!(merged.column(name), mine, "kept column changed"),
        }
    }
    assert_eq!(RowClock::decode(&merged.encode()).as_ref(), Ok(&merged));
    // Replaying the same replicated row changes nothing more.
    let mut replayed = merged.clone();
    let again = replayed.merge_replicated(remote, &columns);
    assert!(again.iter().all(|c| *c == ColumnChoice::Local), "replay adopted again");
    assert_eq!(replayed, merged, "replay changed the clock");
}

/// Column names to merge: those of both clocks, as their text forms list them (few).
fn remote_names(local: &RowClock, remote: &RowClock) -> Vec<String> {
    let mut names = Vec::new();
    for clock in [local, remote] {
        let Ok(doc) = Doc::decode(&clock.encode()) else {
            continue;
        };
        for (name, _) in doc.properties().take(4) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// JSON values and decimals.

/// Arbitrary JSON values ([`json::canonical_json`], [`json::is_canonical_json`]) and JSON
/// objects as patches ([`Doc::patch`], [`Doc::put`]).
pub fn json_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let canonical = json::canonical_json(text);
    assert_eq!(
        json::is_canonical_json(text),
        canonical.as_deref() == Ok(text),
        "is_canonical_json disagrees with canonical_json"
    );
    if let Ok(canonical) = &canonical {
        assert_eq!(
            json::canonical_json(canonical).as_ref(),
            Ok(canonical),
            "not idempotent"
        );
        assert!(json::is_canonical_json(canonical));
        assert_eq!(json::is_number(canonical), json::kind_name(canonical) == "a number");
        let _ = json::as_text(canonical);
        if json::is_number(canonical) {
            // `add` turns a number property into a counter: any JSON number is a decimal,
            // in range or not.
            assert_ne!(canonical.parse::<Decimal>().err(), Some(DecimalError::Invalid));
        }
    }
    let mut patched = known_docs().swap_remove(2);
    let stamp = Stamp::new(patched.max_hlc().saturating_add(1), node(9));
    let mut put = patched.clone();
    let (patch_result, put_result) = (patched.patch(text, stamp), put.put(text, stamp));
    assert_eq!(patch_result.is_ok(), put_result.is_ok(), "patch and put disagree");
    if patch_result.is_ok() {
        check_doc(&patched);
        check_doc(&put);
    }
}

/// Decimal text ([`Decimal`]'s `FromStr`, as `crdt.add` and the doc forms read numbers).
pub fn decimal_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = text.parse::<Decimal>() else {
        // Canonical-looking text fails only beyond the limits.
        assert!(
            !Decimal::is_canonical_text(text) || text.parse::<Decimal>() == Err(DecimalError::OutOfRange),
            "canonical text refused"
        );
        return;
    };
    assert!(value.is_within_limits());
    let shown = value.to_string();
    assert_eq!(
        Decimal::is_canonical_text(text),
        shown == text,
        "is_canonical_text disagrees with Display"
    );
    assert_eq!(shown.parse::<Decimal>().as_ref(), Ok(&value), "text round trip");
    // The plain text is what the doc writes as a counter's value: it must be JSON.
    assert_eq!(
        json::canonical_json(&shown).as_ref(),
        Ok(&shown),
        "not a canonical JSON number"
    );
    assert!(value.sub(&value).is_zero());
    assert!(value.add(&value.neg()).is_zero());
    assert_eq!(value.neg().neg(), value);
    assert_eq!(value.is_negative(), value < Decimal::ZERO);
    let one = Decimal::from(1);
    assert_eq!(value.add(&one).sub(&one), value);
    assert!(value.add(&one) > value);
    let mut doc = known_docs().swap_remove(2);
    let before = doc.clone();
    match doc.add("n", &value, node(9)) {
        Ok(()) => check_doc_forms(&doc),
        Err(_) => assert_eq!(doc, before),
    }
}
