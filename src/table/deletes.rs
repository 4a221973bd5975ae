//! A local DELETE records tombstones (`zz_crdt_delete`, AFTER DELETE, per statement); a
//! replicated DELETE is skipped (`zz_crdt_replicated_delete`, `ENABLE REPLICA`: the tombstone
//! that follows it decides); TRUNCATE, which would record none, is refused
//! (`zz_crdt_truncate`).

use std::convert::Infallible;

use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::AllocatedByPostgres;

use super::deletions;
use super::flags;
use super::row::{relation_tupdesc, trigger_tuple};
use super::shape::{relation_name, table_shape, TableShape};
use crate::clock::{node_uuid, stamp_after};
use crate::error::{raise, spi_failed};
use crate::types::row_clock::RowClock;
use crate::types::varlena_datum_slice;

/// The local-delete trigger (`zz_crdt_delete`, `AFTER DELETE`, once per statement): writes the
/// tombstones of the statement's deleted rows.
#[pg_trigger]
fn record_local_deletes<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    record_deletes(trigger).unwrap_or_else(|report| raise(report));
    Ok(None)
}

/// The replicated-delete trigger (`zz_crdt_replicated_delete`, `BEFORE DELETE`, `ENABLE
/// REPLICA`): skips every replicated DELETE. A replicated DELETE carries only the key, so it
/// can't say which writes it had seen; the tombstone that follows it in the same transaction
/// (an INSERT into `crdt.deletions`) can, and decides.
#[pg_trigger]
fn skip_replicated_delete<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    if flags::deleting_for_tombstone() {
        let tupdesc = relation_tupdesc(trigger);
        // For DELETE, tg_trigtuple is the row being deleted: returning it lets the delete go on.
        return Ok(trigger_tuple(tupdesc, trigger.trigger_data().tg_trigtuple));
    }
    Ok(None)
}

/// The TRUNCATE trigger (`zz_crdt_truncate`, `BEFORE TRUNCATE`, ordinary sessions): refuses.
/// TRUNCATE fires no row triggers, so it would write no tombstones: the other nodes would keep
/// the rows and write them back, and a TRUNCATE that replicates echoes between the nodes of a
/// PostgreSQL 15 mesh for good, erasing every write made meanwhile.
#[pg_trigger]
fn refuse_truncate<'a>(trigger: &'a PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    // SAFETY: tg_relation is open for the duration of the trigger call.
    let name = relation_name(trigger.trigger_data().tg_relation);
    raise(
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("cannot truncate CRDT table {name}"),
            "crdt",
        )
        .set_detail("TRUNCATE records no tombstones: the other nodes would keep the rows and send them back.")
        .set_hint(format!(
            "DELETE FROM {name} deletes every row on every node. To empty it on this node only, \
                 SELECT crdt.disable({}) first.",
            pgrx::spi::quote_literal(&name)
        )),
    )
}

/// The local DELETE statement of rows of a CRDT table: records the tombstone `(table, key, D)`
/// of each deleted row in one INSERT, `D` one fresh stamp after every stamp of every deleted row
/// (so after each row's own). Being an AFTER trigger, its INSERT into `crdt.deletions` follows
/// the DELETEs in the transaction's WAL, so subscribers apply both together. The deleted rows
/// come from the statement's transition table, which spills to disk past `work_mem`: nothing
/// here grows with the rows deleted.
pub(super) fn record_deletes(trigger: &PgTrigger<'_>) -> Result<(), ErrorReport> {
    let data = trigger.trigger_data();
    if flags::deleting_for_tombstone() || data.tg_oldtable.is_null() {
        // The delete of a replicated tombstone: that tombstone is recorded already.
        return Ok(());
    }
    let relation = data.tg_relation;
    let shape = table_shape(relation, || relation_name(relation))?;
    let Some(newest) = newest_stamp_of_rows(data.tg_oldtable, relation, &shape)? else {
        return Ok(());
    };
    let deleted = stamp_after(newest)?;
    deletions::as_owner(|| {
        Spi::connect_mut(|client| {
            // SAFETY: the trigger data of this call, whose transition table the query reads.
            unsafe {
                pg_sys::SPI_register_trigger_data(trigger.trigger_data() as *const _ as *mut pg_sys::TriggerData)
            };
            client
                .update(
                    &shape.record_deletions_sql,
                    None,
                    &[
                        shape.qualified_name.as_str().into(),
                        deleted.hlc.to_string().into(),
                        node_uuid(deleted.node).into(),
                    ],
                )
                .map(drop)
        })
        .map_err(spi_failed)
    })?;
    Ok(())
}

/// The newest HLC among the clocks of the rows in `rows` (a transition table of `relation`),
/// `None` if it holds no row.
pub(super) fn newest_stamp_of_rows(
    rows: *mut pg_sys::Tuplestorestate,
    relation: pg_sys::Relation,
    shape: &TableShape,
) -> Result<Option<u64>, ErrorReport> {
    let mut newest = None;
    // SAFETY: `rows` holds tuples of `relation`; the slot is dropped below, and the store
    // rewound for the statement that reads it next.
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot((*relation).rd_att, &pg_sys::TTSOpsMinimalTuple);
        pg_sys::tuplestore_rescan(rows);
        let mut result = Ok(());
        while pg_sys::tuplestore_gettupleslot(rows, true, false, slot) {
            let mut is_null = false;
            let clock = pg_sys::slot_getattr(slot, shape.clock_index as i32 + 1, &mut is_null);
            let max_hlc = if is_null {
                Ok(0)
            } else {
                RowClock::decode_stored(varlena_datum_slice(clock)).map(|clock| clock.max_hlc())
            };
            match max_hlc {
                Ok(hlc) => newest = Some(newest.unwrap_or(0).max(hlc)),
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::tuplestore_rescan(rows);
        result?;
    }
    Ok(newest)
}
