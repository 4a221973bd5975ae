//! The two ways of measuring the cases: criterion (`JSON_SERDE` unset) and a plain loop for
//! callgrind (`JSON_SERDE=<case id>`, `JSON_SERDE_N` runs).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};

use crate::cases::cases;

/// Runs `run` `n` times: the only code callgrind counts (`--toggle-collect='*measured_loop*'`).
#[inline(never)]
fn measured_loop(n: u64, run: &mut dyn FnMut()) {
    for _ in 0..n {
        run();
    }
}

/// `JSON_SERDE=<case id>`: that case `JSON_SERDE_N` times (default 1000) in [`measured_loop`].
pub(crate) fn callgrind(id: &str) {
    let n: u64 = std::env::var("JSON_SERDE_N").map_or(1000, |n| n.parse().expect("a number"));
    let mut case = cases()
        .into_iter()
        .find(|case| case.id == id)
        .unwrap_or_else(|| panic!("no case {id} (JSON_SERDE=list lists them)"));
    measured_loop(n, &mut case.run);
}

/// `JSON_SERDE` unset: every case as a criterion benchmark, `<group>/<implementation>/<input>`.
pub(crate) fn criterion() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for mut case in cases() {
        let (group, rest) = case.id.split_once('/').expect("group/input/implementation");
        let (input, implementation) = rest.split_once('/').expect("input/implementation");
        let id = BenchmarkId::new(implementation, input);
        let mut group = criterion.benchmark_group(group);
        group.bench_function(id, |bench| bench.iter(&mut case.run));
        group.finish();
    }
    criterion.final_summary();
}
