//! Strict reading of the canonical JSON text forms (docs/design.md, "Stored forms and input").
//!
//! A small pull parser instead of `serde_json`: the text form is the input path of
//! `pg_dump`/text replication and must reject what a map-based parser silently accepts
//! (duplicate keys keep the last value there). The reader itself never recurses: fixed-shape
//! forms are read by straight-line code, and arbitrary JSON values (`crate::json`) by a loop
//! with an explicit, depth-limited stack, so no input can exhaust the call stack.

use std::borrow::Cow;
use std::fmt;

use crate::node::{NodeId, NodeIdParseError};

/// How much of an input-derived string an error message quotes, so a hostile input cannot
/// blow up an error report.
const EXCERPT_CHARS: usize = 64;

/// Why a text form could not be read. Each message says what was expected and where (a byte
/// offset into the input); the extension reports them as `22P02` details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// Not the JSON expected at `offset`.
    Syntax {
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
        /// The character found there (`None` at the end of the input).
        found: Option<char>,
    },
    /// An object key that this form does not have.
    UnknownKey {
        /// Byte offset of the key.
        offset: usize,
        /// The key (shortened if long).
        key: String,
        /// The keys that are allowed.
        expected: &'static str,
    },
    /// A key given twice in one object (for node ids: two spellings of one node count too).
    DuplicateKey {
        /// Byte offset of the second occurrence.
        offset: usize,
        /// The key (shortened if long).
        key: String,
    },
    /// A required key is absent.
    MissingKey {
        /// The missing key.
        key: &'static str,
    },
    /// A number that is not of the kind or range required.
    InvalidNumber {
        /// Byte offset of the number.
        offset: usize,
        /// What was required.
        expected: &'static str,
    },
    /// An object key that should be a node id is not a UUID.
    InvalidNodeId {
        /// Byte offset of the key.
        offset: usize,
        /// What is wrong with it.
        error: NodeIdParseError,
    },
    /// A node listed with nothing counted (`[0, 0]`); the canonical form omits such nodes.
    ZeroEntry {
        /// Byte offset of the node's key.
        offset: usize,
        /// The node.
        node: NodeId,
    },
    /// The stated `"value"` differs from the value the listed nodes add up to.
    ValueMismatch {
        /// Byte offset of the stated value.
        offset: usize,
        /// The stated value as written (shortened if long).
        stated: String,
        /// The value computed from the nodes.
        computed: i128,
    },
    /// A stated decimal value differs from the one its parts add up to (a `crdt.doc` counter
    /// property: base plus the nodes' sums).
    DecimalMismatch {
        /// Byte offset of the stated value.
        offset: usize,
        /// The stated value as written (shortened if long).
        stated: String,
        /// The value computed from the parts (shortened if long).
        computed: String,
    },
    /// Arrays and objects nested deeper than the limit.
    TooDeep {
        /// Byte offset of the bracket that opens one level too many.
        offset: usize,
        /// The deepest nesting allowed.
        limit: usize,
    },
    /// The sections of a text form disagree about one key (e.g. a property with a value but
    /// no stamp).
    Inconsistent {
        /// Byte offset of the key where the disagreement shows.
        offset: usize,
        /// The key (shortened if long).
        key: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Syntax {
                offset,
                expected,
                found: Some(c),
            } => {
                write!(f, "expected {expected} at offset {offset}, found {c:?}")
            }
            TextError::Syntax {
                offset,
                expected,
                found: None,
            } => {
                write!(f, "expected {expected} at offset {offset}, found end of input")
            }
            TextError::UnknownKey { offset, key, expected } => {
                write!(f, "unknown key {key:?} at offset {offset}: expected {expected}")
            }
            TextError::DuplicateKey { offset, key } => {
                write!(f, "duplicate key {key:?} at offset {offset}: each key may appear once")
            }
            TextError::MissingKey { key } => write!(f, "missing required key {key:?}"),
            TextError::InvalidNumber { offset, expected } => {
                write!(f, "expected {expected} at offset {offset}")
            }
            TextError::InvalidNodeId { offset, error } => {
                write!(f, "invalid node id at offset {offset}: {error}")
            }
            TextError::ZeroEntry { offset, node } => write!(
                f,
                "node {node} at offset {offset} is [0, 0]: nodes with nothing counted must be omitted"
            ),
            TextError::ValueMismatch {
                offset,
                stated,
                computed,
            } => write!(
                f,
                "\"value\" {stated} at offset {offset} does not match the nodes, which add up to {computed}"
            ),
            TextError::DecimalMismatch {
                offset,
                stated,
                computed,
            } => write!(
                f,
                "value {stated} at offset {offset} does not match its counter, which adds up to {computed}"
            ),
            TextError::TooDeep { offset, limit } => write!(
                f,
                "arrays and objects nested more than {limit} levels deep at offset {offset}"
            ),
            TextError::Inconsistent { offset, key, problem } => {
                write!(f, "key {key:?} at offset {offset} {problem}")
            }
        }
    }
}

