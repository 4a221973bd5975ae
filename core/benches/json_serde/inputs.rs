//! The inputs measured: those of benches/core.rs (its merged counter, 10-property doc and
//! 6-column row clock), and a small doc, a 100-property doc, deep nesting and numbers with long
//! digits; also the node ids, stamps and decimals the checks build docs from.

use crdt_core::{hlc_from_parts, value_fingerprint, Decimal, Doc, NodeId, PnCounter, RowClock, Stamp};

/// A wall clock in late 2025, in ms.
const EPOCH_MS: u64 = 1_764_000_000_000;

pub(crate) fn node(i: u32) -> NodeId {
    NodeId::derive(0x6a5e_11ed_0000_0001, 16_384 + i)
}

pub(crate) fn stamp(ms: u64, node: NodeId) -> Stamp {
    Stamp::new(hlc_from_parts(EPOCH_MS + ms, 0).expect("in range"), node)
}

pub(crate) fn decimal(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

/// A tiny deterministic generator (an LCG), as in benches/core.rs.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// benches/core.rs's merged counter on `nodes` nodes.
pub(crate) fn bench_counter(nodes: u32) -> PnCounter {
    let mut rng = Lcg(u64::from(nodes));
    let mut shared = PnCounter::new();
    for n in 0..nodes {
        for _ in 0..8 {
            let delta = rng.below(500) as i64 + 1;
            let delta = if rng.below(4) == 0 { -delta } else { delta };
            shared.add(node(n), delta).expect("in range");
        }
    }
    let (mut a, mut b) = (shared.clone(), shared);
    for n in 0..nodes {
        let replica = if n % 2 == 0 { &mut a } else { &mut b };
        replica.add(node(n), rng.below(300) as i64 + 1).expect("in range");
        if n % 3 == 0 {
            replica.add(node(n), -(rng.below(50) as i64 + 1)).expect("in range");
        }
    }
    a.merge(&b);
    a
}

/// benches/core.rs's merged 10-property doc (with the counter property `p8`).
pub(crate) fn doc10() -> Doc {
    let (node_a, node_b) = (node(0), node(1));
    let mut a = Doc::new();
    a.patch(
        r#"{"p0": "alice", "p1": 42, "p2": "active", "p3": 7, "p4": "eu-west-1",
            "p5": "2025-11-24", "p6": 3, "p7": "blue", "p8": 0, "p9": "admin"}"#,
        stamp(0, node_a),
    )
    .expect("valid patch");
    let mut b = a.clone();
    b.patch(r#"{"p1": 43, "p4": "us-east-2", "p7": "green"}"#, stamp(1_500, node_b))
        .expect("valid patch");
    a.add("p8", &decimal("5"), node_a).expect("a number");
    b.add("p8", &decimal("3"), node_b).expect("a number");
    a.merge(&b);
    a
}

/// benches/core.rs's replicated 6-column row clock.
pub(crate) fn row_clock6() -> RowClock {
    let node_b = node(1);
    let fp = |value: &str| value_fingerprint(Some(value.as_bytes()));
    let mut clock = RowClock::new();
    for (column, value) in [
        ("id", "1001"),
        ("name", "widget"),
        ("email", "ops@example.com"),
        ("qty", "12"),
        ("price", "9.99"),
        ("updated_at", "2025-11-24 10:00:00+00"),
    ] {
        clock.stamp(column, fp(value), stamp(0, node(0)));
    }
    clock.stamp("email", fp("sales@example.com"), stamp(2_000, node_b));
    clock.stamp("qty", fp("15"), stamp(2_000, node_b));
    clock.stamp("price", fp("10.49"), stamp(2_000, node_b));
    clock
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
