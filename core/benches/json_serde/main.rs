//! `serde_json` against the core's hand-written JSON readers and writers (issue 18, item 7): a
//! prototype reader and writer built on `serde_json` (features `arbitrary_precision` and
//! `raw_value`) for the same inputs, measured beside the hand-written ones and checked against
//! them. The figures, what they mean and the decision are in `docs/json.md`.
//!
//! One binary, four modes (the environment variable `JSON_SERDE` picks one):
//!
//! - unset: criterion benchmarks, `cargo bench -p crdt-core --bench json_serde` (add
//!   `-- <filter>` for some of them);
//! - `JSON_SERDE=list`: the case ids, one a line;
//! - `JSON_SERDE=<case id>`: runs that case `JSON_SERDE_N` times (default 1000) inside
//!   `measured_loop` and nothing else, for `valgrind --tool=callgrind
//!   --toggle-collect='*measured_loop*'`: instructions per run = total / N;
//! - `JSON_SERDE=check`: the guarantee probes (what each reader does with inputs at the edges
//!   of the guarantees) and the agreement runs (generated and mutated texts through both
//!   readers and writers, compared). With `--features fuzz-checks` also the fuzz seeds and the
//!   saved fuzz inputs.
//!
//! The serde readers come in two kinds, because `arbitrary_precision` alone does not keep a
//! number's text as written (it rewrites `1E2` as `1e+2`):
//!
//! - `serde_any`: one pass, `deserialize_any` with `arbitrary_precision` numbers;
//! - `serde_raw`: every value taken as a `&RawValue` first (its text as written), containers
//!   then read again from that text one level down, so numbers stay exact.
//!
//! Both refuse duplicate keys (a map visitor that keeps the keys it has seen), `\u0000`, and
//! nesting past 1000 levels (`serde_any` past serde_json's fixed 128 already), and write the
//! canonical text the core writes (keys sorted by bytes, `", "` and `": "`, `jsonb` escapes).
//!
//! Where things are:
//!
//! - `read_value.rs`: the two serde readers of a JSON value (`serde_canonical`);
//! - `read_parts.rs`: the pieces of the doc and counter text forms (keyed sections, stamps,
//!   per-node `[inc, dec]` pairs);
//! - `read_text.rs`: the doc and counter text forms read whole (`serde_doc`, `serde_counter`)
//!   and compared with the core's `Doc`;
//! - `writers.rs`: the serde writers (`Doc::to_text`, `Doc::to_json`, `PnCounter::to_text`);
//! - `inputs.rs`: the docs, counters and JSON texts measured;
//! - `cases.rs`: each input through each implementation, checked to agree first;
//! - `measure.rs`: criterion, and the loop callgrind counts;
//! - `check.rs`: `JSON_SERDE=check`: the guarantee probes, stack and allocation on hostile
//!   input; then `agree.rs`: the agreement runs, on texts from `generate.rs`;
//! - `allocator.rs`: the global allocator, which records the largest allocation for the probes.

mod agree;
mod allocator;
mod cases;
mod check;
mod generate;
mod inputs;
mod measure;
mod read_parts;
mod read_text;
mod read_value;
mod writers;

/// The property tests' text edits.
#[path = "../../tests/common/mod.rs"]
mod common;

fn main() {
    match std::env::var("JSON_SERDE").as_deref() {
        Ok("list") => {
            for case in cases::cases() {
                println!("{}", case.id);
            }
        }
        Ok("check") => check::run(),
        Ok("stack") => check::stack_probe(),
        Ok(id) => measure::callgrind(id),
        Err(_) => measure::criterion(),
    }
}
