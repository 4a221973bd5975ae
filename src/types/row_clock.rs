//! `crdt.row_clock`: the `crdt_clock` column of a CRDT table — per column, the stamp of its
//! last write and a fingerprint of the value then written (DESIGN §5). Written by the triggers;
//! readable (text form) for debugging, dumpable and replicable like any value.

use crdt_core::RowClock;

use crate::types::crdt_sql_type;

/// Per-column stamps of one row of a CRDT table.
// Its SQL mapping is the Rust name (see `crdt_sql_type!`), and the SQL name is `row_clock`.
#[allow(non_camel_case_types)]
pub struct row_clock {
    encoded: Vec<u8>,
}

crdt_sql_type!(row_clock, RowClock, "crdt.row_clock",
    in row_clock_in_wrapper / pg_finfo_row_clock_in_wrapper, out row_clock_out_wrapper / pg_finfo_row_clock_out_wrapper,
    recv row_clock_recv_wrapper / pg_finfo_row_clock_recv_wrapper, send row_clock_send_wrapper / pg_finfo_row_clock_send_wrapper);
