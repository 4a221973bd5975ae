//! Exact decimal numbers for the counter properties of `crdt.doc` (docs/design.md, "Doc").
//!
//! Our own small sign + digits + exponent type rather than a crate such as `bigdecimal`: the
//! operations needed are few (parse, add, compare, render), the limits below must be enforced
//! on every input path anyway, and a dependency would change the workspace's shared lock file.
//! Digits are kept one per byte; at most a few thousand of them, so schoolbook arithmetic is
//! plenty.
//!
//! Representation: `value = ±coefficient × 10^exponent`, normalized (no leading or trailing
//! zeros in the coefficient; zero has no digits and is never negative), so equal values are
//! equal structs and have one text form.
//!
//! Limits: a decimal that is parsed, stored or added to a counter has at most
//! [`MAX_INTEGER_DIGITS`] digits before the decimal point and at most [`MAX_FRACTION_DIGITS`]
//! after it (PostgreSQL's `numeric` allows more; these keep every stored number and every sum
//! small and cheap). A counter's value, a sum of such numbers, can only exceed them by a few
//! digits and is never stored.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The most digits a stored or parsed decimal may have before the decimal point.
pub const MAX_INTEGER_DIGITS: usize = 1000;

/// The most digits a stored or parsed decimal may have after the decimal point.
pub const MAX_FRACTION_DIGITS: usize = 1000;

/// Exponent digits beyond this many make a number out of range outright (unless it is zero),
/// so exponent arithmetic stays far inside `i64`.
const MAX_EXPONENT_MAGNITUDE: i64 = 1_000_000_000;

/// An exact decimal number (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    negative: bool,
    /// Coefficient digits (0–9), most significant first; no leading or trailing zeros.
    digits: Vec<u8>,
    exponent: i64,
}

/// Why a text is not an acceptable decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a finite decimal number (e.g. empty, `NaN`, `Infinity`, stray characters).
    Invalid,
    /// A number, but beyond [`MAX_INTEGER_DIGITS`] / [`MAX_FRACTION_DIGITS`].
    OutOfRange,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecimalError::Invalid => f.write_str("not a finite decimal number"),
            DecimalError::OutOfRange => write!(
                f,
                "decimal out of range: at most {MAX_INTEGER_DIGITS} digits before and {MAX_FRACTION_DIGITS} after the decimal point"
            ),
        }
    }
}