impl std::error::Error for TextError {}

/// `s`, cut to at most [`EXCERPT_CHARS`] characters (with `...` when cut).
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

/// A JSON number as written, validated against the JSON grammar but not yet converted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonNumber<'a> {
    /// Byte offset of the number.
    pub offset: usize,
    /// The literal text.
    pub text: &'a str,
    /// Whether it has neither a fraction nor an exponent.
    pub is_integer: bool,
}

impl JsonNumber<'_> {
    /// The value, if it is an integer from 0 to `u64::MAX` written without a minus sign.
    pub fn to_u64(self) -> Option<u64> {
        // `text` holds only JSON number characters, so a `+` or whitespace can't sneak in.
        if !self.is_integer || self.text.starts_with('-') {
            return None;
        }
        self.text.parse().ok()
    }

    /// The value, if it is an integer in the `i128` range.
    pub fn to_i128(self) -> Option<i128> {
        if !self.is_integer {
            return None;
        }
        self.text.parse().ok()
    }
}

/// Where a reader is inside one object: whether a `,` is due before the next key.
#[derive(Debug)]
pub(crate) struct ObjectCursor {
    first: bool,
}

/// Where a reader is inside one array: whether a `,` is due before the next element.
#[derive(Debug)]
pub(crate) struct ArrayCursor {
    first: bool,
}

