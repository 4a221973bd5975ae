//! The cases: each input through each implementation (hand-written, `serde_any`, `serde_raw`,
//! serde writers), the serde result first checked to equal the hand-written one. Ids are
//! `<group>/<input>/<implementation>`; `JSON_SERDE=list` lists them.

use std::hint::black_box;

use crdt_core::{json, Doc, PnCounter};

use crate::inputs::{
    bench_counter, doc10, doc100, escaped_strings, long_numbers, nested, nested_doc, numbers_doc, row_clock6, small_doc,
};
use crate::read_text::{same_doc, serde_counter, serde_doc};
use crate::read_value::{serde_canonical, Numbers};
use crate::writers::{serde_counter_text, serde_doc_json, serde_doc_json_checked, serde_doc_text};

pub(crate) struct Case {
    /// `<group>/<input>/<implementation>`.
    pub(crate) id: String,
    pub(crate) run: Box<dyn FnMut()>,
}

fn case(group: &str, input: &str, implementation: &str, run: impl FnMut() + 'static) -> Case {
    Case {
        id: format!("{group}/{input}/{implementation}"),
        run: Box::new(run),
    }
}

pub(crate) fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // JSON values: what patch/put/`jsonb -> doc` read, member by member.
    let values = [
        ("small", r#"{"name": "x", "n": 5}"#.to_owned()),
        ("doc10_plain", doc10().to_json()),
        ("obj100", doc100().to_json()),
        ("nested100", nested(100)),
        ("numbers", long_numbers()),
        ("strings", escaped_strings()),
    ];
    for (name, text) in values {
        let hand = json::canonical_json(&text).expect("valid");
        for numbers in [Numbers::Any, Numbers::Raw] {
            let read = serde_canonical(&text, numbers).map_err(|error| error.to_string());
            assert_eq!(read.as_ref(), Ok(&hand), "{name} {numbers:?}");
        }
        let t = text.clone();
        cases.push(case("json_value", name, "hand", move || {
            black_box(json::canonical_json(black_box(&t)).expect("valid"));
        }));
        let t = text.clone();
        cases.push(case("json_value", name, "serde_any", move || {
            black_box(serde_canonical(black_box(&t), Numbers::Any).expect("valid"));
        }));
        let t = text.clone();
        cases.push(case("json_value", name, "serde_raw", move || {
            black_box(serde_canonical(black_box(&t), Numbers::Raw).expect("valid"));
        }));
        // Stored values are checked to be canonical on every decode: the hand-written check
        // builds nothing; serde can only build the text and compare.
        let canonical = hand.clone();
        cases.push(case("json_check", name, "hand", move || {
            assert!(json::is_canonical_json(black_box(&canonical)));
        }));
        let canonical = hand;
        cases.push(case("json_check", name, "serde_raw", move || {
            let text = black_box(&canonical);
            assert!(serde_canonical(text, Numbers::Raw).is_ok_and(|out| out == *text));
        }));
    }

    // The doc text form: what `doc_in` (and `row_clock_in`) read.
    let docs = [
        ("small", small_doc()),
        ("doc10", doc10()),
        ("doc100", doc100()),
        ("nested50", nested_doc(50)),
        ("numbers", numbers_doc()),
        ("row_clock6", Doc::from_text(&row_clock6().to_text()).expect("a doc")),
    ];
    for (name, doc) in &docs {
        let text = doc.to_text();
        for numbers in [Numbers::Any, Numbers::Raw] {
            let read = serde_doc(&text, numbers).expect("valid");
            assert!(same_doc(&read, doc), "{name}");
        }
        let t = text.clone();
        cases.push(case("doc_text", name, "hand", move || {
            black_box(Doc::from_text(black_box(&t)).expect("valid"));
        }));
        // What `doc_in` runs: a shortcut for the written layout (no counters, scalar values),
        // the reader otherwise; it also writes the binary form.
        let t = text.clone();
        cases.push(case("doc_text", name, "hand_encode_text", move || {
            black_box(Doc::encode_text(black_box(&t)).expect("valid"));
        }));
        let t = text.clone();
        cases.push(case("doc_text", name, "serde_any", move || {
            black_box(serde_doc(black_box(&t), Numbers::Any).expect("valid"));
        }));
        let t = text;
        cases.push(case("doc_text", name, "serde_raw", move || {
            black_box(serde_doc(black_box(&t), Numbers::Raw).expect("valid"));
        }));
    }

    // The counter text form: what `counter_in` reads.
    for nodes in [3, 10] {
        let counter = bench_counter(nodes);
        let text = counter.to_text();
        assert_eq!(serde_counter(&text).expect("valid"), counter.entries());
        let name = format!("{nodes}_nodes");
        let t = text.clone();
        cases.push(case("counter_text", &name, "hand", move || {
            black_box(PnCounter::from_text(black_box(&t)).expect("valid"));
        }));
        let t = text.clone();
        cases.push(case("counter_text", &name, "hand_encode_text", move || {
            black_box(PnCounter::encode_text(black_box(&t)).expect("valid"));
        }));
        let t = text;
        cases.push(case("counter_text", &name, "serde", move || {
            black_box(serde_counter(black_box(&t)).expect("valid"));
        }));
    }

    // Writing: `doc_out`, `doc::jsonb`, `counter_out`.
    for (name, doc) in docs {
        assert_eq!(serde_doc_text(&doc), doc.to_text(), "{name}");
        assert_eq!(serde_doc_json(&doc), doc.to_json(), "{name}");
        let d = doc.clone();
        cases.push(case("doc_to_text", name, "hand", move || {
            black_box(black_box(&d).to_text());
        }));
        let d = doc.clone();
        cases.push(case("doc_to_text", name, "serde", move || {
            black_box(serde_doc_text(black_box(&d)));
        }));
        let d = doc.clone();
        cases.push(case("doc_to_json", name, "hand", move || {
            black_box(black_box(&d).to_json());
        }));
        let d = doc.clone();
        cases.push(case("doc_to_json", name, "serde", move || {
            black_box(serde_doc_json(black_box(&d)));
        }));
        // The same through public API only: each value made a `RawValue`, which parses it.
        assert_eq!(serde_doc_json_checked(&doc), doc.to_json(), "{name}");
        let d = doc;
        cases.push(case("doc_to_json", name, "serde_public", move || {
            black_box(serde_doc_json_checked(black_box(&d)));
        }));
    }
    for nodes in [3, 10] {
        let counter = bench_counter(nodes);
        assert_eq!(serde_counter_text(&counter), counter.to_text());
        let name = format!("{nodes}_nodes");
        let c = counter.clone();
        cases.push(case("counter_to_text", &name, "hand", move || {
            black_box(black_box(&c).to_text());
        }));
        let c = counter;
        cases.push(case("counter_to_text", &name, "serde", move || {
            black_box(serde_counter_text(black_box(&c)));
        }));
    }
    // Criterion lists groups as they come.
    cases.sort_by(|a, b| a.id.split('/').next().cmp(&b.id.split('/').next()));
    cases
}
