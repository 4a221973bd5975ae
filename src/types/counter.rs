//! `crdt.counter`: an additive (PN) counter column (docs/design.md, "Counter").
//!
//! The datum is the core crate's compact encoding in a plain varlena. Text and binary input
//! validate completely; merge and value reads work on the bytes without building the state.

use std::cmp::Ordering;

use crdt_core::{AddEncodedError, CounterView, PnCounter};
use crdt_macros::SqlType;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

use crate::clock::local_node_id;
use crate::error::{corrupt_datum, invalid_amount, out_of_range};

const TYPE_NAME: &str = "crdt.counter";

/// An additive counter: per node, the sum of its increments and of its decrements.
/// Its value is Σinc − Σdec; `crdt.merge` takes, per node, the larger of each sum.
// The text input is STABLE: a plain number ('5') is credited to this node (crdt.node_id).
#[derive(SqlType)]
#[sql_type(name = "counter", state = PnCounter, input = stable, plain_input = plain_number_input,
           merge(by = crdt_core::merge_encoded, function = merge_counters))]
pub struct Counter {
    encoded: Vec<u8>,
}

impl Counter {
    pub(crate) fn view(&self) -> Result<CounterView<'_>, ErrorReport> {
        CounterView::parse(&self.encoded).map_err(|err| corrupt_datum(TYPE_NAME, err))
    }

    /// Adds `delta` to this node's slot; overflow of the slot or of the value is `22003`.
    fn add_local(&self, delta: i64) -> Result<Counter, ErrorReport> {
        let mut added = Vec::with_capacity(self.encoded.len() + 20);
        crdt_core::add_encoded(&self.encoded, local_node_id(), delta, &mut added).map_err(|err| match err {
            AddEncodedError::Decode(err) => corrupt_datum(TYPE_NAME, err),
            AddEncodedError::Counter(_) => out_of_range(format!("{TYPE_NAME} value out of range")),
        })?;
        Ok(Counter::from_stored(added))
    }
}

/// Defines `counter + T` and `counter - T` for an amount type `T`: adds to (subtracts in) this
/// node's slot. One pair per type a driver may bind `$1` as, so `inventory + $1` resolves
/// whatever it binds: an exact match for `smallint`, `integer`, `bigint` and `numeric`, and
/// `text` for an untyped parameter or literal (PostgreSQL resolves `unknown` to the string
/// category first). `numeric` and `text` amounts must be whole numbers: never rounded.
macro_rules! amount_operators {
    ($($plus:ident $minus:ident ($amount:ident: $ty:ty) => $to_i64:expr;)*) => {$(
        #[doc = concat!("`counter + ", stringify!($ty), "`: adds to this node's slot (negative amounts count as decrements).")]
        #[pg_operator(stable, strict, parallel_safe)]
        #[opname(+)]
        fn $plus(counter: Counter, $amount: $ty) -> Result<Counter, ErrorReport> {
            counter.add_local($to_i64?)
        }

        #[doc = concat!("`counter - ", stringify!($ty), "`: subtracts in this node's slot.")]
        #[pg_operator(stable, strict, parallel_safe)]
        #[opname(-)]
        fn $minus(counter: Counter, $amount: $ty) -> Result<Counter, ErrorReport> {
            let negated = ($to_i64?)
                .checked_neg()
                .ok_or_else(|| out_of_range(format!("{TYPE_NAME} value out of range")))?;
            counter.add_local(negated)
        }
    )*};
}

amount_operators! {
    counter_plus_bigint counter_minus_bigint (amount: i64) => Ok::<_, ErrorReport>(amount);
    counter_plus_integer counter_minus_integer (amount: i32) => Ok::<_, ErrorReport>(i64::from(amount));
    counter_plus_smallint counter_minus_smallint (amount: i16) => Ok::<_, ErrorReport>(i64::from(amount));
    counter_plus_numeric counter_minus_numeric (amount: AnyNumeric) => numeric_amount(&amount);
    counter_plus_text counter_minus_text (amount: &str) => text_amount(amount);
}

/// A `numeric` amount as a whole `i64` (`22023` with a fraction, `22003` beyond bigint).
fn numeric_amount(amount: &AnyNumeric) -> Result<i64, ErrorReport> {
    text_amount(&amount.to_string())
}

/// A text amount as a whole `i64`.
fn text_amount(amount: &str) -> Result<i64, ErrorReport> {
    crdt_core::parse_amount(amount).map_err(|err| invalid_amount(TYPE_NAME, amount, err))
}

