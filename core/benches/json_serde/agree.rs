//! The agreement runs of `JSON_SERDE=check`: generated and mutated texts (and, with
//! `--features fuzz-checks`, the fuzz seeds and saved fuzz inputs) read and written by both the
//! hand-written and the serde code, the results compared and tallied by cause of difference.

use std::collections::BTreeMap;
use std::fmt;

use crdt_core::{json, Doc, PnCounter};
use proptest::prelude::*;

use crate::check::short;
use crate::common::{arb_json, ObjectKeys};
use crate::generate::{arb_doc, edited, edits, run_generated};
use crate::inputs::node;
use crate::read_text::{same_doc, same_doc_with, serde_counter, serde_doc};
use crate::read_value::{serde_canonical, Numbers};
use crate::writers::{serde_counter_text, serde_doc_json, serde_doc_text};

/// Agreement counts of one comparison.
#[derive(Default)]
struct Tally {
    inputs: usize,
    accepted: usize,
    agree: usize,
    /// Disagreements by cause.
    causes: BTreeMap<&'static str, usize>,
    /// (input, what differed) for the first few disagreements of no known cause.
    examples: Vec<(String, String)>,
}

/// Why the serde reader differs, where the cause is one of the known gaps.
const EXPONENT: &str = "exponent spelled `e+` (as written: `E`, no sign)";
const DEPTH: &str = "nested deeper than serde_json's 128 levels";
const OTHER: &str = "other";

impl Tally {
    fn record(&mut self, input: &str, accepted: bool, difference: Option<(&'static str, String)>) {
        self.inputs += 1;
        self.accepted += usize::from(accepted);
        match difference {
            None => self.agree += 1,
            Some((cause, what)) => {
                *self.causes.entry(cause).or_default() += 1;
                if cause == OTHER && self.examples.len() < 3 {
                    self.examples.push((short(input), what));
                }
            }
        }
    }

    fn print(&self, name: &str) {
        let disagree: usize = self.causes.values().sum();
        let causes: Vec<String> = self.causes.iter().map(|(cause, n)| format!("{n}: {cause}")).collect();
        println!(
            "| {name} | {} | {} | {} | {disagree} | {} |",
            self.inputs,
            self.accepted,
            self.agree,
            causes.join("; ")
        );
    }
}

/// JSON text with exponents spelled one way (`1E3`, `1e+3` → `1e3`), to tell
/// `arbitrary_precision`'s respelling from other differences.
fn respelled(text: &str) -> String {
    text.replace('E', "e").replace("e+", "e")
}

/// Why a serde result differs from the hand-written one.
fn cause<E: fmt::Display>(hand_ok: Option<&str>, serde: Result<Option<&str>, &E>) -> &'static str {
    match (hand_ok, serde) {
        (Some(a), Ok(Some(b))) if respelled(a) == respelled(b) => EXPONENT,
        (Some(_), Err(e)) if e.to_string().contains("recursion limit") => DEPTH,
        _ => OTHER,
    }
}

/// Where a serde reader's result differs from the hand-written one's (`None`: same value,
/// or both refused), and why.
fn difference<A: PartialEq + fmt::Debug, E1: fmt::Display, E2: fmt::Display>(
    hand: &Result<A, E1>,
    serde: &Result<A, E2>,
) -> Option<(&'static str, String)> {
    let what = difference_text(hand, serde)?;
    let text = |a: &A| format!("{a:?}");
    let hand_text = hand.as_ref().ok().map(text);
    let serde_text = serde.as_ref().map(|a| Some(text(a)));
    let cause = cause(hand_text.as_deref(), serde_text.as_ref().map(Option::as_deref));
    Some((cause, what))
}

fn difference_text<A: PartialEq + fmt::Debug, E1: fmt::Display, E2: fmt::Display>(
    hand: &Result<A, E1>,
    serde: &Result<A, E2>,
) -> Option<String> {
    match (hand, serde) {
        (Ok(a), Ok(b)) if a == b => None,
        (Err(_), Err(_)) => None,
        (Ok(a), Ok(b)) => Some(format!(
            "hand {}, serde {}",
            short(&format!("{a:?}")),
            short(&format!("{b:?}"))
        )),
        (Ok(_), Err(e)) => Some(format!("hand accepts, serde refuses: {}", short(&e.to_string()))),
        (Err(e), Ok(_)) => Some(format!("hand refuses ({}), serde accepts", short(&e.to_string()))),
    }
}

