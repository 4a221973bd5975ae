//! A local INSERT or UPDATE (the stamping trigger, `zz_crdt_stamp`, ordinary sessions): stamps
//! exactly the columns the write changed, turns a number assigned to a counter column into a
//! difference, merges a document assigned to a doc column into the stored one, and refuses a
//! change of the primary key.

use std::convert::Infallible;

use crdt_core::{may_write_merged_column, merges_written_doc, stamps_column, ColumnRole, PnCounter, WritePolicy};
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::AllocatedByPostgres;
use smallvec::SmallVec;

use super::flags;
use super::key_probe::{find_key, KeyFound};
use super::merge::merge_replicated;
use super::row::{
    key_changed, merge_crdt_value, relation_id, relation_tupdesc, trigger_tuple, Row, TriggerResult, INLINE_COLUMNS,
};
use super::shape::{relation_name, table_shape, Column, ColumnKind, TableShape};
use crate::clock::{local_node_id, stamp_after};
use crate::error::{corrupt_datum, out_of_range, raise};
use crate::gucs::{WriteMode, WRITE_MODE};

/// The local-write trigger (`zz_crdt_stamp`).
#[pg_trigger]
fn stamp_local_write<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(stamp_local(trigger).unwrap_or_else(|report| raise(report)))
}

/// Stamps a local INSERT or UPDATE (docs/design.md, "A local write"): changed columns get a fresh
/// stamp, newer than every stamp of the row; `crdt.write_mode = put` stamps every column.
pub(super) fn stamp_local<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    if flags::merging_remote_row() {
        // crdt.merge_row: this session writes a row from elsewhere, exactly as an apply worker.
        return merge_replicated(trigger);
    }
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let shape = table_shape(data.tg_relation, || relation_name(data.tg_relation))?;
    let is_update = trigger.op().is_ok_and(|op| matches!(op, PgTriggerOperation::Update));
    // SAFETY: for UPDATE, tg_trigtuple is OLD and tg_newtuple NEW; for INSERT tg_trigtuple is NEW.
    let (old, mut new) = unsafe {
        if is_update {
            (
                Some(Row::deform(data.tg_trigtuple, &tupdesc)),
                Row::deform(data.tg_newtuple, &tupdesc),
            )
        } else {
            (None, Row::deform(data.tg_trigtuple, &tupdesc))
        }
    };
    let mut seen_delete = None;
    match &old {
        Some(old) if key_changed(&shape, old, &new) => return Err(key_update_refused(&shape)),
        Some(_) => {}
        None => {
            // A key deleted before (here, or elsewhere and replicated here): the row is inserted
            // after that delete, and says so, so the delete's tombstone does not remove it on the
            // nodes it reaches (docs/design.md, "Deletes and re-inserts"). A transaction deleting the
            // key right now has its tombstone read once it ends: the probe waits for it. A row
            // found is locked, so no delete comes between this and the unique check.
            if let KeyFound::Free(tombstone) = find_key(data.tg_relation, relation_id(trigger), &shape, &new, true) {
                seen_delete = tombstone;
            }
        }
    }
    let policy = match WRITE_MODE.get() {
        WriteMode::Patch => WritePolicy::Patch,
        WriteMode::Put => WritePolicy::Put,
    };
    let had_clock = old.as_ref().is_some_and(|old| old.clock_bytes(&shape).is_some());
    // The plain columns this write stamps, by the core's policy.
    let stamped: SmallVec<[&Column; INLINE_COLUMNS]> = shape
        .columns
        .iter()
        .filter(|column| {
            let role = match column.kind {
                ColumnKind::Key => ColumnRole::PrimaryKey,
                ColumnKind::Register => ColumnRole::Value,
                ColumnKind::Counter | ColumnKind::Doc => return false,
            };
            stamps_column(policy, role, had_clock, || {
                old.as_ref().is_none_or(|old| !old.same_value(&new, column))
            })
        })
        .collect();
    // Whether NEW differs from the tuple the statement made: if not, it is handed back as it is.
    let mut modified = false;
    match &old {
        // Nothing to stamp and no delete to record (a PATCH that changed only counters or docs,
        // or nothing): the clock stays as stored, neither decoded nor written again. A
        // statement that wrote crdt_clock gets the stored one back.
        Some(old) if had_clock && stamped.is_empty() && seen_delete.is_none() => {
            if new.clock_bytes(&shape) != old.clock_bytes(&shape) {
                new.take_clock(old, &shape);
                modified = true;
            }
        }
        _ => {
            let mut clock = match &old {
                Some(old) => old.clock(&shape)?.unwrap_or_default(),
                None => crdt_core::RowClock::new(),
            };
            if let Some(deleted) = seen_delete {
                // Recorded before stamping, so every column's stamp comes after the delete.
                clock.record_seen_delete(deleted);
            }
            if !stamped.is_empty() {
                let stamp = stamp_after(clock.max_hlc())?;
                for column in &stamped {
                    clock.stamp(&column.name, new.fingerprint(column), stamp);
                }
            }
            new.set_clock(&shape, &clock);
            modified = true;
        }
    }
    if let Some(old) = &old {
        for column in shape.columns.iter().filter(|column| column.kind.merges_itself()) {
            if !may_write_merged_column(old.is_null(column), new.is_null(column)) {
                return Err(null_over_merged_value_refused(&shape, column));
            }
            modified |= match column.kind {
                ColumnKind::Counter => write_counter_locally(old, &mut new, column)?,
                _ if merges_written_doc(new.is_null(column), || old.same_stored_varlena(&new, column)) => {
                    let merged = merge_crdt_value(&new, old, column)?;
                    new.set_merged(old, column, merged)
                }
                _ => false,
            };
        }
    }
    if !modified {
        return Ok(trigger_tuple(
            tupdesc,
            if is_update { data.tg_newtuple } else { data.tg_trigtuple },
        ));
    }
    let tuple = new.form(&tupdesc);
    Ok(trigger_tuple(tupdesc, tuple))
}