impl std::error::Error for DecimalError {}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal {
        negative: false,
        digits: Vec::new(),
        exponent: 0,
    };

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Whether this is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The absolute value.
    pub fn abs(&self) -> Decimal {
        Decimal {
            negative: false,
            ..self.clone()
        }
    }

    /// Whether this has at most [`MAX_INTEGER_DIGITS`] digits before the decimal point and
    /// [`MAX_FRACTION_DIGITS`] after it.
    pub fn is_within_limits(&self) -> bool {
        self.fits(MAX_INTEGER_DIGITS, MAX_FRACTION_DIGITS)
    }

    /// Whether `text` is the plain text [`Display`](fmt::Display) writes for some decimal
    /// (limits aside): `0`, or an optional `-`, digits without a leading zero (or a lone `0`
    /// before a fraction), and a fraction without trailing zeros. Checks stored text without
    /// rendering the parsed value again.
    pub(crate) fn is_canonical_text(text: &str) -> bool {
        canonical_parts(text).is_some()
    }

    /// Whether `text` is what [`Display`](fmt::Display) writes for a decimal within the limits
    /// (what `parse` accepts and gives back unchanged), checked without building the decimal.
    pub(crate) fn is_canonical_within_limits(text: &str) -> bool {
        canonical_parts(text).is_some_and(|(integer, fraction)| {
            (integer == "0" || integer.len() <= MAX_INTEGER_DIGITS) && fraction.len() <= MAX_FRACTION_DIGITS
        })
    }

    /// The numeric order of two canonical texts ([`Decimal::is_canonical_text`]), read
    /// without parsing them: what [`Ord`] gives for the decimals they are.
    pub(crate) fn cmp_canonical_text(a: &str, b: &str) -> Ordering {
        match (a.strip_prefix('-'), b.strip_prefix('-')) {
            (None, None) => cmp_canonical_magnitude(a, b),
            (Some(a), Some(b)) => cmp_canonical_magnitude(b, a),
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
        }
    }

    /// Parses a decimal without checking the limits: PostgreSQL `numeric` text or a JSON
    /// number (`[+-]digits[.digits][e[+-]digits]`, also `.5` and `5.`). Exponents too large
    /// to reason about are [`DecimalError::OutOfRange`].
    fn parse_any(text: &str) -> Result<Decimal, DecimalError> {
        let bytes = text.as_bytes();
        let mut pos = 0;
        let negative = take_sign(bytes, &mut pos);
        let mut digits = Vec::new();
        let mut fraction_len: i64 = 0;
        let mut seen_digit = false;
        let mut seen_point = false;
        while let Some(&c) = bytes.get(pos) {
            match c {
                b'0'..=b'9' => {
                    seen_digit = true;
                    // Leading zeros carry no information.
                    if !(digits.is_empty() && c == b'0') {
                        digits.push(c - b'0');
                    }
                    if seen_point {
                        fraction_len += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            pos += 1;
        }
        if !seen_digit {
            return Err(DecimalError::Invalid);
        }
        let mut exponent: i64 = 0;
        if matches!(bytes.get(pos), Some(b'e' | b'E')) {
            pos += 1;
            let exponent_negative = take_sign(bytes, &mut pos);
            let start = pos;
            while let Some(&c @ b'0'..=b'9') = bytes.get(pos) {
                // Saturates: anything past the cap is out of range anyway.
                exponent = (exponent * 10 + i64::from(c - b'0')).min(MAX_EXPONENT_MAGNITUDE);
                pos += 1;
            }
            if pos == start {
                return Err(DecimalError::Invalid);
            }
            if exponent_negative {
                exponent = -exponent;
            }
        }
        if pos != bytes.len() {
            return Err(DecimalError::Invalid);
        }
        if digits.is_empty() {
            return Ok(Decimal::ZERO);
        }
        if exponent.abs() >= MAX_EXPONENT_MAGNITUDE {
            return Err(DecimalError::OutOfRange);
        }
        // The fraction's digits were counted into the coefficient. Both terms are bounded
        // (by the cap and by the text length), so this cannot overflow.
        Ok(Decimal::normalized(negative, digits, exponent - fraction_len))
    }

    /// Parses `text` and accepts it if it has at most `integer_digits` digits before the
    /// decimal point and [`MAX_FRACTION_DIGITS`] after it.
    pub(crate) fn parse_with_integer_limit(text: &str, integer_digits: usize) -> Result<Decimal, DecimalError> {
        let value = Decimal::parse_any(text)?;
        if value.fits(integer_digits, MAX_FRACTION_DIGITS) {
            Ok(value)
        } else {
            Err(DecimalError::OutOfRange)
        }
    }

    /// Builds a normalized decimal from a coefficient with possible leading/trailing zeros.
    fn normalized(negative: bool, mut digits: Vec<u8>, mut exponent: i64) -> Decimal {
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Decimal::ZERO;
        }
        Decimal {
            negative,
            digits,
            exponent,
        }
    }

    fn fits(&self, integer_digits: usize, fraction_digits: usize) -> bool {
        if self.is_zero() {
            return true;
        }
        let integer = self.digits.len() as i64 + self.exponent;
        integer <= integer_digits as i64 && -self.exponent <= fraction_digits as i64
    }

    /// The position just above the most significant digit (its power of ten plus one):
    /// orders non-zero magnitudes before their digits are compared.
    fn magnitude_rank(&self) -> i64 {
        self.digits.len() as i64 + self.exponent
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            // With no trailing zeros, a lexicographic comparison of the digit strings is a
            // numeric comparison once the leading positions agree.
            (false, false) => self
                .magnitude_rank()
                .cmp(&other.magnitude_rank())
                .then_with(|| self.digits.cmp(&other.digits)),
        }
    }

    /// The coefficient's digits scaled to `exponent` (≤ own exponent), least significant
    /// first, padded to `len`.
    fn aligned_digits(&self, exponent: i64, len: usize) -> Vec<u8> {
        let shift = usize::try_from(self.exponent - exponent).unwrap_or(0);
        let mut out = vec![0u8; len];
        for (i, &d) in self.digits.iter().rev().enumerate() {
            if let Some(slot) = out.get_mut(shift + i) {
                *slot = d;
            }
        }
        out
    }

    /// The exact sum. Unbounded: callers that store the result check the limits.
    pub fn add(&self, other: &Decimal) -> Decimal {
        if self.is_zero() {
            return other.clone();
        }
        if other.is_zero() {
            return self.clone();
        }
        let exponent = self.exponent.min(other.exponent);
        let span = |d: &Decimal| d.digits.len() + usize::try_from(d.exponent - exponent).unwrap_or(0);
        let len = span(self).max(span(other)) + 1;
        let (a, b) = (self.aligned_digits(exponent, len), other.aligned_digits(exponent, len));
        let (negative, little_endian) = if self.negative == other.negative {
            let mut carry = 0;
            let sum = a
                .iter()
                .zip(&b)
                .map(|(x, y)| {
                    let s = x + y + carry;
                    carry = s / 10;
                    s % 10
                })
                .collect();
            (self.negative, sum)
        } else {
            // Subtract the smaller magnitude from the larger; the sign is the larger's.
            let (big, small, negative) = match self.cmp_magnitude(other) {
                Ordering::Less => (&b, &a, other.negative),
                _ => (&a, &b, self.negative),
            };
            let mut borrow = 0;
            let difference = big
                .iter()
                .zip(small)
                .map(|(&x, &y)| {
                    let subtrahend = y + borrow;
                    if x >= subtrahend {
                        borrow = 0;
                        x - subtrahend
                    } else {
                        borrow = 1;
                        x + 10 - subtrahend
                    }
                })
                .collect();
            (negative, difference)
        };
        let mut digits: Vec<u8> = little_endian;
        digits.reverse();
        Decimal::normalized(negative, digits, exponent)
    }

    /// The exact difference `self − other`.
    pub fn sub(&self, other: &Decimal) -> Decimal {
        self.add(&other.neg())
    }

    /// The negation.
    pub fn neg(&self) -> Decimal {
        Decimal {
            negative: !self.negative && !self.is_zero(),
            ..self.clone()
        }
    }
}

