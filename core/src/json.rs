//! Arbitrary JSON values as canonical text: the values of `crdt.doc` properties (docs/design.md,
//! "Doc").
//!
//! The canonical text is PostgreSQL `jsonb` output style, so equal values are equal bytes:
//! - `", "` and `": "` as separators, no other whitespace (`{"a": 1, "b": [1, 2]}`);
//! - object keys sorted by their UTF-8 bytes; a key given twice in one object is an error
//!   (jsonb would silently keep the last);
//! - strings re-escaped: `"` and `\` escaped, control characters as `\b \f \n \r \t` or
//!   `\u00XX`, everything else raw UTF-8; `\u0000` is refused, as `jsonb` refuses it
//!   (PostgreSQL text cannot hold it);
//! - numbers exactly as written (validated against the JSON grammar), so `1.50` stays `1.50`.
//!
//! Values are read by one loop with an explicit stack ([`MAX_DEPTH`] levels), never by
//! recursion. The same loop either writes the canonical text (sorting object members) or,
//! for stored bytes, checks that a text already is canonical without allocating for it.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::text::{ArrayCursor, JsonReader, ObjectCursor, TextError};

/// The deepest nesting of arrays and objects accepted: far deeper than real documents, and
/// below the depth PostgreSQL's own JSON parser gives up at.
pub const MAX_DEPTH: usize = 1000;

const NUL_EXPECTED: &str = "a string without \\u0000 (PostgreSQL text cannot hold it)";

/// The canonical text of the one JSON value `text` holds (surrounding whitespace allowed).
pub fn canonical_json(text: &str) -> Result<String, TextError> {
    let mut reader = JsonReader::new(text);
    let mut out = String::new();
    read_canonical(&mut reader, &mut out)?;
    reader.finish()?;
    Ok(out)
}

/// Whether `text` is exactly the canonical text of a JSON value. Builds no copy of it: it
/// allocates only a small entry per nesting level and the unescaped form of strings that
/// contain escapes.
pub fn is_canonical_json(text: &str) -> bool {
    scalar_is_canonical(text).unwrap_or_else(|| transcribes_to_itself(text))
}

/// The common scalars decided at a glance (stored values are checked on every read, so this
/// is a hot path): `true`, `false`, `null`, a number (always kept as written) and a string
/// with nothing to escape. `None` for anything else.
fn scalar_is_canonical(text: &str) -> Option<bool> {
    match text.as_bytes() {
        b"true" | b"false" | b"null" => Some(true),
        [b'-' | b'0'..=b'9', ..] => Some(
            JsonReader::new(text)
                .number("a JSON value")
                .is_ok_and(|number| number.text.len() == text.len()),
        ),
        [b'"', inner @ .., b'"'] if crate::text::first_quote_escape_or_control(inner).is_none() => Some(true),
        _ => None,
    }
}

/// [`is_canonical_json`] the long way, by transcribing against the text itself.
fn transcribes_to_itself(text: &str) -> bool {
    let mut reader = JsonReader::new(text);
    let mut expect = Expect { text, pos: 0 };
    transcribe(&mut reader, &mut expect).is_ok() && expect.pos == text.len()
}

/// Reads one JSON value from `reader` and appends its canonical text to `out`.
pub(crate) fn read_canonical(reader: &mut JsonReader<'_>, out: &mut String) -> Result<(), TextError> {
    transcribe(reader, out)
}

/// What kind of value a canonical text holds, as an error message names it: `"an object"`,
/// `"an array"`, `"a string"`, `"a number"`, `"a boolean"` or `"null"`.
pub fn kind_name(canonical: &str) -> &'static str {
    match canonical.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Whether a canonical text is a JSON number.
