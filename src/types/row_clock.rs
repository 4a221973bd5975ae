//! `crdt.row_clock`: the `crdt_clock` column of a CRDT table — per column, the stamp of its
//! last write and a fingerprint of the value then written (DESIGN §5). Written by the triggers;
//! readable (text form) for debugging, dumpable and replicable like any value.

use std::ffi::CStr;

use crdt_core::RowClock;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{InOutFuncs, Internal, StringInfo};

use crate::error::{corrupt_datum, invalid_binary, invalid_representation, raise};
use crate::types::stored_as_varlena;

const TYPE_NAME: &str = "crdt.row_clock";

/// Per-column stamps of one row of a CRDT table.
// pgrx names the SQL type after the Rust struct, and the SQL name is `row_clock`.
#[allow(non_camel_case_types)]
#[derive(PostgresType)]
#[inoutfuncs]
#[bikeshed_postgres_type_manually_impl_from_into_datum]
pub struct row_clock {
    encoded: Vec<u8>,
}

impl row_clock {
    fn from_stored(encoded: Vec<u8>) -> Self {
        row_clock { encoded }
    }

    fn stored(&self) -> &[u8] {
        &self.encoded
    }

    /// The datum for a clock.
    pub fn from_clock(clock: &RowClock) -> Self {
        row_clock { encoded: clock.encode() }
    }

    /// The clock of a stored datum (`XX001` if it is not one).
    pub fn clock(&self) -> Result<RowClock, ErrorReport> {
        RowClock::decode(&self.encoded).map_err(|err| corrupt_datum(TYPE_NAME, err))
    }
}

stored_as_varlena!(row_clock, "crdt.row_clock");

impl InOutFuncs for row_clock {
    fn input(input: &CStr) -> Self {
        let parsed = input
            .to_str()
            .map_err(|err| invalid_representation(TYPE_NAME, err))
            .and_then(|text| RowClock::from_text(text).map_err(|err| invalid_representation(TYPE_NAME, err)));
        match parsed {
            Ok(clock) => row_clock::from_clock(&clock),
            Err(report) => raise(report),
        }
    }

    fn output(&self, buffer: &mut StringInfo) {
        match self.clock() {
            Ok(clock) => buffer.push_str(&clock.to_text()),
            Err(report) => raise(report),
        }
    }
}

/// Binary input: the compact encoding, validated completely and consumed whole.
#[pg_extern(immutable, strict, parallel_safe)]
fn row_clock_recv(mut internal: Internal) -> Result<row_clock, ErrorReport> {
    let bytes = crate::types::unread_message_bytes(&mut internal, TYPE_NAME)?;
    let clock = RowClock::decode(bytes).map_err(|err| invalid_binary(TYPE_NAME, err))?;
    Ok(row_clock::from_clock(&clock))
}

/// Binary output: the compact encoding.
#[pg_extern(immutable, strict, parallel_safe)]
fn row_clock_send(clock: row_clock) -> Vec<u8> {
    clock.encoded
}

extension_sql!(
    "ALTER TYPE row_clock SET (RECEIVE = row_clock_recv, SEND = row_clock_send);",
    name = "row_clock_binary_io",
    requires = [row_clock, row_clock_recv, row_clock_send]
);
