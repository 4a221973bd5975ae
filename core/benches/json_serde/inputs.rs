//! The inputs measured: those of benches/core.rs (its merged counter, 10-property doc and
//! 6-column row clock), and a small doc, a 100-property doc, deep nesting and numbers with long
//! digits; also the node ids, stamps and decimals the checks build docs from.

use crdt_core::{Doc, PnCounter, RowClock};

#[path = "../common/inputs.rs"]
mod shared;

use shared::Lcg;
pub(crate) use shared::{decimal, node, stamp};

/// benches/core.rs's counter pair on `nodes` nodes, merged.
pub(crate) fn bench_counter(nodes: u32) -> PnCounter {
    let (mut a, b) = shared::counter_pair(nodes);
    a.merge(&b);
    a
}

/// benches/core.rs's 10-property doc pair, merged (with the counter property `p8`).
pub(crate) fn doc10() -> Doc {
    let (mut a, b) = shared::doc_pair();
    a.merge(&b);
    a
}

/// benches/core.rs's replicated 6-column row clock.
pub(crate) fn row_clock6() -> RowClock {
    shared::row_clock_pair().1
}

/// Two properties, one write.
pub(crate) fn small_doc() -> Doc {
    let mut doc = Doc::new();
    doc.patch(r#"{"name": "x", "n": 5}"#, stamp(0, node(0)))
        .expect("valid patch");
    doc
}

/// 100 properties of every scalar kind, 30 of them rewritten on another node, 10 removed.
pub(crate) fn doc100() -> Doc {
    let mut members = Vec::new();
    for i in 0..100 {
        let value = match i % 5 {
            0 => format!("\"user-{i}@example.com\""),
            1 => (i * 7919).to_string(),
            2 => format!("{i}.50"),
            3 => (i % 2 == 0).to_string(),
            _ => format!("\"caf\u{e9} {i} \\\"q\\\"\""),
        };
        members.push(format!("\"p{i:03}\": {value}"));
    }
    let mut doc = Doc::new();
    doc.patch(&format!("{{{}}}", members.join(", ")), stamp(0, node(0)))
        .expect("valid patch");
    let rewritten: Vec<String> = (0..100)
        .step_by(3)
        .take(30)
        .map(|i| format!("\"p{i:03}\": {i}"))
        .collect();
    doc.patch(&format!("{{{}}}", rewritten.join(", ")), stamp(1_000, node(1)))
        .expect("valid patch");
    for i in (5..100).step_by(10) {
        doc.remove(&format!("p{i:03}"), stamp(2_000, node(2))).expect("a key");
    }
    doc
}

/// A value nested `depth` levels: objects and arrays alternating, a string inside.
pub(crate) fn nested(depth: usize) -> String {
    let mut text = String::from("\"bottom\"");
    for level in (0..depth).rev() {
        text = if level % 2 == 0 {
            format!("{{\"a\": {text}, \"z\": {level}}}")
        } else {
            format!("[{text}, {level}]")
        };
    }
    text
}

/// Numbers of 20 to 60 digits, with fractions and signed exponents (written as serde_any also
/// writes them, so both readers give the same text).
pub(crate) fn long_numbers() -> String {
    let mut rng = Lcg(7);
    let numbers: Vec<String> = (0..20)
        .map(|i| {
            let digits =
                |rng: &mut Lcg, n: u64| -> String { (0..n).map(|_| char::from(b'0' + rng.below(10) as u8)).collect() };
            let (lead, integer_digits, fraction_digits) = (1 + rng.below(9), 19 + rng.below(20), 1 + rng.below(20));
            let integer = format!("{lead}{}", digits(&mut rng, integer_digits));
            let fraction = digits(&mut rng, fraction_digits);
            match i % 3 {
                0 => integer,
                1 => format!("-{integer}.{fraction}"),
                _ => format!("{integer}.{fraction}e-{}", rng.below(30)),
            }
        })
        .collect();
    format!("[{}]", numbers.join(", "))
}

/// Strings with escapes of every kind.
pub(crate) fn escaped_strings() -> String {
    let members: Vec<String> = (0..10)
        .map(|i| format!(r#""s{i}": "line\nbreak \"quoted\" \\ \/ \u00e9\ud83d\ude00 tab\t{i}""#))
        .collect();
    format!("{{{}}}", members.join(", "))
}

/// A doc holding a value nested `depth` levels and a scalar.
pub(crate) fn nested_doc(depth: usize) -> Doc {
    let mut doc = Doc::new();
    doc.patch(
        &format!("{{\"deep\": {}, \"id\": 1}}", nested(depth)),
        stamp(0, node(0)),
    )
    .expect("valid patch");
    doc
}

/// A doc of long numbers and a counter with long decimal sums.
pub(crate) fn numbers_doc() -> Doc {
    let mut doc = Doc::new();
    doc.patch(&format!("{{\"list\": {}}}", long_numbers()), stamp(0, node(0)))
        .expect("valid patch");
    doc.patch(
        r#"{"big": 123456789012345678901234567890.123456789, "small": -0.000000000000000000012345}"#,
        stamp(1, node(0)),
    )
    .expect("valid patch");
    doc.add("big", &decimal("98765432109876543210.5"), node(1))
        .expect("in range");
    doc.add("big", &decimal("-1.25e-10"), node(2)).expect("in range");
    doc
}
