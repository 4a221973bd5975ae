//! Replays the saved fuzz inputs under `tests/fuzz_regressions/<target>/` through the same
//! checks the fuzz targets run (`crdt_core::fuzz_checks`), so what broke once stays fixed:
//!
//! - `crash-*`: an input a fuzzer (`scripts/fuzz.sh`) found to break an invariant, copied from
//!   `fuzz/artifacts/<target>/` once fixed, under a name that says what it broke;
//! - `edge-*`: inputs at the limits, written by hand, that random fuzzing reaches rarely
//!   (sums at `u64::MAX`, stamps at the largest hlc, values nested exactly 1000 deep, decimals
//!   with 1000 digits, forged equal stamps in a merge, ...).

use std::fs;
use std::path::{Path, PathBuf};

use crdt_core::fuzz_checks::{split_pair, target, TARGETS};

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

/// `(target name, file)` for every saved input, sorted.
fn saved_inputs() -> Vec<(String, PathBuf)> {
    let mut inputs = Vec::new();
    for dir in fs::read_dir(regressions_dir()).expect("tests/fuzz_regressions exists") {
        let dir = dir.expect("readable").path();
        let name = dir.file_name().and_then(|n| n.to_str()).expect("UTF-8 name").to_owned();
        assert!(dir.is_dir(), "{} is not a target directory", dir.display());
        assert!(target(&name).is_some(), "{name} is not a fuzz target");
        for file in fs::read_dir(&dir).expect("readable") {
            let file = file.expect("readable").path();
            let file_name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            assert!(
                file_name.starts_with("crash-") || file_name.starts_with("edge-"),
                "{} is neither crash-* nor edge-*",
                file.display()
            );
            inputs.push((name.clone(), file));
        }
    }
    inputs.sort();
    inputs
}

#[test]
fn every_saved_input_passes_its_checks() {
    let inputs = saved_inputs();
    assert!(!inputs.is_empty(), "no saved inputs found");
    for (name, file) in inputs {
        let data = fs::read(&file).expect("readable");
        let check = target(&name).expect("checked above").check;
        // The file is named before it runs, so a failure points at it.
        eprintln!("replaying {}", file.display());
        check(&data);
    }
}

#[test]
fn seeds_pass_every_check_and_are_accepted() {
    for target in TARGETS {
        let seeds = (target.seeds)();
        assert!(!seeds.is_empty(), "{}: no seeds", target.name);
        for seed in seeds {
            (target.check)(&seed);
        }
    }
    // The checks are not vacuous: the seeds are valid values, so they reach the invariants
    // that only accepted input is subject to.
    for name in ["counter_binary", "counter_merge"] {
        for seed in (target(name).expect("exists").seeds)() {
            let (a, b) = if name.ends_with("merge") {
                split_pair(&seed)
            } else {
                (&seed[..], &[][..])
            };
            assert!(crdt_core::PnCounter::decode(a).is_ok(), "{name}");
            assert!(b.is_empty() || crdt_core::PnCounter::decode(b).is_ok(), "{name}");
        }
    }
    for seed in (target("doc_text").expect("exists").seeds)() {
        let text = String::from_utf8(seed).expect("UTF-8");
        assert!(crdt_core::Doc::from_text(&text).is_ok(), "{text}");
    }
    for seed in (target("row_clock_binary").expect("exists").seeds)() {
        assert!(crdt_core::RowClock::decode(&seed).is_ok());
    }
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in TARGETS {
        let source = fuzz.join(format!("fuzz_targets/{}.rs", target.name));
        let code = fs::read_to_string(&source).unwrap_or_else(|_| panic!("{} is missing", source.display()));
        assert!(
            code.contains(&format!("fuzz_checks::{}(", target.name)),
            "{} does not call its check",
            source.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml has no [[bin]] {}",
            target.name
        );
    }
}

#[test]
fn pairs_split_as_joined() {
    use crdt_core::fuzz_checks::join_pair;
    let joined = join_pair(b"abc", b"de");
    assert_eq!(split_pair(&joined), (&b"abc"[..], &b"de"[..]));
    // Short or lying lengths never panic.
    assert_eq!(split_pair(&[]), (&[][..], &[][..]));
    assert_eq!(split_pair(&[7]), (&[7][..], &[][..]));
    assert_eq!(split_pair(&[0xff, 0xff, 1, 2]), (&[1, 2][..], &[][..]));
}