pub fn is_number(canonical: &str) -> bool {
    matches!(canonical.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

/// A value as PostgreSQL's `->>` shows it: a string's contents unescaped, any other value its
/// JSON text.
pub fn as_text(canonical: &str) -> Cow<'_, str> {
    if canonical.starts_with('"') {
        if let Ok(contents) = JsonReader::new(canonical).string() {
            return contents;
        }
    }
    Cow::Borrowed(canonical)
}

/// Appends `s` as a canonical JSON string (quoted and escaped).
pub fn write_string(out: &mut String, s: &str) {
    // Writing into a String cannot fail.
    let _ = write_escaped(out, s);
}

/// Where canonical text goes: a `String` being built, or a comparison against text that is
/// supposed to be canonical already.
trait Sink {
    /// Appends `piece`.
    fn push(&mut self, piece: &str) -> Result<(), TextError>;
    /// Everything written so far.
    fn written(&self) -> &str;
    /// Whether members out of order may be sorted (when building) or are an error (when
    /// checking).
    const SORTS: bool;
    /// Puts the members of the object written since `start` in key order.
    fn sort_members(&mut self, start: usize, members: &mut [Member]) -> Result<(), TextError>;
}

impl Sink for String {
    fn push(&mut self, piece: &str) -> Result<(), TextError> {
        self.push_str(piece);
        Ok(())
    }

    fn written(&self) -> &str {
        self
    }

    const SORTS: bool = true;

    fn sort_members(&mut self, start: usize, members: &mut [Member]) -> Result<(), TextError> {
        // Each member's text runs to the ", " before the next one (the last one to the end).
        let ends: Vec<usize> = members
            .iter()
            .skip(1)
            .map(|m| m.at - 2)
            .chain(std::iter::once(self.len()))
            .collect();
        let mut spans: Vec<(Member, usize)> = members.iter().copied().zip(ends).collect();
        // Stable: among equal keys the later one stays second, and is the one reported.
        spans.sort_by(|(a, _), (b, _)| cmp_written_keys(self, a.at, b.at));
        if let Some(pair) = spans
            .windows(2)
            .find(|pair| cmp_written_keys(self, pair[0].0.at, pair[1].0.at) == Ordering::Equal)
        {
            let member = pair[1].0;
            let key = written_key(self, member.at);
            return Err(TextError::DuplicateKey {
                offset: member.offset,
                key: crate::text::excerpt(&key),
            });
        }
        let mut sorted = String::with_capacity(self.len() - start);
        for (i, (member, end)) in spans.iter().enumerate() {
            if i > 0 {
                sorted.push_str(", ");
            }
            sorted.push_str(self.get(member.at..*end).unwrap_or_default());
        }
        self.truncate(start);
        self.push_str(&sorted);
        Ok(())
    }
}

/// Checks text against what the canonical writer would write, piece by piece.
struct Expect<'t> {
    text: &'t str,
    pos: usize,
}

impl Sink for Expect<'_> {
    fn push(&mut self, piece: &str) -> Result<(), TextError> {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        if rest.starts_with(piece) {
            self.pos += piece.len();
            Ok(())
        } else {
            Err(TextError::Syntax {
                offset: self.pos,
                expected: "canonical JSON text",
                found: rest.chars().next(),
            })
        }
    }

    fn written(&self) -> &str {
        self.text.get(..self.pos).unwrap_or_default()
    }

    const SORTS: bool = false;

    fn sort_members(&mut self, start: usize, _members: &mut [Member]) -> Result<(), TextError> {
        Err(TextError::Syntax {
            offset: start,
            expected: "object keys in canonical order",
            found: None,
        })
    }
}

/// One member of an object being written.
#[derive(Debug, Clone, Copy)]
struct Member {
    /// Where its key's opening quote was written.
    at: usize,
    /// Where its key is in the input (for error messages).
    offset: usize,
}

/// An array or object that has been opened and not yet closed.
enum Open {
    Array {
        cursor: ArrayCursor,
        /// Whether an element has been written (so the next one needs a separator).
        has_elements: bool,
    },
    Object {
        cursor: ObjectCursor,
        /// Where the first member starts in the output.
        start: usize,
        /// Its members begin at this index of the shared member list.
        members_from: usize,
        /// Whether a key arrived out of order, so the members need sorting at the end.
        unsorted: bool,
    },
}

