//! `JSON_SERDE=check`: the guarantee probes (what each reader does with inputs at the edges of
//! the guarantees, the stack a deep value needs, the largest allocation and the time on hostile
//! input), printed as markdown tables, then the agreement runs of `agree.rs`.
//! `JSON_SERDE=stack` is the child process the stack test starts.

use std::fmt;

use crdt_core::{json, Doc, NodeId, PnCounter};

use crate::agree;
use crate::allocator::watched;
use crate::inputs::nested;
use crate::read_text::{serde_counter, serde_doc, SerdeProperty};
use crate::read_value::{serde_canonical, Numbers, MAX_DEPTH};

/// The probes, then the agreement runs.
pub(crate) fn run() {
    probes();
    agree::run();
}

/// At most this many characters of a result, so the table stays readable.
pub(crate) fn short(text: &str) -> String {
    let flat: String = text.chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
    match flat.char_indices().nth(70) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

fn shown<E: fmt::Display>(result: &Result<String, E>) -> String {
    match result {
        Ok(text) => format!("ok `{}`", short(text)),
        Err(error) => format!("error: {}", short(&error.to_string())),
    }
}

/// What each reader does with inputs at the edges of the guarantees.
fn probes() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let probes: Vec<(&str, String)> = vec![
        ("exponent as written (1E+2)", "1E+2".into()),
        ("exponent as written (1e3)", "1e3".into()),
        (
            "digits as written",
            "[1.50, -0, 0.10e-7, 12345678901234567890123]".into(),
        ),
        ("duplicate key", r#"{"a": 1, "a": 2}"#.into()),
        (
            "duplicate key, nested, unsorted",
            r#"{"b": {"x": 1, "y": 2, "x": 3}}"#.into(),
        ),
        (
            "an object serde takes for a number",
            r#"{"$serde_json::private::Number": "1"}"#.into(),
        ),
        (
            "... and for a non-number",
            r#"{"$serde_json::private::Number": "x"}"#.into(),
        ),
        ("nested 128 deep", deep(128)),
        ("nested 129 deep", deep(129)),
        ("nested 1000 deep", deep(1000)),
        ("nested 1001 deep", deep(1001)),
        (
            "a string spliced into the text",
            r#"{"k": {"$serde_json::private::Number": "1, \"admin\": true"}}"#.into(),
        ),
        ("\\u0000 in a string", r#"["\u0000"]"#.into()),
        ("\\u0000 in a key", r#"{"\u0000": 1}"#.into()),
        ("lone surrogate", r#""\ud800""#.into()),
        ("raw control character", "\"a\u{1}b\"".into()),
        ("trailing comma", r#"{"a": 1,}"#.into()),
        ("leading zero", "01".into()),
        ("error position", "[1, 2,\n 3 x]".into()),
        ("escapes rewritten", r#""\u0041\/\u001F\u007f""#.into()),
    ];
    println!("## Guarantee probes: JSON values (canonical_json)\n");
    println!("| probe | hand-written | serde_any | serde_raw |");
    println!("| --- | --- | --- | --- |");
    for (name, text) in &probes {
        let hand = json::canonical_json(text);
        let any = serde_canonical(text, Numbers::Any);
        let raw = serde_canonical(text, Numbers::Raw);
        println!("| {name} | {} | {} | {} |", shown(&hand), shown(&any), shown(&raw));
    }

    // Doc text: a value's number text, and the message a golden file holds.
    let a = NodeId::from_bytes([0xa; 16]);
    let doc_probes: Vec<(&str, String)> = vec![
        (
            "number in a doc value (1E+2)",
            format!(
                r#"{{"value": {{"k": 1E+2}}, "replaced": null, "stamps": {{"k": [1, "{a}"]}}, "counters": {{}}, "removed": {{}}}}"#
            ),
        ),
        (
            "duplicate section",
            r#"{"value": {}, "value": {}, "replaced": null, "stamps": {}, "counters": {}, "removed": {}}"#.to_owned(),
        ),
        (
            "hlc beyond u64",
            format!(
                r#"{{"value": {{"k": 1}}, "replaced": null, "stamps": {{"k": [18446744073709551616, "{a}"]}}, "counters": {{}}, "removed": {{}}}}"#
            ),
        ),
        (
            "value nested 1000 deep",
            format!(
                r#"{{"value": {{"k": {}}}, "replaced": null, "stamps": {{"k": [1, "{a}"]}}, "counters": {{}}, "removed": {{}}}}"#,
                deep(1000)
            ),
        ),
    ];
    println!("\n## Guarantee probes: doc text (Doc::from_text, then to_text)\n");
    println!("| probe | hand-written | serde_any | serde_raw |");
    println!("| --- | --- | --- | --- |");
    for (name, text) in &doc_probes {
        let hand = Doc::from_text(text).map(|doc| doc.to_text());
        let serde = |numbers| {
            serde_doc(text, numbers).map(|doc| match doc.properties.get("k") {
                Some(SerdeProperty::Value { json, .. }) => format!("k = {json}"),
                _ => "no k".to_owned(),
            })
        };
        println!(
            "| {name} | {} | {} | {} |",
            shown(&hand),
            shown(&serde(Numbers::Any)),
            shown(&serde(Numbers::Raw))
        );
    }
    let counter = format!(r#"{{"value": 7, "nodes": {{"{a}": [1, 0]}}}}"#);
    println!(
        "\ncounter_errors.out's DETAIL: hand-written: {}\n                             serde: {}",
        shown(&PnCounter::from_text(&counter).map(|c| c.to_text())),
        shown(&serde_counter(&counter).map(|_| String::new()))
    );

    // Allocation and time on hostile input.
    stack_needed();
    println!("\n## Hostile input: largest single allocation and time\n");
    println!("| input | bytes | reader | result | largest allocation | time |");
    println!("| --- | ---: | --- | --- | ---: | ---: |");
    let hostile: Vec<(&str, String)> = vec![
        ("[{\"a\": × 1,000,000 (unclosed)", "[{\"a\":".repeat(1_000_000)),
        ("1,000 levels, 1 MB string at the bottom", {
            let body = format!("\"{}\"", "x".repeat(1 << 20));
            format!("{}{body}{}", "[".repeat(1000), "]".repeat(1000))
        }),
        ("4 MB of \\u00e9 escapes", format!("\"{}\"", "\\u00e9".repeat(700_000))),
        ("100,000 members", {
            let members: Vec<String> = (0..100_000).map(|i| format!("\"k{i}\": {i}")).collect();
            format!("{{{}}}", members.join(", "))
        }),
    ];
    for (name, text) in &hostile {
        type Reader = Box<dyn Fn(&str) -> Result<String, String>>;
        let readers: [(&str, Reader); 3] = [
            ("hand", Box::new(|t| json::canonical_json(t).map_err(|e| e.to_string()))),
            (
                "serde_any",
                Box::new(|t| serde_canonical(t, Numbers::Any).map_err(|e| e.to_string())),
            ),
            (
                "serde_raw",
                Box::new(|t| serde_canonical(t, Numbers::Raw).map_err(|e| e.to_string())),
            ),
        ];
        for (reader, read) in &readers {
            let (result, largest, took) = watched(|| read(text));
            let result = match result {
                Ok(out) => format!("ok, {} bytes", out.len()),
                Err(error) => format!("error: {}", short(&error)),
            };
            println!(
                "| {name} | {} | {reader} | {result} | {largest} | {:.1} ms |",
                text.len(),
                took.as_secs_f64() * 1e3
            );
        }
    }
}

/// `JSON_SERDE=stack`: reads a value nested `JSON_SERDE_DEPTH` levels with the reader
/// `JSON_SERDE_READER` on a thread of `JSON_SERDE_STACK` bytes of stack; a stack overflow
/// aborts the process.
pub(crate) fn stack_probe() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let depth: usize = var("JSON_SERDE_DEPTH").parse().expect("a number");
    let stack: usize = var("JSON_SERDE_STACK").parse().expect("a number");
    let reader = var("JSON_SERDE_READER");
    let text = nested(depth);
    let ok = std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || match reader.as_str() {
            "hand" => json::canonical_json(&text).is_ok(),
            "serde_any" => serde_canonical(&text, Numbers::Any).is_ok(),
            _ => serde_canonical(&text, Numbers::Raw).is_ok(),
        })
        .expect("a thread")
        .join()
        .expect("no panic");
    std::process::exit(if ok { 0 } else { 2 });
}

/// The least thread stack (of those tried) each reader needs for a value nested as deep as
/// it accepts, each tried in a child process.
fn stack_needed() {
    println!("\n## Stack needed to read a value nested to the limit\n");
    println!("| reader | depth | smallest stack that sufficed (of 16 KiB × 2^k) |");
    println!("| --- | ---: | ---: |");
    for (reader, depth) in [("hand", MAX_DEPTH), ("serde_any", 127), ("serde_raw", MAX_DEPTH)] {
        let sufficed = (0..10).map(|k| (16 << 10) << k).find(|&stack: &usize| {
            std::process::Command::new(std::env::current_exe().expect("this program"))
                .env("JSON_SERDE", "stack")
                .env("JSON_SERDE_READER", reader)
                .env("JSON_SERDE_DEPTH", depth.to_string())
                .env("JSON_SERDE_STACK", stack.to_string())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
        let shown = sufficed.map_or("more than 8 MiB".to_owned(), |bytes| format!("{} KiB", bytes >> 10));
        println!("| {reader} | {depth} | {shown} |");
    }
}
