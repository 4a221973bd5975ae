//! The texts the agreement runs feed both readers: proptest strategies for JSON values and
//! docs, mutations of a valid text (the property tests' edits), and a deterministic runner.

use crdt_core::{Decimal, Doc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::common::{edited_text, TextEdit};
use crate::inputs::{decimal, node, stamp};

/// A JSON value as text: compact or spaced, keys in any order (duplicates too), escapes,
/// exact numbers in every spelling (benches' copy of tests/doc_properties.rs's generator,
/// with exponent spellings and duplicate keys added).
pub(crate) fn arb_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        prop::sample::select(vec![
            "0",
            "-0",
            "7",
            "-12",
            "1.50",
            "0.001",
            "1e3",
            "1E3",
            "1e+3",
            "-2.5E-7",
            "12345678901234567890123",
            "3.14159265358979323846264338327950288",
        ])
        .prop_map(str::to_owned),
        (-1_000_000i64..1_000_000).prop_map(|n| n.to_string()),
        "[a-zé😀 \"\\\\/\t\n\u{1}\u{7f}☃]{0,8}".prop_map(|s| quote(&s)),
        prop::sample::select(vec![r#""\u00e9\ud83d\ude00""#, r#""\/\b\f""#, r#""\u001F""#]).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..4), any::<bool>())
                .prop_map(|(items, spaced)| format!("[{}]", items.join(if spaced { ", " } else { "," }))),
            (prop::collection::vec(("[a-c\u{e9}]{0,2}", inner), 0..4), any::<bool>()).prop_map(
                |(members, reversed)| {
                    let mut members: Vec<String> =
                        members.into_iter().map(|(k, v)| format!("{}:{v}", quote(&k))).collect();
                    if reversed {
                        members.reverse();
                    }
                    format!("{{{}}}", members.join(","))
                }
            ),
        ]
    })
}

/// `s` as a JSON string literal (minimal escaping).
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const KEYS: &[&str] = &["a", "b", "n", "m", "é", "", "q\"t", "nl\n"];

/// A doc built by writes on three nodes: patches and puts of generated objects, counter
/// additions, removals.
pub(crate) fn arb_doc() -> impl Strategy<Value = Doc> {
    let object = prop::collection::btree_map(
        prop::sample::select(KEYS),
        prop_oneof![3 => arb_json(), 2 => (-50i64..50).prop_map(|n| n.to_string()), 1 => Just("null".to_owned())],
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