/// A pull parser over JSON text. Each method skips leading whitespace, reads one token or
/// value, and reports errors by byte offset.
#[derive(Debug)]
pub(crate) struct JsonReader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> JsonReader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        JsonReader { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The offset of the next byte to be read.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Skips whitespace and returns the next byte without consuming it (`None` at the end).
    pub fn peek_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.peek()
    }

    /// Consumes the literal `word` (`true`, `false`, `null`) after whitespace.
    pub fn literal(&mut self, word: &'static str, expected: &'static str) -> Result<(), TextError> {
        self.skip_whitespace();
        let rest = self.bytes().get(self.pos..).unwrap_or_default();
        if rest.starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.syntax_error(self.pos, expected))
        }
    }

    /// Consumes the `[` that opens an array.
    pub fn begin_array(&mut self, expected: &'static str) -> Result<ArrayCursor, TextError> {
        self.expect(b'[', expected)?;
        Ok(ArrayCursor { first: true })
    }

    /// Whether another element follows (its `,` consumed); `false` once the closing `]` is
    /// consumed.
    pub fn next_element(&mut self, cursor: &mut ArrayCursor) -> Result<bool, TextError> {
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(false);
        }
        if !cursor.first {
            self.expect(b',', "',' or ']'")?;
        }
        cursor.first = false;
        Ok(true)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        // JSON whitespace only: space, tab, line feed, carriage return.
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A syntax error at `offset`, naming the character found there.
    pub fn syntax_error(&self, offset: usize, expected: &'static str) -> TextError {
        let found = self.text.get(offset..).and_then(|rest| rest.chars().next());
        TextError::Syntax {
            offset,
            expected,
            found,
        }
    }

    /// Consumes `byte` (after whitespace) or fails saying `expected`.
    pub fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), TextError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax_error(self.pos, expected))
        }
    }

    /// Consumes the `{` that opens an object.
    pub fn begin_object(&mut self, expected: &'static str) -> Result<ObjectCursor, TextError> {
        self.expect(b'{', expected)?;
        Ok(ObjectCursor { first: true })
    }

    /// The next key of the object (and its offset), with the `:` after it consumed; `None`
    /// once the closing `}` is consumed.
    pub fn next_key(&mut self, cursor: &mut ObjectCursor) -> Result<Option<(Cow<'a, str>, usize)>, TextError> {
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(None);
        }
        if !cursor.first {
            self.expect(b',', "',' or '}'")?;
            self.skip_whitespace();
        }
        cursor.first = false;
        let offset = self.pos;
        if self.peek() != Some(b'"') {
            return Err(self.syntax_error(offset, "a key (a double-quoted string)"));
        }
        let key = self.string()?;
        self.expect(b':', "':'")?;
        Ok(Some((key, offset)))
    }

    /// Reads a JSON string (after whitespace), resolving escapes. Borrows when there are none.
    pub fn string(&mut self) -> Result<Cow<'a, str>, TextError> {
        self.expect(b'"', "a double-quoted string")?;
        let start = self.pos;
        let bytes = self.bytes();
        // Fast path: no escapes, so the string is a slice of the input.
        loop {
            match bytes.get(self.pos) {
                None => return Err(self.syntax_error(self.pos, "a closing '\"'")),
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(&c) if c < 0x20 => return Err(self.syntax_error(self.pos, "an escaped control character")),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let at = self.pos;
            match bytes.get(at) {
                None => return Err(self.syntax_error(at, "a closing '\"'")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    let escaped = match bytes.get(at + 1) {
                        Some(b'u') => {
                            self.pos = at + 2;
                            self.unicode_escape(at)?
                        }
                        Some(&c) => {
                            let simple = match c {
                                b'"' => '"',
                                b'\\' => '\\',
                                b'/' => '/',
                                b'b' => '\u{8}',
                                b'f' => '\u{c}',
                                b'n' => '\n',
                                b'r' => '\r',
                                b't' => '\t',
                                _ => return Err(self.syntax_error(at + 1, "a valid escape character")),
                            };
                            self.pos = at + 2;
                            simple
                        }
                        None => return Err(self.syntax_error(at + 1, "a valid escape character")),
                    };
                    out.push(escaped);
                }
                Some(&c) if c < 0x20 => return Err(self.syntax_error(at, "an escaped control character")),
                Some(_) => {
                    // Copy one whole (possibly multi-byte) character.
                    let ch = self
                        .text
                        .get(at..)
                        .and_then(|rest| rest.chars().next())
                        .ok_or_else(|| self.syntax_error(at, "a character"))?;
                    out.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
    }

    /// After `\u`: four hex digits, and for a high surrogate the `\uXXXX` low surrogate that
    /// must follow it. `escape_at` is the offset of the backslash, for errors.
    fn unicode_escape(&mut self, escape_at: usize) -> Result<char, TextError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes().get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.syntax_error(self.pos, "a \\u low surrogate after a high one"));
                }
                self.pos += 2;
                let low_at = self.pos;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.syntax_error(low_at, "a low surrogate (DC00-DFFF)"));
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => {
                return Err(self.syntax_error(escape_at, "a \\u escape that is not a lone low surrogate"))
            }
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.syntax_error(escape_at, "a valid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, TextError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|c| char::from(c).to_digit(16))
                .ok_or_else(|| self.syntax_error(self.pos, "four hex digits after \\u"))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    /// Reads a JSON number (after whitespace) per the JSON grammar.
    pub fn number(&mut self, expected: &'static str) -> Result<JsonNumber<'a>, TextError> {
        self.skip_whitespace();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.syntax_error(start, expected)),
        }
        let mut is_integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
            is_integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.require_digits()?;
            is_integer = false;
        }
        Ok(JsonNumber {
            offset: start,
            text: &self.text[start..self.pos],
            is_integer,
        })
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Result<(), TextError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.syntax_error(self.pos, "a digit"));
        }
        self.skip_digits();
        Ok(())
    }

    /// Checks that only whitespace is left.
    pub fn finish(&mut self) -> Result<(), TextError> {
        self.skip_whitespace();
        if self.pos < self.text.len() {
            return Err(self.syntax_error(self.pos, "end of input"));
        }
        Ok(())
    }
}

