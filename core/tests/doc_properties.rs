//! Property tests of `crdt.doc` (docs/testing.md, "Property tests"): merge algebra on docs built
//! the way replicas build them, exact round trips through every form, agreement of the owned doc
//! and the in-place view, convergence of replicas exchanging states, and robustness on hostile
//! input.

use crdt_core::doc::merge_encoded;
mod common;

use common::{arb_json, edited_text, quote, ObjectKeys, TextEdit};
use crdt_core::fuzz_checks;
use crdt_core::{Decimal, Doc, DocError, DocView, HybridClock, NodeId, Stamp};
use proptest::prelude::*;
use proptest::sample::Index;

/// Property names ops draw from: few, so that writes collide; some need escaping.
const KEYS: &[&str] = &["a", "b", "n", "m", "é", "", "q\"t", "nl\n"];

/// The keys `add` draws from: fewer, so that counters on several nodes are common.
const COUNTER_KEYS: &[&str] = &["n", "m", "a"];

/// The wall clock all replicas share before their skew, in ms (late 2025).
const EPOCH_MS: u64 = 1_764_000_000_000;

fn pool_node(i: usize) -> NodeId {
    NodeId::derive(0xd0c, i as u32)
}

/// A top-level object for patch/put: keys from [`KEYS`], values or `null`.
fn arb_object() -> impl Strategy<Value = String> {
    prop::collection::btree_map(
        prop::sample::select(KEYS),
        prop_oneof![
            3 => arb_json(ObjectKeys::Distinct),
            2 => (-50i64..50).prop_map(|n| n.to_string()),
            1 => Just("null".to_owned()),
        ],
        0..4,
    )
    .prop_map(|members| {
        let members: Vec<String> = members.into_iter().map(|(k, v)| format!("{}: {v}", quote(k))).collect();
        format!("{{{}}}", members.join(", "))
    })
}

fn arb_amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (-100i64..100).prop_map(Decimal::from),
        (-100_000i64..100_000, 1u32..4).prop_map(|(n, scale)| format!("{n}e-{scale}").parse().expect("small decimal")),
        Just("123456789012345678901234567890".parse().expect("big")),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Patch(String),
    Put(String),
    Add(&'static str, Decimal),
    Remove(&'static str),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => arb_object().prop_map(Op::Patch),
        1 => arb_object().prop_map(Op::Put),
        6 => (prop::sample::select(COUNTER_KEYS), arb_amount()).prop_map(|(k, a)| Op::Add(k, a)),
        1 => prop::sample::select(KEYS).prop_map(Op::Remove),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    /// Replica `at` applies `op`; the shared wall clock first moves `advance` ms.
    Apply { at: Index, op: Op, advance: u64 },
    /// Replica `to` merges replica `from`'s state.
    Sync { from: Index, to: Index },
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<Index>(), arb_op(), 0u64..5).prop_map(|(at, op, advance)| Step::Apply { at, op, advance }),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

/// Replicas with skewed clocks (each its own HybridClock) and the steps they take.
#[derive(Debug, Clone)]
struct Scenario {
    skews: Vec<i64>,
    steps: Vec<Step>,
}

fn arb_scenario(max_steps: usize) -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(-200i64..200, 2..=5),
        prop::collection::vec(arb_step(), 0..max_steps),
    )
        .prop_map(|(skews, steps)| Scenario { skews, steps })
}

/// One replica: its node, its clock, how far its wall clock is off, its doc.
struct Replica {
    node: NodeId,
    clock: HybridClock,
    skew: i64,
    doc: Doc,
}

impl Replica {
    /// Applies `op` as the extension would: a fresh stamp above everything in the doc;
    /// refused operations (e.g. adding to a string) leave the doc as it was.
    fn apply(&mut self, op: &Op, wall_ms: u64) {
        let wall = wall_ms.saturating_add_signed(self.skew);
        let hlc = self.clock.tick_after(wall, self.doc.max_hlc()).expect("clock in range");
        let stamp = Stamp::new(hlc, self.node);
        let before = self.doc.clone();
        let result = match op {
            Op::Patch(json) => self.doc.patch(json, stamp),
            Op::Put(json) => self.doc.put(json, stamp),
            Op::Add(key, amount) => self.doc.add(key, amount, self.node),
            Op::Remove(key) => self.doc.remove(key, stamp),
        };
        match result {
            Ok(()) => {}
            Err(DocError::NotANumber { .. }) | Err(DocError::Overflow { .. }) => {
                assert_eq!(self.doc, before, "a refused op changes nothing");
            }
            Err(other) => panic!("{op:?}: {other}"),
        }
    }
}