/// The digits before and after the point of a canonical text (`""` after it for an integer),
/// `None` if the text is not canonical ([`Decimal::is_canonical_text`]): one pass that both
/// checks it and splits it, for the checks of every stored decimal.
fn canonical_parts(text: &str) -> Option<(&str, &str)> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(integer) || (integer.len() > 1 && integer.starts_with('0')) {
        return None;
    }
    let canonical = match fraction {
        // `0` is never negative.
        None => !(integer == "0" && unsigned.len() != text.len()),
        Some(fraction) => all_digits(fraction) && !fraction.ends_with('0'),
    };
    canonical.then_some((integer, fraction.unwrap_or("")))
}

/// The digits before and after the point of a text already known to be canonical (`""` after
/// it for an integer).
fn split_canonical(text: &str) -> (&str, &str) {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    unsigned.split_once('.').unwrap_or((unsigned, ""))
}

/// The order of two unsigned canonical texts: with no leading zeros, the longer integer part is
/// the larger number (`0`, below one, is the shortest); then the digits, integer part first;
/// fractions have no trailing zeros, so comparing them as strings compares them as numbers.
fn cmp_canonical_magnitude(a: &str, b: &str) -> Ordering {
    let ((a_integer, a_fraction), (b_integer, b_fraction)) = (split_canonical(a), split_canonical(b));
    a_integer
        .len()
        .cmp(&b_integer.len())
        .then_with(|| a_integer.cmp(b_integer))
        .then_with(|| a_fraction.cmp(b_fraction))
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Parses PostgreSQL `numeric` text (as `numeric_out` writes it) or a JSON number, within
    /// the limits. No whitespace, no `NaN`/`Infinity`.
    fn from_str(text: &str) -> Result<Decimal, DecimalError> {
        Decimal::parse_with_integer_limit(text, MAX_INTEGER_DIGITS)
    }
}

impl From<i64> for Decimal {
    fn from(value: i64) -> Decimal {
        let digits = value.unsigned_abs().to_string().bytes().map(|c| c - b'0').collect();
        Decimal::normalized(value < 0, digits, 0)
    }
}

