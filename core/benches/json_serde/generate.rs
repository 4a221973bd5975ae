//! The texts the agreement runs feed both readers: proptest strategies for JSON values and
//! docs, mutations of a valid text (the property tests' edits), and a deterministic runner.

use crdt_core::{Decimal, Doc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::common::{arb_json, edited_text, quote, ObjectKeys, TextEdit};
use crate::inputs::{decimal, node, stamp};

const KEYS: &[&str] = &["a", "b", "n", "m", "é", "", "q\"t", "nl\n"];

/// A doc built by writes on three nodes: patches and puts of generated objects, counter
/// additions, removals.
pub(crate) fn arb_doc() -> impl Strategy<Value = Doc> {
    let object = prop::collection::btree_map(
        prop::sample::select(KEYS),
        prop_oneof![3 => arb_json(ObjectKeys::MayRepeat), 2 => (-50i64..50).prop_map(|n| n.to_string()), 1 => Just("null".to_owned())],
        0..4,
    )
    .prop_map(|members| {
        let members: Vec<String> = members.into_iter().map(|(k, v)| format!("{}: {v}", quote(k))).collect();
        format!("{{{}}}", members.join(", "))
    });
    let op = (0u8..4, object, prop::sample::select(KEYS), -1000i64..1000, 0u32..3);
    prop::collection::vec(op, 0..8).prop_map(|ops| {
        let mut doc = Doc::new();
        for (i, (kind, object, key, amount, n)) in ops.into_iter().enumerate() {
            let at = stamp(i as u64 * 10, node(n));
            let amount = Decimal::from(amount).add(&decimal("0.25"));
            let _ = match kind {
                0 => doc.patch(&object, at),
                1 => doc.put(&object, at),
                2 => doc.add(key, &amount, node(n)),
                _ => doc.remove(key, at),
            };
        }
        doc
    })
}

/// Runs `cases` generated inputs through `each`.
pub(crate) fn run_generated<S: Strategy>(cases: u32, strategy: S, mut each: impl FnMut(S::Value)) {
    // The same inputs on every run.
    let mut runner = TestRunner::deterministic();
    for _ in 0..cases {
        let value = strategy.new_tree(&mut runner).expect("a value").current();
        each(value);
    }
}

/// Mutations of `text`: up to three characters replaced, inserted or removed.
pub(crate) fn edits() -> impl Strategy<Value = Vec<(Index, char, u8)>> {
    let chars = prop::sample::select(vec![
        '0', '1', '9', 'e', 'E', '+', '-', '.', 'a', '"', '\\', ',', ' ', ':', '[', ']', '{', '}', 'é', '\u{1}',
    ]);
    prop::collection::vec((any::<Index>(), chars, 0u8..3), 1..4)
}

pub(crate) fn edited(text: &str, edits: Vec<(Index, char, u8)>) -> String {
    let mut text = text.to_owned();
    for (at, c, how) in edits {
        // `edited_text` needs a character to pick.
        if text.is_empty() {
            break;
        }
        text = edited_text(&text, [(at, c, TextEdit::from_number(how))]);
    }
    text
}
