//! In-process micro-benchmarks of the CRDT core: the operations the extension runs per datum
//! (merging, decoding, encoding and reading stored values in place).
//!
//! Run with `cargo bench -p crdt-core --bench core`; for a quick pass add
//! `-- --warm-up-time 1 --measurement-time 2`. All inputs are built deterministically, the way
//! replicas build them (writes stamped with an HLC on one node, states then diverging).

use std::hint::black_box;

use crdt_core::{
    hlc_from_parts, value_fingerprint, CounterView, Decimal, Doc, DocView, NodeId, PnCounter, RowClock, Stamp,
};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};

/// A wall clock in late 2025, in ms.
const EPOCH_MS: u64 = 1_764_000_000_000;

/// The `i`-th replica's node id, derived as a real database's would be.
fn node(i: u32) -> NodeId {
    NodeId::derive(0x6a5e_11ed_0000_0001, 16_384 + i)
}

/// A stamp `ms` milliseconds after [`EPOCH_MS`] on `node`.
fn stamp(ms: u64, node: NodeId) -> Stamp {
    Stamp::new(hlc_from_parts(EPOCH_MS + ms, 0).expect("in range"), node)
}

/// A tiny deterministic generator (an LCG), so the data is the same on every run.
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

/// Two replicas of a counter on `nodes` nodes that share a history and then diverged: each
/// node counted up and down on both, then each replica saw further changes on some nodes the
/// other did not, so a merge takes some sums from each side.
fn counter_pair(nodes: u32) -> (PnCounter, PnCounter) {
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

fn counter_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("counter");
    for nodes in [3, 10] {
        let (a, b) = counter_pair(nodes);
        let (a_bytes, b_bytes) = (a.encode(), b.encode());
        let mut merged = a.clone();
        merged.merge(&b);
        let merged_bytes = merged.encode();
        let mut out = Vec::with_capacity(merged_bytes.len());

        group.bench_function(BenchmarkId::new("merge_encoded", format!("{nodes}_nodes")), |bench| {
            bench.iter(|| {
                out.clear();
                crdt_core::counter::merge_encoded(black_box(&a_bytes), black_box(&b_bytes), &mut out).expect("valid");
                black_box(&out);
            })
        });
        group.bench_function(BenchmarkId::new("decode", format!("{nodes}_nodes")), |bench| {
            bench.iter(|| PnCounter::decode(black_box(&merged_bytes)).expect("valid"))
        });
        group.bench_function(BenchmarkId::new("encode", format!("{nodes}_nodes")), |bench| {
            bench.iter(|| black_box(&merged).encode())
        });
        group.bench_function(BenchmarkId::new("view_value", format!("{nodes}_nodes")), |bench| {
            bench.iter(|| CounterView::parse(black_box(&merged_bytes)).expect("valid").value())
        });
        let text = merged.to_text();
        group.bench_function(BenchmarkId::new("to_text", format!("{nodes}_nodes")), |bench| {
            bench.iter(|| black_box(&merged).to_text())
        });
        group.bench_function(
            BenchmarkId::new("from_text_and_encode", format!("{nodes}_nodes")),
            |bench| bench.iter(|| PnCounter::from_text(black_box(&text)).expect("valid").encode()),
        );
        // What `counter_in` runs: the written layout read by the shortcut.
        group.bench_function(BenchmarkId::new("encode_text", format!("{nodes}_nodes")), |bench| {
            bench.iter(|| PnCounter::encode_text(black_box(&text)).expect("valid"))
        });
    }
    group.finish();
}

/// Two replicas of a 10-property record: all properties written on node A; then node B
/// re-patched three of them, and both nodes added to the counter property `p8`.
fn doc_pair() -> (Doc, Doc) {
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
    let five: Decimal = "5".parse().expect("decimal");
    let three: Decimal = "3".parse().expect("decimal");
    a.add("p8", &five, node_a).expect("a number");
    b.add("p8", &three, node_b).expect("a number");
    (a, b)
}

fn doc_benches(c: &mut Criterion) {
    let (a, b) = doc_pair();
    let (a_bytes, b_bytes) = (a.encode(), b.encode());
    let mut merged = a.clone();
    merged.merge(&b);
    let merged_bytes = merged.encode();
    assert_eq!(merged.get("p8").as_deref(), Some("8"), "both nodes' additions are kept");
    assert_eq!(
        merged.get("p4").as_deref(),
        Some(r#""us-east-2""#),
        "B's later patch wins"
    );
    let mut out = Vec::with_capacity(merged_bytes.len());

    let mut group = c.benchmark_group("doc");
    group.bench_function("merge_encoded", |bench| {
        bench.iter(|| {
            out.clear();
            crdt_core::doc::merge_encoded(black_box(&a_bytes), black_box(&b_bytes), &mut out).expect("valid");
            black_box(&out);
        })
    });
    group.bench_function("decode", |bench| {
        bench.iter(|| Doc::decode(black_box(&merged_bytes)).expect("valid"))
    });
    group.bench_function("encode", |bench| bench.iter(|| black_box(&merged).encode()));
    group.bench_function("view_get_p5", |bench| {
        bench.iter(|| {
            DocView::parse(black_box(&merged_bytes))
                .expect("valid")
                .get(black_box("p5"))
                .map(|value| value.len())
        })
    });
    group.bench_function("to_json", |bench| bench.iter(|| black_box(&merged).to_json()));
    group.finish();
}

/// A 6-column row's local clock and a replicated version of it: both from the same insert on
/// node A; then A updated `name` and `qty`, while B updated `email`, `qty` (later) and `price`.
/// Merging keeps A's `name`, takes B's `email`, `qty` and `price`, and ties on the rest.
fn row_clock_pair() -> (RowClock, RowClock, Vec<(&'static str, u32)>) {
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

fn row_clock_benches(c: &mut Criterion) {
    let (local, remote, columns) = row_clock_pair();
    {
        use crdt_core::ColumnChoice::{Local, Remote};
        let choices = local.clone().merge_replicated(&remote, &columns);
        assert_eq!(
            choices,
            [Local, Local, Remote, Remote, Remote, Local],
            "the data is as described"
        );
    }
    let mut group = c.benchmark_group("row_clock");
    group.bench_function("merge_replicated/6_columns", |bench| {
        bench.iter_batched_ref(
            || local.clone(),
            |mine| mine.merge_replicated(black_box(&remote), black_box(&columns)),
            BatchSize::SmallInput,
        )
    });
    // Text-mode logical replication carries the row clock as text: the publisher writes it,
    // the subscriber reads it (and stores the binary form) for every replicated row.
    let text = remote.to_text();
    group.bench_function("to_text/6_columns", |bench| bench.iter(|| black_box(&remote).to_text()));
    group.bench_function("from_text_and_encode/6_columns", |bench| {
        bench.iter(|| RowClock::from_text(black_box(&text)).expect("valid").encode())
    });
    // What `row_clock_in` runs: the written layout read straight into the binary form.
    group.bench_function("encode_text/6_columns", |bench| {
        bench.iter(|| RowClock::encode_text(black_box(&text)).expect("valid"))
    });
    let bytes = remote.encode();
    // What `row_clock_out` runs: the text written from the bytes.
    group.bench_function("text_of_encoded/6_columns", |bench| {
        bench.iter(|| RowClock::validate(black_box(&bytes)).expect("valid").to_text())
    });
    group.finish();
}

criterion_group!(benches, counter_benches, doc_benches, row_clock_benches);
criterion_main!(benches);