/// Runs a scenario; returns the replicas' final docs.
fn run(scenario: &Scenario) -> Vec<Doc> {
    let mut replicas: Vec<Replica> = scenario
        .skews
        .iter()
        .enumerate()
        .map(|(i, &skew)| Replica {
            node: pool_node(i),
            clock: HybridClock::new(),
            skew,
            doc: Doc::new(),
        })
        .collect();
    let mut wall = EPOCH_MS;
    for step in &scenario.steps {
        match step {
            Step::Apply { at, op, advance } => {
                wall += advance;
                let i = at.index(replicas.len());
                replicas[i].apply(op, wall);
            }
            Step::Sync { from, to } => {
                let from = replicas[from.index(replicas.len())].doc.clone();
                let i = to.index(replicas.len());
                replicas[i].doc.merge(&from);
            }
        }
    }
    replicas.into_iter().map(|r| r.doc).collect()
}

fn merged(a: &Doc, b: &Doc) -> Doc {
    let mut out = a.clone();
    out.merge(b);
    out
}

/// Three docs from one run, so they share history (the interesting merges).
fn arb_three() -> impl Strategy<Value = (Doc, Doc, Doc)> {
    (arb_scenario(24), any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(scenario, i, j, k)| {
        let docs = run(&scenario);
        let pick = |x: Index| docs[x.index(docs.len())].clone();
        (pick(i), pick(j), pick(k))
    })
}

