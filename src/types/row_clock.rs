//! `crdt.row_clock`: the `crdt_clock` column of a CRDT table — per column, the stamp of its
//! last write and a fingerprint of the value then written (docs/design.md, "The row clock").
//! Written by the triggers; readable (text form) for debugging, dumpable and replicable like any
//! value. It has no merge of its own: the triggers merge rows (`src/table/merge.rs`).

use crdt_macros::SqlType;

/// Per-column stamps of one row of a CRDT table.
#[derive(SqlType)]
#[sql_type(name = "row_clock", state = crdt_core::RowClock)]
pub struct RowClock {
    encoded: Vec<u8>,
}