/// The one reader of arbitrary JSON values: reads a value from `reader` and writes its
/// canonical text to `sink`. A loop over an explicit stack instead of recursion.
fn transcribe<S: Sink>(reader: &mut JsonReader<'_>, sink: &mut S) -> Result<(), TextError> {
    let mut stack: Vec<Open> = Vec::new();
    // Members of every open object. When only checking, each open object keeps just its
    // latest member (all the order check needs).
    let mut members: Vec<Member> = Vec::new();
    loop {
        // A value starts here.
        match reader.peek_token() {
            Some(open @ (b'{' | b'[')) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(TextError::TooDeep {
                        offset: reader.offset(),
                        limit: MAX_DEPTH,
                    });
                }
                if open == b'{' {
                    let cursor = reader.begin_object("'{'")?;
                    sink.push("{")?;
                    stack.push(Open::Object {
                        cursor,
                        start: sink.written().len(),
                        members_from: members.len(),
                        unsorted: false,
                    });
                } else {
                    let cursor = reader.begin_array("'['")?;
                    sink.push("[")?;
                    stack.push(Open::Array {
                        cursor,
                        has_elements: false,
                    });
                }
            }
            Some(b'"') => {
                let at = reader.offset();
                let s = reader.string()?;
                if s.contains('\0') {
                    return Err(reader.syntax_error(at, NUL_EXPECTED));
                }
                write_escaped(sink, &s)?;
            }
            Some(b't') => {
                reader.literal("true", "a JSON value")?;
                sink.push("true")?;
            }
            Some(b'f') => {
                reader.literal("false", "a JSON value")?;
                sink.push("false")?;
            }
            Some(b'n') => {
                reader.literal("null", "a JSON value")?;
                sink.push("null")?;
            }
            Some(b'-' | b'0'..=b'9') => {
                let number = reader.number("a JSON value")?;
                sink.push(number.text)?;
            }
            _ => return Err(reader.syntax_error(reader.offset(), "a JSON value")),
        }
        // Close what is complete, and move on to the next value (or finish).
        loop {
            match stack.last_mut() {
                None => return Ok(()),
                Some(Open::Array { cursor, has_elements }) => {
                    if reader.next_element(cursor)? {
                        if *has_elements {
                            sink.push(", ")?;
                        }
                        *has_elements = true;
                        break;
                    }
                    sink.push("]")?;
                    stack.pop();
                }
                Some(Open::Object {
                    cursor,
                    start,
                    members_from,
                    unsorted,
                }) => match reader.next_key(cursor)? {
                    Some((key, offset)) => {
                        if key.contains('\0') {
                            return Err(reader.syntax_error(offset, NUL_EXPECTED));
                        }
                        let previous = members.get(*members_from..).and_then(<[Member]>::last).copied();
                        if previous.is_some() {
                            sink.push(", ")?;
                        }
                        let at = sink.written().len();
                        write_escaped(sink, &key)?;
                        sink.push(": ")?;
                        let member = Member { at, offset };
                        if let Some(previous) = previous {
                            let order = cmp_written_keys(sink.written(), previous.at, at);
                            if order != Ordering::Less {
                                if !S::SORTS {
                                    return Err(if order == Ordering::Equal {
                                        TextError::DuplicateKey {
                                            offset,
                                            key: crate::text::excerpt(&key),
                                        }
                                    } else {
                                        reader.syntax_error(offset, "object keys in canonical order")
                                    });
                                }
                                *unsorted = true;
                            }
                            if !S::SORTS {
                                members.truncate(*members_from);
                            }
                        }
                        members.push(member);
                        break;
                    }
                    None => {
                        if *unsorted {
                            let from = *members_from;
                            sink.sort_members(*start, members.get_mut(from..).unwrap_or_default())?;
                        }
                        members.truncate(*members_from);
                        sink.push("}")?;
                        stack.pop();
                    }
                },
            }
        }
    }
}