/// The JSON comparisons and the serde path's own invariants (what `fuzz_checks::json_text`
/// checks of the hand-written reader): idempotent, and what it accepts it reads back.
fn compare_json(text: &str, any: &mut Tally, raw: &mut Tally) {
    let hand = json::canonical_json(text);
    for (tally, numbers) in [(any, Numbers::Any), (raw, Numbers::Raw)] {
        let serde = serde_canonical(text, numbers);
        if let Ok(out) = &serde {
            let again = serde_canonical(out, numbers);
            assert_eq!(
                again.as_ref().ok(),
                Some(out),
                "serde {numbers:?} not idempotent on {text:?}"
            );
        }
        tally.record(text, hand.is_ok(), difference(&hand, &serde));
    }
}

/// The doc comparisons: reading (both serde readers) and, for what the hand-written reader
/// accepts, writing and reading back (fuzz_checks' text round trip, through serde).
fn compare_doc(text: &str, any: &mut Tally, raw: &mut Tally, written: &mut Tally) {
    let hand = Doc::from_text(text);
    for (tally, numbers) in [(any, Numbers::Any), (raw, Numbers::Raw)] {
        let serde = serde_doc(text, numbers);
        let differs = match (&hand, &serde) {
            (Ok(doc), Ok(read)) if !same_doc(read, doc) => {
                let respelling = same_doc_with(read, doc, |a, b| respelled(a) == respelled(b));
                let what = format!("different docs: {}", short(&format!("{read:?}")));
                Some((if respelling { EXPONENT } else { OTHER }, what))
            }
            (Ok(_), Ok(_)) | (Err(_), Err(_)) => None,
            (Ok(_), Err(e)) => Some((
                cause(Some(""), Err(e)),
                format!("hand accepts, serde refuses: {}", short(&e.to_string())),
            )),
            (Err(e), Ok(_)) => Some((
                OTHER,
                format!("hand refuses ({}), serde accepts", short(&e.to_string())),
            )),
        };
        tally.record(text, hand.is_ok(), differs);
    }
    if let Ok(doc) = &hand {
        let text = serde_doc_text(doc);
        let json = serde_doc_json(doc);
        let differs = if text != doc.to_text() {
            Some(format!("to_text: {}", short(&text)))
        } else if json != doc.to_json() {
            Some(format!("to_json: {}", short(&json)))
        } else if !serde_doc(&text, Numbers::Raw).is_ok_and(|read| same_doc(&read, doc)) {
            Some("serde_raw does not read serde's own text back".to_owned())
        } else {
            None
        };
        written.record(&text, true, differs.map(|what| (OTHER, what)));
    }
}

fn compare_counter(text: &str, read: &mut Tally, written: &mut Tally) {
    let hand = PnCounter::from_text(text);
    let serde = serde_counter(text);
    let hand_entries = hand.as_ref().map(|c| c.entries().to_vec());
    read.record(text, hand.is_ok(), difference(&hand_entries, &serde));
    if let Ok(counter) = &hand {
        let out = serde_counter_text(counter);
        let differs = (out != counter.to_text()).then(|| (OTHER, format!("to_text: {}", short(&out))));
        written.record(&out, true, differs);
    }
}

