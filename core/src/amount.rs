//! Amounts added to a counter when they arrive as text or as `numeric`: what a client driver
//! binds (`inventory + $1` with an untyped or `numeric` parameter). Read exactly: a whole number
//! in `i64`, never rounded.

use std::fmt;

/// Why a text is not a counter amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    /// Not a decimal number (`abc`, `NaN`, `1e3`, empty).
    NotANumber,
    /// A number with a fractional part that is not zero (`2.5`).
    Fractional,
    /// A whole number outside `i64`.
    OutOfRange,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountError::NotANumber => "not a whole number",
            AmountError::Fractional => "not a whole number (it has a fractional part)",
            AmountError::OutOfRange => "out of range for a bigint",
        })
    }
}

/// Reads `text` as a whole number: optional ASCII whitespace around, an optional sign, decimal
/// digits, and optionally a point followed by zeros only (`5.00`, as `numeric` prints 5.00).
pub fn parse_amount(text: &str) -> Result<i64, AmountError> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(AmountError::NotANumber);
    }
    if fraction.bytes().any(|byte| byte != b'0') {
        return Err(AmountError::Fractional);
    }
    // Accumulated negatively, so that i64::MIN (one beyond i64::MAX's magnitude) fits.
    let mut value: i64 = 0;
    for digit in whole.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_sub(i64::from(digit - b'0')))
            .ok_or(AmountError::OutOfRange)?;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or(AmountError::OutOfRange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_whole_numbers_only() {
        assert_eq!(parse_amount("5"), Ok(5));
        assert_eq!(parse_amount(" -3 "), Ok(-3));
        assert_eq!(parse_amount("+7.000"), Ok(7));
        assert_eq!(parse_amount("12."), Ok(12));
        assert_eq!(parse_amount("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_amount("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_amount("9223372036854775808"), Err(AmountError::OutOfRange));
        assert_eq!(parse_amount("2.5"), Err(AmountError::Fractional));
        assert_eq!(parse_amount("-0.001"), Err(AmountError::Fractional));
        for bad in [
            "", " ", "-", ".5", "abc", "NaN", "Infinity", "1e3", "1 2", "--1", "0x10", "٣",
        ] {
            assert_eq!(parse_amount(bad), Err(AmountError::NotANumber), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_bigint_reads_back_exactly(n: i64, zeros in 0usize..4, point: bool) {
            let text = if point { format!("{n}.{}", "0".repeat(zeros)) } else { n.to_string() };
            prop_assert_eq!(parse_amount(&text), Ok(n));
        }

        #[test]
        fn a_fraction_is_never_rounded(n: i64, fraction in 1u32..1_000_000) {
            prop_assert_eq!(parse_amount(&format!("{n}.{fraction:06}")), Err(AmountError::Fractional));
        }
    }
}