/// Reads an object of per-node pairs, `{"<uuid>": [a, b], ...}`, the shape both counter text
/// forms share. `read_sum` turns each number into a sum (or says why it can't); a node whose
/// two sums are both zero is refused ([`TextError::ZeroEntry`]): canonical states omit it.
/// Returns the pairs sorted by node; two keys naming one node (even in different letter case)
/// are a [`TextError::DuplicateKey`] at the later one.
pub(crate) fn read_node_pairs<T>(
    reader: &mut JsonReader<'_>,
    read_sum: impl Fn(&mut JsonReader<'_>) -> Result<T, TextError>,
    is_zero: impl Fn(&T) -> bool,
) -> Result<Vec<(NodeId, T, T)>, TextError> {
    // (node, inc, dec, offset of its key) — offsets kept for the duplicate check after sorting.
    let mut listed: Vec<(NodeId, T, T, usize)> = Vec::new();
    let mut object = reader.begin_object("'{' starting the nodes object")?;
    while let Some((key, offset)) = reader.next_key(&mut object)? {
        let node: NodeId = key
            .parse()
            .map_err(|error| TextError::InvalidNodeId { offset, error })?;
        reader.expect(b'[', "'[' starting an [inc, dec] pair")?;
        let inc = read_sum(reader)?;
        reader.expect(b',', "',' (an [inc, dec] pair has two numbers)")?;
        let dec = read_sum(reader)?;
        reader.expect(b']', "']' (an [inc, dec] pair has two numbers)")?;
        if is_zero(&inc) && is_zero(&dec) {
            return Err(TextError::ZeroEntry { offset, node });
        }
        listed.push((node, inc, dec, offset));
    }
    // Any key order is accepted; a stable sort keeps the later duplicate second so its offset
    // is the one reported. Comparing node ids (not key text) also catches two spellings
    // (upper/lower case) of one node.
    listed.sort_by_key(|entry| entry.0);
    if let Some(pair) = listed.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(TextError::DuplicateKey {
            offset: pair[1].3,
            key: pair[1].0.to_string(),
        });
    }
    Ok(listed.into_iter().map(|(node, inc, dec, _)| (node, inc, dec)).collect())
}

/// "00", "01", ... "99": the two digits of every number below 100.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// The decimal digits of an integer, formatted on the stack: the text forms write several
/// integers per value, for every row text-mode replication carries, and `write!` through
/// `fmt::Formatter` cost more than the digits themselves.
struct Digits {
    buf: [u8; 40],
    start: usize,
}

impl Digits {
    fn of(value: u128) -> Digits {
        let mut digits = Digits {
            buf: [0; 40],
            start: 40,
        };
        // 128-bit division is a library call; nearly every value fits 64 bits.
        let mut high = value;
        while u64::try_from(high).is_err() {
            digits.push(b'0' + (high % 10) as u8);
            high /= 10;
        }
        // Two digits per division, from a table (stamps' hlcs have 18 digits).
        let mut rest = u64::try_from(high).unwrap_or_default();
        while rest >= 100 {
            let pair = usize::try_from(rest % 100).unwrap_or_default() * 2;
            rest /= 100;
            digits.push(DIGIT_PAIRS[pair + 1]);
            digits.push(DIGIT_PAIRS[pair]);
        }
        if rest >= 10 {
            let pair = usize::try_from(rest).unwrap_or_default() * 2;
            digits.push(DIGIT_PAIRS[pair + 1]);
            digits.push(DIGIT_PAIRS[pair]);
        } else {
            digits.push(b'0' + rest as u8);
        }
        digits
    }

    /// Prepends one ASCII digit.
    fn push(&mut self, digit: u8) {
        self.start -= 1;
        self.buf[self.start] = digit;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        crate::codec::utf8(&self.buf[self.start..]).unwrap_or_default()
    }
}

/// Appends `value` in decimal.
pub(crate) fn write_integer(out: &mut impl fmt::Write, value: i128) -> fmt::Result {
    if value < 0 {
        out.write_char('-')?;
    }
    out.write_str(Digits::of(value.unsigned_abs()).as_str())
}

/// The position of the first `"`, `\\` or control character (below U+0020) in `bytes`.
///
/// Node ids (36 characters), keys and string values are scanned eight bytes at a time: a byte equal to `c` is
/// a zero byte of `word ^ c`, found with the carry trick; a borrow can mark bytes after the first
/// match, never before it, so the lowest marked byte is the first match.
pub(crate) fn first_quote_escape_or_control(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |word: u64, limit: u8| word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH_BITS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let marked =
            below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1) | below(word, b' ');
        if marked != 0 {
            return Some(at + marked.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < b' ')?;
    Some(at + tail)
}