/// Writes `s` as a canonical JSON string, in runs of characters that need no escape.
fn write_escaped<S: Sink>(sink: &mut S, s: &str) -> Result<(), TextError> {
    sink.push("\"")?;
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c < ' ' => "",
            _ => continue,
        };
        sink.push(s.get(run_start..i).unwrap_or_default())?;
        if escaped.is_empty() {
            // Other control characters: \u00XX with lowercase hex, as jsonb writes them.
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let code = c as usize;
            let hex = [b'\\', b'u', b'0', b'0', HEX[code >> 4], HEX[code & 0xf]];
            sink.push(std::str::from_utf8(&hex).unwrap_or_default())?;
        } else {
            sink.push(escaped)?;
        }
        run_start = i + c.len_utf8();
    }
    sink.push(s.get(run_start..).unwrap_or_default())?;
    sink.push("\"")
}

/// Compares two keys written canonically in `written` (at the offsets of their opening
/// quotes) by their unescaped UTF-8 bytes, the order canonical objects use. Code point order
/// is UTF-8 byte order, so comparing the unescaped characters is enough.
fn cmp_written_keys(written: &str, a: usize, b: usize) -> Ordering {
    let key = |at: usize| Unescape {
        rest: written.get(at + 1..).unwrap_or_default().chars(),
    };
    key(a).cmp(key(b))
}

/// The unescaped key written at `at` (for an error message).
fn written_key(written: &str, at: usize) -> String {
    Unescape {
        rest: written.get(at + 1..).unwrap_or_default().chars(),
    }
    .collect()
}

/// The characters of a canonically escaped JSON string (after its opening quote), up to the
/// closing quote. Only sees text this module wrote or verified; stops quietly on anything else.
struct Unescape<'a> {
    rest: std::str::Chars<'a>,
}