/// `0A000`: a primary key is not changed in place on a CRDT table. Replicated, the change would
/// meet concurrent writes of the old key on other nodes, which would keep the old row: a
/// delete and an insert converge, with the tombstone deciding, where a key update cannot.
pub(super) fn key_update_refused(shape: &TableShape) -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        format!(
            "cannot change the primary key of a row of CRDT table {}",
            shape.qualified_name
        ),
        "crdt",
    )
    .set_detail("Rows of CRDT tables are merged across nodes by primary key.")
    .set_hint("Delete the row and insert it again with the new key, in one transaction.")
}

/// `23502`: a counter or doc column that holds a value is not set to NULL. NULL merges as
/// absent, so the other nodes would keep their value and never tell this one.
fn null_over_merged_value_refused(shape: &TableShape, column: &Column) -> ErrorReport {
    let name = pgrx::spi::quote_identifier(&column.name);
    let (type_name, hint) = match column.kind {
        ColumnKind::Doc => (
            "crdt.doc",
            format!("To empty the record, set {name} = crdt.put({name}, '{{}}')."),
        ),
        _ => ("crdt.counter", format!("To reset the counter, set {name} = 0.")),
    };
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
        format!(
            "column \"{}\" of CRDT table {} holds a {type_name} and cannot be set to NULL",
            column.name, shape.qualified_name
        ),
        "crdt",
    )
    .set_detail("A NULL merges as absent: the other nodes would keep their value, and the nodes would differ.")
    .set_hint(hint)
}

/// A counter column written locally: a number assigned to it counts as the difference from the
/// stored value (docs/design.md, "Table columns"), so it composes with concurrent increments
/// elsewhere; a state that descends from the stored one (`c = c + n`) is kept as written,
/// decided on the bytes. Whether the column's value changed.
pub(super) fn write_counter_locally(old: &Row, new: &mut Row, column: &Column) -> Result<bool, ErrorReport> {
    let (Some(old_bytes), Some(new_bytes)) = (old.value_bytes(column), new.value_bytes(column)) else {
        return Ok(false);
    };
    let corrupt = |err| corrupt_datum(&column.name, err);
    if PnCounter::write_local_keeps(&old_bytes, &new_bytes).map_err(corrupt)? {
        return Ok(false);
    }
    let decode = |bytes: &[u8]| PnCounter::decode(bytes).map_err(corrupt);
    let written = PnCounter::write_local(&decode(&old_bytes)?, &decode(&new_bytes)?, local_node_id())
        .map_err(|_| out_of_range(format!("crdt.counter column {} out of range", column.name)))?;
    let encoded = written.encode();
    if encoded == *new_bytes {
        return Ok(false);
    }
    new.set_bytes(column.index, &encoded);
    Ok(true)
}