/// Runs the comparisons (`JSON_SERDE_CASES` generated inputs of each kind, default 4000)
/// and prints the tally.
pub(crate) fn run() {
    let cases: u32 = std::env::var("JSON_SERDE_CASES").map_or(4000, |n| n.parse().expect("a number"));
    let (mut json_any, mut json_raw) = (Tally::default(), Tally::default());
    let (mut doc_any, mut doc_raw, mut doc_written) = (Tally::default(), Tally::default(), Tally::default());
    let (mut counter_read, mut counter_written) = (Tally::default(), Tally::default());

    run_generated(cases, arb_json(ObjectKeys::MayRepeat), |text| {
        compare_json(&text, &mut json_any, &mut json_raw)
    });
    run_generated(cases, (arb_json(ObjectKeys::MayRepeat), edits()), |(text, edits)| {
        compare_json(&edited(&text, edits), &mut json_any, &mut json_raw)
    });
    run_generated(cases, r#"[{}\[\]",: 0-9a-f\-.eE\\utrnl]{0,120}"#, |text| {
        compare_json(&text, &mut json_any, &mut json_raw);
        compare_doc(&text, &mut doc_any, &mut doc_raw, &mut doc_written);
    });
    run_generated(cases, any::<String>(), |text| {
        compare_json(&text, &mut json_any, &mut json_raw);
        compare_doc(&text, &mut doc_any, &mut doc_raw, &mut doc_written);
    });
    run_generated(cases, arb_doc(), |doc| {
        compare_doc(&doc.to_text(), &mut doc_any, &mut doc_raw, &mut doc_written);
        compare_json(&doc.to_json(), &mut json_any, &mut json_raw);
    });
    run_generated(cases, (arb_doc(), edits()), |(doc, edits)| {
        compare_doc(
            &edited(&doc.to_text(), edits),
            &mut doc_any,
            &mut doc_raw,
            &mut doc_written,
        );
    });
    let counter = (
        prop::collection::vec((0u32..6, any::<i64>()), 0..8),
        edits(),
        any::<bool>(),
    )
        .prop_map(|(adds, edits, edit)| {
            let mut counter = PnCounter::new();
            for (n, delta) in adds {
                let _ = counter.add(node(n), delta);
            }
            let text = counter.to_text();
            if edit {
                edited(&text, edits)
            } else {
                text
            }
        });
    run_generated(cases, counter, |text| {
        compare_counter(&text, &mut counter_read, &mut counter_written)
    });
    fuzz_inputs(&mut [
        &mut json_any,
        &mut json_raw,
        &mut doc_any,
        &mut doc_raw,
        &mut doc_written,
        &mut counter_read,
        &mut counter_written,
    ]);

    println!("\n## Agreement with the hand-written reader and writer\n");
    println!("| comparison | inputs | accepted by hand-written | agree | disagree | why |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    let tallies = [
        ("JSON value, serde_any", &json_any),
        ("JSON value, serde_raw", &json_raw),
        ("doc text, serde_any", &doc_any),
        ("doc text, serde_raw", &doc_raw),
        ("doc to_text/to_json, serde", &doc_written),
        ("counter text, serde", &counter_read),
        ("counter to_text, serde", &counter_written),
    ];
    for (name, tally) in tallies {
        tally.print(name);
    }
    println!();
    for (name, tally) in tallies {
        for (input, what) in &tally.examples {
            println!("- {name}: `{input}`: {what}");
        }
    }
}

/// The fuzz targets' seeds and the saved fuzz inputs (tests/fuzz_regressions).
#[cfg(feature = "fuzz-checks")]
fn fuzz_inputs(tallies: &mut [&mut Tally; 7]) {
    use crdt_core::fuzz_checks::target;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    for name in ["json_text", "doc_text", "counter_text", "row_clock_text"] {
        let mut inputs = (target(name).expect("a target").seeds)();
        if let Ok(files) = std::fs::read_dir(dir.join(name)) {
            for file in files {
                inputs.push(std::fs::read(file.expect("readable").path()).expect("readable"));
            }
        }
        for input in inputs {
            let Ok(text) = std::str::from_utf8(&input) else {
                continue;
            };
            let [json_any, json_raw, doc_any, doc_raw, doc_written, counter_read, counter_written] = tallies;
            match name {
                "json_text" => compare_json(text, json_any, json_raw),
                "counter_text" => compare_counter(text, counter_read, counter_written),
                _ => compare_doc(text, doc_any, doc_raw, doc_written),
            }
        }
    }
}

#[cfg(not(feature = "fuzz-checks"))]
fn fuzz_inputs(_: &mut [&mut Tally; 7]) {
    println!("\n(without --features fuzz-checks: the fuzz seeds and saved inputs are not replayed)");
}