fn arb_doc() -> impl Strategy<Value = Doc> {
    arb_three().prop_map(|(a, b, _)| merged(&a, &b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn merge_is_commutative_associative_idempotent((a, b, c) in arb_three()) {
        prop_assert_eq!(merged(&a, &b).encode(), merged(&b, &a).encode());
        prop_assert_eq!(
            merged(&merged(&a, &b), &c).encode(),
            merged(&a, &merged(&b, &c)).encode()
        );
        prop_assert_eq!(merged(&a, &a).encode(), a.encode());
        let ab = merged(&a, &b);
        prop_assert_eq!(merged(&ab, &a).encode(), ab.encode());
        prop_assert_eq!(merged(&ab, &b).encode(), ab.encode());
        let mut out = Vec::new();
        prop_assert!(merge_encoded(&a.encode(), &b.encode(), &mut out).is_ok());
        prop_assert_eq!(out, ab.encode());
        // Merging with a side the result already holds changes nothing, through bytes too.
        for (x, y) in [(&ab, &a), (&b, &ab), (&ab, &ab)] {
            let mut out = Vec::new();
            prop_assert!(merge_encoded(&x.encode(), &y.encode(), &mut out).is_ok());
            prop_assert_eq!(out, ab.encode());
        }
    }

    #[test]
    fn binary_and_text_round_trips_are_exact(doc in arb_doc()) {
        let bytes = doc.encode();
        prop_assert_eq!(bytes.len(), doc.encoded_len());
        let decoded = Doc::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&decoded, &doc);
        prop_assert_eq!(decoded.encode(), bytes);
        let text = doc.to_text();
        let parsed = Doc::from_text(&text).expect("own text parses");
        prop_assert_eq!(&parsed, &doc);
        prop_assert_eq!(parsed.to_text(), text);
    }

    #[test]
    fn view_agrees_with_owned(doc in arb_doc()) {
        let bytes = doc.encode();
        let view = DocView::parse(&bytes).expect("valid");
        prop_assert_eq!(view.to_json(), doc.to_json());
        prop_assert_eq!(view.max_hlc(), doc.max_hlc());
        prop_assert_eq!(view.replaced(), doc.replaced());
        prop_assert_eq!(view.metadata().collect::<Vec<_>>(), doc.metadata().collect::<Vec<_>>());
        for key in KEYS.iter().copied().chain(["zz", "\u{10ffff}"]) {
            prop_assert_eq!(view.get(key), doc.get(key), "{:?}", key);
            prop_assert_eq!(view.get_text(key), doc.get_text(key), "{:?}", key);
        }
        prop_assert_eq!(view.to_doc(), doc.clone());
        // The plain object is the canonical JSON of itself.
        let json = doc.to_json();
        prop_assert_eq!(crdt_core::json::canonical_json(&json), Ok(json.clone()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Each op applied at its origin replica, states exchanged by merging in random orders:
    /// once every replica has merged everyone's final state, in any order, all are
    /// byte-identical, and equal to the join of all states.
    #[test]
    fn replicas_converge(
        scenario in arb_scenario(48),
        orders in prop::collection::vec(any::<Index>(), 0..40),
        reversed in any::<bool>(),
    ) {
        let mut docs = run(&scenario);
        let n = docs.len();
        // Random gossip first.
        for pair in orders.chunks(2) {
            if let [from, to] = pair {
                let from = docs[from.index(n)].clone();
                docs[to.index(n)].merge(&from);
            }
        }
        let mut join = Doc::new();
        for doc in &docs {
            join.merge(doc);
        }
        // Then every replica receives every other state, in its own order.
        let snapshot = docs.clone();
        for (r, doc) in docs.iter_mut().enumerate() {
            let mut order: Vec<usize> = (0..n).collect();
            order.rotate_left(r);
            if reversed {
                order.reverse();
            }
            for i in order {
                doc.merge(&snapshot[i]);
            }
        }
        let expected = join.encode();
        for doc in &docs {
            prop_assert_eq!(doc.encode(), expected.clone());
        }
    }
}

// Hostile input: random and mutated encodings and texts, through the same invariants the fuzz
// targets check (crdt_core::fuzz_checks: never a panic, decode and view agree, what is accepted
// is canonical, reads the same in every form, merges, and can still be written to).
proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_keep_the_invariants(
        mut bytes in prop::collection::vec(any::<u8>(), 0..200),
        versioned in any::<bool>(),
    ) {
        if versioned && !bytes.is_empty() {
            bytes[0] = 1;
        }
        fuzz_checks::doc_binary(&bytes);
        fuzz_checks::row_clock_binary(&bytes);
    }

    #[test]
    fn arbitrary_text_keeps_the_invariants(text in any::<String>()) {
        fuzz_checks::doc_text(text.as_bytes());
        fuzz_checks::json_text(text.as_bytes());
    }

    /// JSON-shaped noise reaches deeper into the parsers than arbitrary strings.
    #[test]
    fn json_like_text_keeps_the_invariants(text in r#"[{}\[\]",: 0-9a-f\-.eE\\utrnl]{0,120}"#) {
        fuzz_checks::doc_text(text.as_bytes());
        fuzz_checks::json_text(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_encodings_keep_the_invariants(
        doc in arb_doc(),
        flips in prop::collection::vec((any::<Index>(), 0u8..8), 0..4),
        cut in any::<Index>(),
        truncate in any::<bool>(),
    ) {
        let original = doc.encode();
        let mut bytes = original.clone();
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        fuzz_checks::doc_binary(&bytes);
        // Accepted or not, merging it with a valid state either fails cleanly or is the merge.
        fuzz_checks::doc_merge(&fuzz_checks::join_pair(&bytes, &original));
    }

    #[test]
    fn mutated_text_keeps_the_invariants(
        doc in arb_doc(),
        edits in prop::collection::vec((any::<Index>(), any::<char>(), any::<bool>()), 1..4),
    ) {
        let edits = edits.into_iter().map(|(at, c, replace)| (at, c, TextEdit::replace_or_remove(replace)));
        let text = edited_text(&doc.to_text(), edits);
        fuzz_checks::doc_text(text.as_bytes());
    }
}

/// Docs of values and removals only, some under a replace watermark: the text form
/// [`Doc::encode_text`] reads without building the doc (row clocks are such docs).
fn arb_doc_without_counters() -> impl Strategy<Value = Doc> {
    let write = (
        prop::sample::select(KEYS),
        prop::option::of(prop_oneof![
            any::<u32>().prop_map(|n| n.to_string()),
            prop::sample::select(vec!["true", "\"x y\"", "\"é\"", "-1.50", "1e3", "[1]", "{\"a\": 1}"])
                .prop_map(str::to_owned),
        ]),
        0u64..4,
        0usize..3,
        any::<bool>(),
    );
    prop::collection::vec(write, 0..6).prop_map(|writes| {
        let mut doc = Doc::new();
        for (key, value, hlc, node, replace) in writes {
            let stamp = Stamp::new(EPOCH_MS + hlc, pool_node(node));
            let result = match value {
                Some(json) if replace => doc.put(&format!("{{{}: {json}}}", quote(key)), stamp),
                Some(json) => doc.patch(&format!("{{{}: {json}}}", quote(key)), stamp),
                None => doc.remove(key, stamp),
            };
            result.expect("a valid write");
        }
        doc
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The text shortcut agrees with the general reader on the texts it reads and on texts
    /// edited to differ from them in small ways (digits, quotes, separators, order).
    #[test]
    fn text_shortcut_agrees_with_the_reader(
        doc in arb_doc_without_counters(),
        edits in prop::collection::vec(
            (any::<Index>(), prop::sample::select(vec!['0', '1', '9', 'a', 'F', '"', '\\', ',', ' ', ':', '[', ']', '{', '}', '-', 'é', '\u{1}']), 0u8..3),
            0..3,
        ),
    ) {
        let text = doc.to_text();
        prop_assert_eq!(Doc::encode_text(&text), Ok(doc.encode()));
        let edited = edited_text(&text, edits.into_iter().map(|(at, c, how)| (at, c, TextEdit::from_number(how))));
        fuzz_checks::doc_text(edited.as_bytes());
        fuzz_checks::row_clock_text(edited.as_bytes());
    }
}