/// The text input of a counter for a plain number (`'5'`, as a driver sends an untyped
/// parameter for `INSERT ... VALUES ($1)`): the number credited to this node, as the
/// assignment casts do. Anything valid UTF-8 that does not start as a JSON object is read as
/// one. Decided on the first byte: every counter a text-mode apply worker reads comes here.
pub(crate) fn plain_number_input(text: &[u8]) -> Option<Result<Vec<u8>, ErrorReport>> {
    if text.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{') {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    Some(text_amount(text).map(|amount| PnCounter::from_value(local_node_id(), amount).encode()))
}

/// Cast `bigint → counter`: the value is credited to this node.
#[pg_extern(stable, strict, parallel_safe)]
fn counter_from_bigint(value: i64) -> Counter {
    Counter::from_stored(PnCounter::from_value(local_node_id(), value).encode())
}

/// Cast `integer → counter`: the value is credited to this node.
#[pg_extern(stable, strict, parallel_safe)]
fn counter_from_integer(value: i32) -> Counter {
    counter_from_bigint(i64::from(value))
}

/// Cast `smallint → counter`: the value is credited to this node.
#[pg_extern(stable, strict, parallel_safe)]
fn counter_from_smallint(value: i16) -> Counter {
    counter_from_bigint(i64::from(value))
}

/// Cast `numeric → counter`: the value, a whole number, is credited to this node.
#[pg_extern(stable, strict, parallel_safe)]
fn counter_from_numeric(value: AnyNumeric) -> Result<Counter, ErrorReport> {
    numeric_amount(&value).map(counter_from_bigint)
}

/// Cast `counter → bigint` (explicit or on assignment): the counter's value; `22003` if merged
/// increments exceed bigint. Deliberately not implicit: with an implicit cast, `n + 1` would
/// silently resolve to `bigint + integer` wherever the `crdt` operators are not on the
/// `search_path`, and assigning that number back would re-credit the whole value to one node.
#[pg_extern(immutable, strict, parallel_safe)]
fn counter_to_bigint(counter: Counter) -> Result<i64, ErrorReport> {
    let value = counter.view()?.value();
    i64::try_from(value).map_err(|_| out_of_range(format!("{TYPE_NAME} value {value} is out of range for type bigint")))
}

/// Orders a counter's value against a number in i128, so values beyond bigint compare correctly.
fn compare_value(counter: &Counter, number: i64) -> Result<Ordering, ErrorReport> {
    Ok(counter.view()?.value().cmp(&i128::from(number)))
}

/// Defines `counter OP bigint` and `bigint OP counter`, comparing the counter's value.
macro_rules! value_comparisons {
    ($($op:tt $counter_left:ident $number_left:ident $holds:path;)*) => {$(
        #[doc = concat!("`counter ", stringify!($op), " bigint`: compares the counter's value.")]
        #[pg_operator(immutable, strict, parallel_safe)]
        #[opname($op)]
        fn $counter_left(counter: Counter, number: i64) -> Result<bool, ErrorReport> {
            compare_value(&counter, number).map($holds)
        }

        #[doc = concat!("`bigint ", stringify!($op), " counter`: compares with the counter's value.")]
        #[pg_operator(immutable, strict, parallel_safe)]
        #[opname($op)]
        fn $number_left(number: i64, counter: Counter) -> Result<bool, ErrorReport> {
            compare_value(&counter, number).map(|order| $holds(order.reverse()))
        }
    )*};
}

value_comparisons! {
    =  counter_eq_bigint bigint_eq_counter Ordering::is_eq;
    != counter_ne_bigint bigint_ne_counter Ordering::is_ne;
    <  counter_lt_bigint bigint_lt_counter Ordering::is_lt;
    <= counter_le_bigint bigint_le_counter Ordering::is_le;
    >  counter_gt_bigint bigint_gt_counter Ordering::is_gt;
    >= counter_ge_bigint bigint_ge_counter Ordering::is_ge;
}

/// The counter's value as `numeric`: exact for every state, also beyond the bigint range.
#[pg_extern(immutable, strict, parallel_safe)]
fn value(counter: Counter) -> Result<AnyNumeric, ErrorReport> {
    Ok(AnyNumeric::from(counter.view()?.value()))
}

/// State transition of `crdt.sum(counter)`: adds the counter's value; NULL counters are skipped,
/// so the sum of no rows (or of only NULLs) is NULL, as for PostgreSQL's own `sum`.
#[pg_extern(immutable, parallel_safe)]
fn counter_sum_step(total: Option<AnyNumeric>, counter: Option<Counter>) -> Result<Option<AnyNumeric>, ErrorReport> {
    let Some(counter) = counter else { return Ok(total) };
    let value = counter.view()?.value();
    Ok(Some(match total {
        Some(total) => total + value,
        None => AnyNumeric::from(value),
    }))
}

extension_sql!(
    r#"
CREATE AGGREGATE sum(counter) (
    SFUNC = counter_sum_step,
    STYPE = numeric,
    COMBINEFUNC = pg_catalog.numeric_add,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE sum(counter) IS 'Sum of the counters'' values, as numeric.';
"#,
    name = "counter_sum",
    requires = [counter_sum_step]
);

extension_sql!(
    r#"
-- A number assigned to a counter column (INSERT ... VALUES (5), DEFAULT 0) becomes this node's
-- contribution; a counter assigned to a number column is its value.
-- Every integer type a driver may bind, and whole numerics.
CREATE CAST (bigint AS counter) WITH FUNCTION counter_from_bigint(bigint) AS ASSIGNMENT;
CREATE CAST (integer AS counter) WITH FUNCTION counter_from_integer(integer) AS ASSIGNMENT;
CREATE CAST (smallint AS counter) WITH FUNCTION counter_from_smallint(smallint) AS ASSIGNMENT;
CREATE CAST (numeric AS counter) WITH FUNCTION counter_from_numeric(numeric) AS ASSIGNMENT;
CREATE CAST (counter AS bigint) WITH FUNCTION counter_to_bigint(counter) AS ASSIGNMENT;
"#,
    name = "counter_casts",
    requires = [
        "counter_type",
        counter_from_bigint,
        counter_from_integer,
        counter_from_smallint,
        counter_from_numeric,
        counter_to_bigint
    ]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const NODE_A: &str = "SET crdt.node_id = 'aaaaaaaa-0000-0000-0000-000000000000'";
    const NODE_B: &str = "SET crdt.node_id = 'bbbbbbbb-0000-0000-0000-000000000000'";

    /// The operators live in schema crdt; tests use them unqualified, as README tells users to.
    fn use_crdt_schema() {
        Spi::run("SET LOCAL search_path = tests, crdt, public").unwrap();
    }

    fn value_of(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn inventory_case_merges_to_nine_in_both_orders() {
        use_crdt_schema();
        Spi::run(NODE_A).unwrap();
        Spi::run("CREATE TEMP TABLE replicas (node text, c crdt.counter)").unwrap();
        Spi::run("INSERT INTO replicas VALUES ('base', 5)").unwrap();
        Spi::run("INSERT INTO replicas SELECT 'a', c + 5 FROM replicas WHERE node = 'base'").unwrap();
        Spi::run(NODE_B).unwrap();
        Spi::run("INSERT INTO replicas SELECT 'b', c - 1 FROM replicas WHERE node = 'base'").unwrap();
        let ab = "SELECT crdt.merge(a.c, b.c)::bigint FROM replicas a, replicas b \
                  WHERE a.node = 'a' AND b.node = 'b'";
        let ba = "SELECT crdt.merge(b.c, a.c)::bigint FROM replicas a, replicas b \
                  WHERE a.node = 'a' AND b.node = 'b'";
        assert_eq!(value_of(ab), 9);
        assert_eq!(value_of(ba), 9);
    }

    #[pg_test]
    fn text_round_trip_is_exact() {
        use_crdt_schema();
        Spi::run(NODE_A).unwrap();
        let text = Spi::get_one::<String>("SELECT ((7::crdt.counter) - 2)::text")
            .unwrap()
            .unwrap();
        let again = Spi::get_one::<String>(&format!("SELECT '{text}'::crdt.counter::text"))
            .unwrap()
            .unwrap();
        assert_eq!(text, again);
        assert!(text.starts_with("{\"value\": 5"), "{text}");
    }

    /// The type's input or receive function, as `getTypeInputInfo`/`getTypeBinaryInputInfo`
    /// find it for a COPY or a subscription: (function, its type parameter).
    fn input_function(binary: bool) -> (pg_sys::Oid, pg_sys::Oid) {
        let (mut function, mut type_parameter) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        let counter = <super::Counter as IntoDatum>::type_oid();
        // SAFETY: out-parameters for an existing type.
        unsafe {
            if binary {
                pg_sys::getTypeBinaryInputInfo(counter, &mut function, &mut type_parameter);
            } else {
                pg_sys::getTypeInputInfo(counter, &mut function, &mut type_parameter);
            }
        }
        (function, type_parameter)
    }

    /// The stored bytes of an input function's result, or whether it raised an error.
    fn stored_or_refused(convert: impl FnOnce() -> pg_sys::Datum) -> Result<Vec<u8>, ()> {
        // The conversion is retried by nothing and its state is dropped on error.
        let convert = std::panic::AssertUnwindSafe(convert);
        PgTryBuilder::new(move || {
            // Used whole, so the closure captures the wrapper, not the function in it.
            let convert = convert;
            let datum = (convert.0)();
            // SAFETY: an input function of crdt.counter returns a non-null counter.
            Ok(unsafe { crate::types::varlena_datum_bytes(datum) })
        })
        .catch_others(|_| Err(()))
        .execute()
    }

    /// Binary input of `bytes` through PostgreSQL's fmgr and `counter_recv`, as a COPY or a
    /// binary subscription calls it: the stored bytes, or whether it refused them.
    fn received(bytes: &[u8]) -> Result<Vec<u8>, ()> {
        let mut message = bytes.to_vec();
        let mut buffer = pg_sys::StringInfoData {
            data: message.as_mut_ptr().cast(),
            len: message.len() as i32,
            maxlen: message.len() as i32,
            cursor: 0,
        };
        let (function, type_parameter) = input_function(true);
        // SAFETY: the receive function of the type, called with a message buffer.
        stored_or_refused(|| unsafe { pg_sys::OidReceiveFunctionCall(function, &mut buffer, type_parameter, -1) })
    }

    /// Text input through PostgreSQL's fmgr and `counter_in`: the stored bytes, or whether it
    /// refused the text.
    fn read(text: &str) -> Result<Vec<u8>, ()> {
        let text = std::ffi::CString::new(text).unwrap();
        let (function, type_parameter) = input_function(false);
        // SAFETY: the input function of the type, called with a NUL-terminated string.
        stored_or_refused(|| unsafe {
            pg_sys::OidInputFunctionCall(function, text.as_ptr().cast_mut(), type_parameter, -1)
        })
    }

    /// The apply worker converts each value twice; the input functions remember the last
    /// conversion. A repeated input must give what the first gave, a different one its own,
    /// and a refused one must be refused every time (only successes are remembered).
    #[pg_test]
    fn repeated_inputs_convert_as_the_first_time() {
        let a = r#"{"value": 3, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [3, 0]}}"#;
        let b = r#"{"value": -2, "nodes": {"bbbbbbbb-0000-4000-8000-000000000002": [1, 3]}}"#;
        let bad = r#"{"value": 4, "nodes": {"aaaaaaaa-0000-4000-8000-000000000001": [3, 0]}}"#;
        let (a_bytes, b_bytes) = (read(a).unwrap(), read(b).unwrap());
        assert_ne!(a_bytes, b_bytes);
        for (text, expected) in [
            (a, Ok(&a_bytes)),
            (a, Ok(&a_bytes)),
            (b, Ok(&b_bytes)),
            (bad, Err(())),
            (bad, Err(())),
            (a, Ok(&a_bytes)),
        ] {
            assert_eq!(read(text).as_ref().map_err(|_| ()), expected, "{text}");
        }
        let mut corrupt = a_bytes.clone();
        corrupt.push(0);
        let inputs = [&a_bytes, &a_bytes, &b_bytes, &corrupt, &corrupt, &b_bytes, &a_bytes];
        for bytes in inputs {
            let expected = if bytes == &corrupt { Err(()) } else { Ok(bytes.clone()) };
            assert_eq!(received(bytes), expected, "{bytes:?}");
        }
    }

    /// Two columns of one type are converted in turn (a, b, a, b): both stay remembered, and
    /// a refused input is converted (and refused) every time.
    #[pg_test]
    fn inputs_of_columns_in_turn_are_converted_once() {
        let inputs = crate::types::io::LastInputs::new();
        let conversions = std::cell::Cell::new(0);
        let convert = |input: &[u8]| {
            inputs.convert(
                input,
                |stored| {
                    conversions.set(conversions.get() + 1);
                    if input == b"refused" {
                        return Err(());
                    }
                    stored.extend_from_slice(&input.to_ascii_uppercase());
                    Ok(())
                },
                <[u8]>::to_vec,
            )
        };
        for input in [&b"a"[..], b"b", b"a", b"b", b"c", b"a", b"refused", b"refused"] {
            let expected = if input == b"refused" {
                Err(())
            } else {
                Ok(input.to_ascii_uppercase())
            };
            assert_eq!(convert(input), expected);
        }
        assert_eq!(conversions.get(), 5, "a, b, c and the refused input twice");
    }

    #[pg_test(error = "crdt.counter value out of range")]
    fn overflow_is_an_error_not_a_wrap() {
        use_crdt_schema();
        Spi::run("SELECT (9223372036854775807::crdt.counter) + 1").unwrap();
    }
}
