//! In-process micro-benchmarks of the CRDT core: the operations the extension runs per datum
//! (merging, decoding, encoding and reading stored values in place).
//!
//! Run with `cargo bench -p crdt-core --bench core`; for a quick pass add
//! `-- --warm-up-time 1 --measurement-time 2`. All inputs are built deterministically, the way
//! replicas build them (writes stamped with an HLC on one node, states then diverging).

use std::hint::black_box;

use crdt_core::{CounterView, Doc, DocView, PnCounter, RowClock};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};

#[path = "common/inputs.rs"]
mod inputs;

use inputs::{counter_pair, doc_pair, row_clock_pair};

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