impl Ord for Decimal {
    /// Numeric order.
    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    /// Plain notation, no exponent, no trailing fractional zeros: `0`, `-12`, `1000`, `0.05`.
    /// Written in runs straight to the formatter (encoders call this for every counter sum).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let integer_len = self.magnitude_rank();
        if integer_len <= 0 {
            f.write_str("0.")?;
            write_zeros(f, integer_len.unsigned_abs())?;
            write_digits(f, &self.digits)
        } else if integer_len as usize >= self.digits.len() {
            write_digits(f, &self.digits)?;
            write_zeros(f, integer_len as u64 - self.digits.len() as u64)
        } else {
            let (integer, fraction) = self.digits.split_at(integer_len as usize);
            write_digits(f, integer)?;
            f.write_str(".")?;
            write_digits(f, fraction)
        }
    }
}

/// Writes digit values (0–9) as text, a stack buffer at a time.
fn write_digits(f: &mut fmt::Formatter<'_>, digits: &[u8]) -> fmt::Result {
    let mut buffer = [0u8; 64];
    for chunk in digits.chunks(buffer.len()) {
        for (text, digit) in buffer.iter_mut().zip(chunk) {
            *text = b'0' + digit;
        }
        // ASCII digits are UTF-8.
        f.write_str(std::str::from_utf8(&buffer[..chunk.len()]).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

fn write_zeros(f: &mut fmt::Formatter<'_>, count: u64) -> fmt::Result {
    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let mut left = count;
    while left > 0 {
        let run = left.min(ZEROS.len() as u64);
        f.write_str(&ZEROS[..run as usize])?;
        left -= run;
    }
    Ok(())
}

/// Consumes an optional `+` or `-` at `pos`; true for `-`.
fn take_sign(bytes: &[u8], pos: &mut usize) -> bool {
    match bytes.get(*pos) {
        Some(b'-') => {
            *pos += 1;
            true
        }
        Some(b'+') => {
            *pos += 1;
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().expect(text)
    }

    #[test]
    fn parse_and_render_normalized() {
        for (input, expected) in [
            ("0", "0"),
            ("-0", "0"),
            ("0.000", "0"),
            ("+5", "5"),
            ("007", "7"),
            ("1.50", "1.5"),
            ("-12.340", "-12.34"),
            ("1e3", "1000"),
            ("1E+3", "1000"),
            ("1.5e-3", "0.0015"),
            ("123.456e1", "1234.56"),
            (".5", "0.5"),
            ("5.", "5"),
            ("12345678901234567890123", "12345678901234567890123"),
            ("0e999999999999999999999", "0"),
            ("100", "100"),
        ] {
            assert_eq!(d(input).to_string(), expected, "{input}");
        }
        for bad in [
            "",
            "-",
            "+",
            ".",
            "e5",
            "1e",
            "1e+",
            "NaN",
            "Infinity",
            "-Infinity",
            " 1",
            "1 ",
            "1.2.3",
            "0x10",
            "1_000",
            "--1",
        ] {
            assert_eq!(bad.parse::<Decimal>(), Err(DecimalError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn canonical_text_is_what_display_writes() {
        for text in [
            "0", "-0", "00", "1", "-1", "10", "100", "007", "0.5", "-0.5", "0.50", ".5", "5.", "1.05", "-12.25", "1e3",
            "+1", "", "-", "0.0", "1.0", "12.30", "1.2.3", "0.000001",
        ] {
            let shown = text.parse::<Decimal>().map(|value| value.to_string());
            assert_eq!(
                Decimal::is_canonical_text(text),
                shown.as_deref() == Ok(text),
                "{text:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn canonical_text_agrees_with_display_on_random_text(text in "[-+0-9.e]{0,7}") {
            let shown = text.parse::<Decimal>().map(|value| value.to_string());
            proptest::prop_assert_eq!(Decimal::is_canonical_text(&text), shown.as_deref() == Ok(text.as_str()));
        }
    }

    proptest::proptest! {
        #[test]
        fn canonical_texts_compare_as_their_decimals(
            a in "-?[0-9]{1,4}(\\.[0-9]{1,4})?", b in "-?[0-9]{1,4}(\\.[0-9]{1,4})?",
        ) {
            let (a, b) = (d(&a), d(&b));
            let (a_text, b_text) = (a.to_string(), b.to_string());
            proptest::prop_assert!(Decimal::is_canonical_within_limits(&a_text));
            proptest::prop_assert_eq!(Decimal::cmp_canonical_text(&a_text, &b_text), a.cmp(&b));
        }

        #[test]
        fn canonical_within_limits_is_what_parse_gives_back(text in "-?[0-9]{0,3}(\\.[0-9]{0,3})?") {
            let shown = text.parse::<Decimal>().map(|value| value.to_string());
            proptest::prop_assert_eq!(Decimal::is_canonical_within_limits(&text), shown.as_deref() == Ok(text.as_str()));
        }
    }

    #[test]
    fn canonical_text_limits() {
        let most = format!("{}.{}", "9".repeat(MAX_INTEGER_DIGITS), "9".repeat(MAX_FRACTION_DIGITS));
        assert!(Decimal::is_canonical_within_limits(&most));
        assert!(most.parse::<Decimal>().is_ok());
        for over in [
            format!("1{}", "0".repeat(MAX_INTEGER_DIGITS)),
            format!("0.{}1", "0".repeat(MAX_FRACTION_DIGITS)),
        ] {
            assert!(!Decimal::is_canonical_within_limits(&over));
            assert!(over.parse::<Decimal>().is_err());
        }
        assert_eq!(Decimal::cmp_canonical_text("-0.5", "-1"), Ordering::Greater);
        assert_eq!(Decimal::cmp_canonical_text("0.05", "0.5"), Ordering::Less);
        assert_eq!(Decimal::cmp_canonical_text("0.5", "0.51"), Ordering::Less);
        assert_eq!(Decimal::cmp_canonical_text("10", "9.99"), Ordering::Greater);
        assert_eq!(Decimal::cmp_canonical_text("0", "-0.1"), Ordering::Greater);
    }

    #[test]
    fn limits() {
        let big = format!("1{}", "0".repeat(MAX_INTEGER_DIGITS - 1));
        assert!(d(&big).is_within_limits());
        assert_eq!(format!("{big}0").parse::<Decimal>(), Err(DecimalError::OutOfRange));
        assert_eq!("1e1000".parse::<Decimal>(), Err(DecimalError::OutOfRange));
        assert!("1e999".parse::<Decimal>().is_ok());
        assert!("1e-1000".parse::<Decimal>().is_ok());
        assert_eq!("1e-1001".parse::<Decimal>(), Err(DecimalError::OutOfRange));
        assert_eq!(
            "1e99999999999999999999".parse::<Decimal>(),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(
            "1e-99999999999999999999".parse::<Decimal>(),
            Err(DecimalError::OutOfRange)
        );
        // Trailing zeros of the fraction don't count against the limit.
        let long_zeros = format!("1.{}", "0".repeat(5000));
        assert_eq!(d(&long_zeros), d("1"));
        assert!(DecimalError::OutOfRange.to_string().contains("1000"));
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(d("0.1").add(&d("0.2")), d("0.3"));
        assert_eq!(d("5").add(&d("-1")), d("4"));
        assert_eq!(d("1").sub(&d("1.000")), Decimal::ZERO);
        assert_eq!(d("-0.5").add(&d("0.25")), d("-0.25"));
        assert_eq!(d("999").add(&d("1")), d("1000"));
        assert_eq!(d("1000").sub(&d("0.001")), d("999.999"));
        assert_eq!(
            d("1e30").add(&d("1e-30")).to_string(),
            format!("1{}.{}1", "0".repeat(30), "0".repeat(29))
        );
        assert_eq!(
            d("12345678901234567890123").add(&d("-12345678901234567890124")),
            d("-1")
        );
        assert_eq!(Decimal::ZERO.neg(), Decimal::ZERO);
        assert!(!Decimal::ZERO.neg().is_negative());
        assert_eq!(d("-3").abs(), d("3"));
        assert_eq!(Decimal::from(-42), d("-42"));
        assert_eq!(Decimal::from(i64::MIN).to_string(), i64::MIN.to_string());
        assert_eq!(Decimal::from(0), Decimal::ZERO);
    }

    #[test]
    fn order_is_numeric() {
        let sorted = [
            "-100", "-1.5", "-1", "-0.001", "0", "0.0001", "0.5", "1", "1.01", "2", "10", "1e5",
        ];
        for pair in sorted.windows(2) {
            assert!(d(pair[0]) < d(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(d(pair[1]) > d(pair[0]));
        }
        assert_eq!(d("1.0").cmp(&d("1")), Ordering::Equal);
    }
}