impl Iterator for Unescape<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self.rest.next()? {
            '"' => None,
            '\\' => match self.rest.next()? {
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'u' => {
                    let mut code = 0;
                    for _ in 0..4 {
                        code = code * 16 + self.rest.next()?.to_digit(16)?;
                    }
                    char::from_u32(code)
                }
                other => Some(other),
            },
            c => Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_shortcut_agrees_with_transcribing() {
        let cases = [
            "true",
            "false",
            "null",
            "nul",
            "truex",
            "0",
            "-0",
            "01",
            "-",
            "1.",
            "1.5",
            "1e5",
            "1E+5",
            "-1.25e-3",
            "1 ",
            " 1",
            "12a",
            "\"\"",
            "\"a\"",
            "\"é ü\"",
            "\"a\\\"b\"",
            "\"a\\\\b\"",
            "\"\\u0041\"",
            "\"\t\"",
            "\"\\t\"",
            "\"",
            "\"a\" ",
            "\"\u{7f}\"",
        ];
        for text in cases {
            if let Some(quick) = scalar_is_canonical(text) {
                assert_eq!(quick, transcribes_to_itself(text), "{text:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn scalar_shortcut_agrees_on_random_scalars(text in r#"[-0-9.eE+ ]{0,8}|"[a-z\\"\t é\u{1}]{0,6}"?|[a-z]{0,6}"#) {
            if let Some(quick) = scalar_is_canonical(&text) {
                proptest::prop_assert_eq!(quick, transcribes_to_itself(&text), "{:?}", text);
            }
        }
    }

    fn canon(text: &str) -> String {
        canonical_json(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn canonical_layout() {
        for (input, expected) in [
            ("1", "1"),
            (" -1.50e+3 ", "-1.50e+3"),
            ("12345678901234567890123", "12345678901234567890123"),
            ("true", "true"),
            ("false", "false"),
            ("null", "null"),
            ("[]", "[]"),
            ("{}", "{}"),
            ("[1,2,[3,[]],{}]", "[1, 2, [3, []], {}]"),
            (
                r#"{"b":1,"a":[true,false,null]}"#,
                r#"{"a": [true, false, null], "b": 1}"#,
            ),
            (
                r#"{"b": {"z": 1, "y": {"q": [], "p": {}}}, "a": 0}"#,
                r#"{"a": 0, "b": {"y": {"p": {}, "q": []}, "z": 1}}"#,
            ),
            // Byte order, not jsonb's length-first order.
            (r#"{"bb": 1, "a": 2, "ab": 3}"#, r#"{"a": 2, "ab": 3, "bb": 1}"#),
            ("\n[ 1 ,\t2 ]\r\n", "[1, 2]"),
        ] {
            assert_eq!(canon(input), expected, "{input}");
            assert!(is_canonical_json(expected), "{expected}");
            assert_eq!(canon(expected), expected);
        }
    }

    #[test]
    fn strings_are_re_escaped() {
        for (input, expected) in [
            (r#""plain""#, r#""plain""#),
            (r#""\u0041\/\"\\""#, r#""A/\"\\""#),
            (r#""\b\f\n\r\t""#, r#""\b\f\n\r\t""#),
            (r#""\u0001\u001F\u007f""#, "\"\\u0001\\u001f\u{7f}\""),
            (r#""\u00e9\ud83d\ude00""#, "\"é😀\""),
            ("\"é😀 ☃\"", "\"é😀 ☃\""),
        ] {
            assert_eq!(canon(input), expected, "{input}");
            assert!(is_canonical_json(expected));
        }
        // Keys are escaped the same way, and sorted by their unescaped bytes.
        assert_eq!(
            canon(r#"{"\u00e9": 1, "\n": 2, "z": 3, "\"": 4}"#),
            r#"{"\n": 2, "\"": 4, "z": 3, "é": 1}"#
        );
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\u{1}é");
        assert_eq!(out, r#""a\"b\\c\u0001é""#);
    }

    #[test]
    fn rejects_what_is_not_one_json_value() {
        for bad in [
            "",
            "  ",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a: 1}",
            "{\"a\":}",
            "01",
            "1.",
            "+1",
            "NaN",
            "tru",
            "nul",
            "[1]]",
            "{}}",
            "1 2",
            r#""\ud800""#,
            r#""\udc00""#,
            "\"\u{1}\"",
            r#""\u0000""#,
            r#"{"\u0000": 1}"#,
            "[",
            "{",
            r#"{"a": 1, "a": 2}"#,
            r#"{"b": {"x": 1, "y": 2, "x": 3}}"#,
        ] {
            assert!(canonical_json(bad).is_err(), "{bad:?}");
            assert!(!is_canonical_json(bad), "{bad:?}");
        }
        let err = canonical_json(r#"{"b": 1, "a": 2, "b": 3}"#).expect_err("duplicate");
        assert_eq!(
            err,
            TextError::DuplicateKey {
                offset: 17,
                key: "b".into()
            }
        );
        let err = canonical_json(r#"["\u0000"]"#).expect_err("NUL");
        assert!(err.to_string().contains("\\u0000"), "{err}");
    }

    #[test]
    fn is_canonical_rejects_other_spellings() {
        for text in [
            "[1,2]",
            "{\"a\":1}",
            " 1",
            "1 ",
            r#"{"b": 1, "a": 2}"#,
            r#""\u0041""#,
            r#""\/""#,
            "\"\\u001F\"",
            r#"{"a": 1, "a": 1}"#,
            "[1,  2]",
            "[ ]",
        ] {
            assert!(!is_canonical_json(text), "{text}");
        }
    }

    #[test]
    fn nesting_is_limited_without_recursion() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(canon(&ok), ok);
        assert!(is_canonical_json(&ok));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            canonical_json(&deep),
            Err(TextError::TooDeep {
                offset: MAX_DEPTH,
                limit: MAX_DEPTH
            })
        );
        // Far deeper input is refused just as cheaply.
        let hostile = "[{\"a\":".repeat(1_000_000);
        assert!(matches!(canonical_json(&hostile), Err(TextError::TooDeep { .. })));
        assert!(!is_canonical_json(&hostile));
    }

    #[test]
    fn text_and_kind() {
        assert_eq!(as_text(r#""a\nb""#), "a\nb");
        assert_eq!(as_text("12.50"), "12.50");
        assert_eq!(as_text(r#"{"a": 1}"#), r#"{"a": 1}"#);
        assert_eq!(kind_name("[1]"), "an array");
        assert_eq!(kind_name("-1"), "a number");
        assert_eq!(kind_name("true"), "a boolean");
        assert!(is_number("-0.5") && is_number("7") && !is_number("\"7\""));
    }
}
