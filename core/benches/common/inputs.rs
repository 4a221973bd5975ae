//! The inputs both benches measure (benches/core.rs and benches/json_serde/), built
//! deterministically the way replicas build them: writes stamped with an HLC on one node, then
//! states diverging.

// Each bench includes this module with `#[path]` and uses only some of it.
#![allow(dead_code)]

use crdt_core::{hlc_from_parts, value_fingerprint, Decimal, Doc, NodeId, PnCounter, RowClock, Stamp};

/// A wall clock in late 2025, in ms.
pub(crate) const EPOCH_MS: u64 = 1_764_000_000_000;

/// The `i`-th replica's node id, derived as a real database's would be.
pub(crate) fn node(i: u32) -> NodeId {
    NodeId::derive(0x6a5e_11ed_0000_0001, 16_384 + i)
}

/// A stamp `ms` milliseconds after [`EPOCH_MS`] on `node`.
pub(crate) fn stamp(ms: u64, node: NodeId) -> Stamp {
    Stamp::new(hlc_from_parts(EPOCH_MS + ms, 0).expect("in range"), node)
}

pub(crate) fn decimal(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

/// A tiny deterministic generator (an LCG), so the data is the same on every run.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Two replicas of a counter on `nodes` nodes that share a history and then diverged: each
/// node counted up and down on both, then each replica saw further changes on some nodes the
/// other did not, so a merge takes some sums from each side.
pub(crate) fn counter_pair(nodes: u32) -> (PnCounter, PnCounter) {
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
    (a, b)
}

/// Two replicas of a 10-property record: all properties written on node A; then node B
/// re-patched three of them, and both nodes added to the counter property `p8`.
pub(crate) fn doc_pair() -> (Doc, Doc) {
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
    (a, b)
}

/// A 6-column row's local clock and a replicated version of it: both from the same insert on
/// node A; then A updated `name` and `qty`, while B updated `email`, `qty` (later) and `price`.
/// Merging keeps A's `name`, takes B's `email`, `qty` and `price`, and ties on the rest.
pub(crate) fn row_clock_pair() -> (RowClock, RowClock, Vec<(&'static str, u32)>) {
    let (node_a, node_b) = (node(0), node(1));
    let fp = |value: &str| value_fingerprint(Some(value.as_bytes()));
    let inserted = [
        ("id", "1001"),
        ("name", "widget"),
        ("email", "ops@example.com"),
        ("qty", "12"),
        ("price", "9.99"),
        ("updated_at", "2025-11-24 10:00:00+00"),
    ];
    let mut local = RowClock::new();
    for (column, value) in inserted {
        local.stamp(column, fp(value), stamp(0, node_a));
    }
    let mut remote = local.clone();
    local.stamp("name", fp("gadget"), stamp(1_000, node_a));
    local.stamp("qty", fp("11"), stamp(1_000, node_a));
    remote.stamp("email", fp("sales@example.com"), stamp(2_000, node_b));
    remote.stamp("qty", fp("15"), stamp(2_000, node_b));
    remote.stamp("price", fp("10.49"), stamp(2_000, node_b));
    // The replicated row carries B's values of every column.
    let columns = vec![
        ("id", fp("1001")),
        ("name", fp("widget")),
        ("email", fp("sales@example.com")),
        ("qty", fp("15")),
        ("price", fp("10.49")),
        ("updated_at", fp("2025-11-24 10:00:00+00")),
    ];
    (local, remote, columns)
}