/// The bytes [`WrittenText::bare_token`] reads: those of numbers and of `true`, `false` and
/// `null`.
const BARE_TOKEN_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8, b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E');
        b += 1;
    }
    table
};

/// A cursor over text expected in exactly the layout this crate writes (the text forms' fast
/// path); every method is `None` (or `false`) where the text departs from it, and the caller
/// then reads the text with [`JsonReader`], which accepts any layout and explains errors.
pub(crate) struct WrittenText<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> WrittenText<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        WrittenText { text, at: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        &self.text.as_bytes()[self.at..]
    }

    pub(crate) fn next_is(&self, byte: u8) -> bool {
        self.rest().first() == Some(&byte)
    }

    pub(crate) fn literal(&mut self, expected: &str) -> Option<()> {
        self.rest()
            .starts_with(expected.as_bytes())
            .then(|| self.at += expected.len())
    }

    /// `", "` before another member, or nothing.
    pub(crate) fn separator(&mut self) -> bool {
        self.literal(", ").is_some()
    }

    /// The end of the text.
    pub(crate) fn end(&self) -> Option<()> {
        (self.at == self.text.len()).then_some(())
    }

    /// A string with nothing escaped (so its text is its value) and no control character;
    /// the text between the quotes.
    pub(crate) fn key(&mut self) -> Option<&'a str> {
        let quoted = self.string_token()?;
        Some(&quoted[1..quoted.len() - 1])
    }

    /// A string as [`WrittenText::key`] reads it, quotes included.
    pub(crate) fn string_token(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let len = first_quote_escape_or_control(&rest[1..])?;
        if rest[1 + len] != b'"' {
            return None;
        }
        // Both ends are ASCII quotes, so the slice falls on character boundaries.
        let token = &self.text[self.at..self.at + len + 2];
        self.at += len + 2;
        Some(token)
    }

    /// The text of a number or a `true`/`false`/`null` literal: up to the next character
    /// none of them has (unchecked).
    pub(crate) fn bare_token(&mut self) -> Option<&'a str> {
        let len = self.rest().iter().position(|&b| !BARE_TOKEN_BYTE[usize::from(b)])?;
        let token = &self.text[self.at..self.at + len];
        self.at += len;
        Some(token)
    }

    /// An integer from 0 to `u64::MAX` in plain digits, without a leading zero.
    pub(crate) fn integer(&mut self) -> Option<u64> {
        let rest = self.rest();
        let digits = rest.iter().position(|b| !b.is_ascii_digit())?;
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        // Up to 19 digits can't overflow a u64; only the 20-digit case needs checking.
        let mut value: u64 = 0;
        for &digit in &rest[..digits.min(19)] {
            value = value * 10 + u64::from(digit - b'0');
        }
        if digits > 19 {
            value = rest[19..digits].iter().try_fold(value, |value, &digit| {
                value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            })?;
        }
        self.at += digits;
        Some(value)
    }

    /// A quoted node id.
    pub(crate) fn node(&mut self) -> Option<NodeId> {
        self.key()?.parse().ok()
    }

    /// The `<key>: <item>` members of an object, separated by `", "`, up to its closing `}`
    /// (not read), keys strictly increasing as the writers list them; each is handed to
    /// `each`, which may refuse it. Nothing is collected here, so a caller fills its own
    /// storage.
    pub(crate) fn sorted_members<K: Ord + Copy, T>(
        &mut self,
        key: impl Fn(&mut Self) -> Option<K>,
        item: impl Fn(&mut Self) -> Option<T>,
        mut each: impl FnMut(K, T) -> Option<()>,
    ) -> Option<()> {
        if self.next_is(b'}') {
            return Some(());
        }
        let mut previous: Option<K> = None;
        loop {
            let next = key(self)?;
            if previous.is_some_and(|previous| previous >= next) {
                return None;
            }
            self.literal(": ")?;
            each(next, item(self)?)?;
            previous = Some(next);
            if !self.separator() {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_as_display_writes_them() {
        let boundaries = [
            0,
            1,
            -1,
            9,
            10,
            -10,
            11,
            99,
            100,
            101,
            999,
            1000,
            1001,
            -100,
            4_218_009_092,
        ];
        let extremes = [i128::from(u64::MAX), i128::from(u64::MAX) + 1, i128::MAX, i128::MIN];
        for value in boundaries
            .into_iter()
            .chain(extremes)
            .chain((0..2000).map(|i| i * 7919))
        {
            let mut out = String::new();
            write_integer(&mut out, value).expect("a string");
            assert_eq!(out, value.to_string());
        }
        assert_eq!(Digits::of(u128::MAX).as_str(), u128::MAX.to_string());
    }

    fn string(text: &str) -> Result<String, TextError> {
        let mut r = JsonReader::new(text);
        let s = r.string()?.into_owned();
        r.finish()?;
        Ok(s)
    }

    #[test]
    fn quote_escape_or_control_found_first() {
        let naive = |bytes: &[u8]| bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < b' ');
        let alphabet = [
            b'a',
            b'"',
            b'\\',
            0x00,
            0x1f,
            b' ',
            0x7f,
            0x80,
            0xff,
            b'!',
            b'#',
            b']',
            b'\\' + 1,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain bytes, so matches fall at every position.
                        if seed.is_multiple_of(7) {
                            alphabet[(seed >> 8) as usize % alphabet.len()]
                        } else {
                            b'a' + (seed >> 16) as u8 % 26
                        }
                    })
                    .collect();
                assert_eq!(first_quote_escape_or_control(&bytes), naive(&bytes), "{bytes:?}");
            }
        }
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(string(r#""plain""#), Ok("plain".into()));
        assert_eq!(string(r#" "a\"b\\c\/d\n\t" "#), Ok("a\"b\\c/d\n\t".into()));
        assert_eq!(string(r#""\u0076alue""#), Ok("value".into()));
        assert_eq!(string(r#""é\u00e9""#), Ok("éé".into()));
        assert_eq!(string(r#""\ud83d\ude00!""#), Ok("\u{1F600}!".into()));
        assert!(string(r#""\ud83d""#).is_err(), "lone high surrogate");
        assert!(string(r#""\ude00""#).is_err(), "lone low surrogate");
        assert!(string(r#""\ud83d\u0041""#).is_err(), "high + non-low");
        assert!(string(r#""\x""#).is_err());
        assert!(string(r#""\u12""#).is_err());
        assert!(string("\"a\u{1}\"").is_err(), "raw control character");
        assert!(string(r#""open"#).is_err());
        assert!(string(r#""a\"#).is_err());
        assert!(string("").is_err());
    }

    #[test]
    fn numbers() {
        let parse = |t: &str| {
            let mut r = JsonReader::new(t);
            let n = r.number("a number")?;
            r.finish()?;
            Ok::<_, TextError>((n.to_u64(), n.to_i128(), n.is_integer))
        };
        assert_eq!(parse("0").ok(), Some((Some(0), Some(0), true)));
        assert_eq!(parse("-0").ok(), Some((None, Some(0), true)));
        assert_eq!(
            parse("18446744073709551615").ok(),
            Some((Some(u64::MAX), Some(u64::MAX.into()), true))
        );
        assert_eq!(parse("18446744073709551616").ok(), Some((None, Some(1 << 64), true)));
        assert_eq!(parse("-12").ok(), Some((None, Some(-12), true)));
        assert_eq!(parse("1.5").ok(), Some((None, None, false)));
        assert_eq!(parse("1e3").ok(), Some((None, None, false)));
        assert_eq!(parse("1E+3").ok(), Some((None, None, false)));
        for bad in ["", "-", "+1", "01", ".5", "1.", "1e", "1e+", "0x10", "Infinity", "NaN"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn syntax_error_names_found_char() {
        let mut r = JsonReader::new("  x");
        let err = r.expect(b'{', "'{'").expect_err("not an object");
        assert_eq!(
            err,
            TextError::Syntax {
                offset: 2,
                expected: "'{'",
                found: Some('x')
            }
        );
        assert_eq!(err.to_string(), "expected '{' at offset 2, found 'x'");
    }

    #[test]
    fn excerpt_cuts_long_text() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 3);
    }
}
