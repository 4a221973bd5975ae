//! Writes the seed corpus of every fuzz target (`crdt_core::fuzz_checks::TARGETS`): valid
//! values of each form, to start fuzzing from. Used by `scripts/fuzz.sh`:
//!
//! ```sh
//! cargo run -p crdt-core --example fuzz_seeds -- fuzz/corpus
//! ```
//!
//! writes `fuzz/corpus/<target>/seed-<n>`, overwriting earlier seeds and leaving every other
//! file (what the fuzzer found) alone.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    for target in crdt_core::fuzz_checks::TARGETS {
        let dir = root.join(target.name);
        std::fs::create_dir_all(&dir)?;
        for (i, seed) in (target.seeds)().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed)?;
        }
    }
    Ok(())
}
