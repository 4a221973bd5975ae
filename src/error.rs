//! Turning core errors into PostgreSQL errors with precise SQLSTATEs.
//!
//! `panic!`/`unwrap()` would surface as `XX000 internal error`; every user-reachable failure goes
//! through here instead so clients can tell bad input (`22P02`) from overflow (`22003`).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

/// `22P02`: a value's text or binary form could not be read as `type_name`.
pub fn invalid_representation(type_name: &str, detail: impl std::fmt::Display) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}"),
        "crdt",
    )
    .set_detail(detail.to_string())
}

/// `22P02` for binary input too, with a message that says the bytes, not text, were wrong: one
/// code for every malformed input path (docs/design.md, "Stored forms and input").
pub fn invalid_binary(type_name: &str, detail: impl std::fmt::Display) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        format!("invalid binary representation for type {type_name}"),
        "crdt",
    )
    .set_detail(detail.to_string())
}

/// An amount for a counter (a `numeric`, or a text from an untyped parameter) that is not a
/// whole number in `bigint`: `22P02` if not a number, `22023` with a fraction (never rounded),
/// `22003` out of range.
pub fn invalid_amount(type_name: &str, amount: &str, err: crdt_core::AmountError) -> ErrorReport {
    let code = match err {
        crdt_core::AmountError::NotANumber => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        crdt_core::AmountError::Fractional => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        crdt_core::AmountError::OutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
    };
    let shown: String = amount.chars().take(64).collect();
    let report = ErrorReport::new(code, format!("invalid {type_name} amount: \"{shown}\""), "crdt").set_detail(
        format!("A {type_name} amount is a whole number in the bigint range; this is {err}."),
    );
    match err {
        crdt_core::AmountError::Fractional => report.set_hint("Round it first, e.g. round($1)."),
        _ => report,
    }
}

/// `22003`: an arithmetic result does not fit the type.
pub fn out_of_range(what: impl Into<String>) -> ErrorReport {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, what.into(), "crdt")
}

/// `XX001`: a stored datum is not in a format this build wrote. Never user input: values are
/// validated completely on the way in, so this means on-disk corruption.
pub fn corrupt_datum(type_name: &str, detail: impl std::fmt::Display) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        format!("stored value of type {type_name} is corrupt"),
        "crdt",
    )
    .set_detail(detail.to_string())
}

/// `54000`: `what` would take `bytes` bytes, beyond the 1 GB PostgreSQL allows for one value.
pub fn too_large(what: &str, bytes: usize) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!("{what} would take {bytes} bytes, more than the 1 GB a PostgreSQL value can hold"),
        "crdt",
    )
}

/// `53200`: memory for `bytes` bytes could not be had, worded as PostgreSQL words it.
pub fn out_of_memory(bytes: usize) -> ErrorReport {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY, "out of memory", "crdt")
        .set_detail(format!("Failed on request of size {bytes}."))
}

/// `55000`: `table` (quoted, schema-qualified) has no primary key, which a CRDT table needs.
pub fn no_primary_key(table: &str) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("table {table} has no primary key"),
        "crdt",
    )
    .set_detail("Replicated rows are matched and merged by primary key.")
    .set_hint(format!("Add one with ALTER TABLE {table} ADD PRIMARY KEY (...)."))
}

/// `XX000` for a failed SPI query of the extension's own: never caused by user input.
pub fn spi_failed(err: pgrx::spi::Error) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("crdt query failed: {err}"),
        "crdt",
    )
}

/// Raises `report` as an ERROR. Only for paths where pgrx would not keep the SQLSTATE of a
/// returned error: the types' I/O functions (`types::io`), and triggers (pgrx turns their `Err` into a panic,
/// `XX000`); everything else returns `Result<_, ErrorReport>`.
pub fn raise(report: ErrorReport) -> ! {
    report.report(pgrx::PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
