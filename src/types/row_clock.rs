//! `crdt.row_clock`: the `crdt_clock` column of a CRDT table — per column, the stamp of its
//! last write and a fingerprint of the value then written (DESIGN §5). Written by the triggers;
//! readable (text form) for debugging, dumpable and replicable like any value.

use crdt_core::RowClock;
use pgrx::prelude::*;

use crate::types::crdt_sql_type;

/// Per-column stamps of one row of a CRDT table.
// pgrx names the SQL type after the Rust struct, and the SQL name is `row_clock`.
#[allow(non_camel_case_types)]
#[derive(PostgresType)]
#[inoutfuncs]
#[bikeshed_postgres_type_manually_impl_from_into_datum]
pub struct row_clock {
    encoded: Vec<u8>,
}

crdt_sql_type!(row_clock, RowClock, "crdt.row_clock", row_clock_recv, row_clock_send);

extension_sql!(
    "ALTER TYPE row_clock SET (RECEIVE = row_clock_recv, SEND = row_clock_send);",
    name = "row_clock_binary_io",
    requires = [row_clock, row_clock_recv, row_clock_send]
);
