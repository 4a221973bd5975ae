//! A replicated tombstone (the trigger of `crdt.deletions`, `zz_crdt_apply_deletion`, `ENABLE
//! REPLICA`): deletes the row it names unless the row was inserted after a delete at least as
//! new, and is stored; one this node has already is skipped, which ends the echo of tombstones.

use std::borrow::Cow;
use std::convert::Infallible;
use std::ffi::CStr;

use crdt_core::{NodeId, Stamp};
use pgrx::datum::{DatumWithOid, IntoDatum};
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{AllocatedByPostgres, AnyNumeric, FromDatum, PgTupleDesc};

use super::conflicts::{self, Conflict};
use super::deletions::{self, DELETION_HLC, DELETION_KEY, DELETION_KEY_HASH, DELETION_NODE, DELETION_TABLE};
use super::flags;
use super::key_lock::{lock_key, read_holding_key_lock, release_key_lock};
use super::key_probe::probe_key;
use super::roles;
use super::row::{composite_row, relation_tupdesc, trigger_tuple, RawDatum, Row, TriggerResult};
use super::shape::{relation_name, table_shape, TableShape};
use crate::clock::warn_if_far_ahead;
use crate::error::{raise, spi_failed};
use crate::stats::{self, Event};
use crate::types::row_clock::RowClock;
use crate::types::varlena_datum_slice;

/// The tombstone trigger of `crdt.deletions` (`zz_crdt_apply_deletion`, `BEFORE INSERT`,
/// `ENABLE REPLICA`): applies a replicated delete.
#[pg_trigger]
fn apply_replicated_deletion<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(apply_deletion(trigger).unwrap_or_else(|report| raise(report)))
}

/// A replicated tombstone `(table, key, D)`. Known already: skipped (this ends the echo of
/// tombstones). Otherwise the row with that key is deleted unless it was inserted after this
/// node had seen a delete at least as new as `D` (its clock's seen-delete entry), and the
/// tombstone is stored.
///
/// Races (docs/deletes.md): the key lock is taken and the table probed for the key, waiting
/// for every transaction still writing it; a row found is locked, and a row not found can't
/// appear before this tombstone is in the index, where every later insert of the key finds it.
pub(super) fn apply_deletion<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let tuple = data.tg_trigtuple;
    // SAFETY: for INSERT, tg_trigtuple is the incoming tombstone, a tuple of crdt.deletions.
    let mut tombstone = unsafe { Row::deform(tuple, &tupdesc) };
    let columns = [DELETION_TABLE, DELETION_KEY, DELETION_HLC, DELETION_NODE];
    if tombstone.nulls.len() < columns.len() || columns.iter().any(|&index| tombstone.nulls[index]) {
        // Let the NOT NULL constraints say what is wrong.
        return Ok(trigger_tuple(tupdesc, tuple));
    }
    let key_json = tombstone.values[DELETION_KEY];
    // SAFETY: a non-null text datum.
    let table_name =
        String::from_utf8_lossy(unsafe { varlena_datum_slice(tombstone.values[DELETION_TABLE]) }).into_owned();
    // SAFETY: a non-null uuid datum: 16 bytes by reference.
    let node = unsafe { std::slice::from_raw_parts(tombstone.values[DELETION_NODE].cast_mut_ptr::<u8>(), 16) };
    let node = NodeId::from_bytes(node.try_into().unwrap_or([0; 16]));
    // SAFETY: a non-null numeric datum.
    let hlc = unsafe { AnyNumeric::from_datum(tombstone.values[DELETION_HLC], false) };
    let Some(deleted) = hlc
        .and_then(|hlc| hlc.to_string().parse::<u64>().ok())
        .map(|hlc| Stamp::new(hlc, node))
    else {
        // Let the CHECK constraint say what is wrong.
        return Ok(trigger_tuple(tupdesc, tuple));
    };
    // key_hash as this node computes it, whatever the publisher sent (nothing, if its
    // crdt.deletions has no such column), so that this node's probes find the tombstone.
    let key_hash = deletions::key_hash(tombstone.values[DELETION_TABLE], key_json);
    // A tombstone this node has already (an echo, or the same delete through another
    // subscription) is skipped: looked up first, so an echo costs no more than this probe; and
    // again below, under the key lock, for one still being written.
    let known =
        || deletions::stamps_of_hashed_key(tombstone.values[DELETION_TABLE], key_json, key_hash).contains(&deleted);
    if known() {
        if stats::counting() {
            let relid = regclass_of(&table_name).unwrap_or(pg_sys::InvalidOid);
            stats::count(relid, Event::RemoteRow, 1);
            stats::count(relid, Event::EchoSkipped, 1);
        }
        return Ok(None);
    }

    // The CRDT table the tombstone is of, if this node has it: a table with this name as crdt
    // names it, with a row clock.
    let relid = regclass_of(&table_name);
    // SAFETY: an existing relation, locked as any write to it would; `None` if dropped since.
    let relation = relid
        .filter(|relid| *relid != pg_sys::InvalidOid)
        .and_then(|relid| unsafe {
            let relation = pg_sys::try_relation_open(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
            (!relation.is_null()).then_some(relation)
        });
    let target = relation.and_then(|relation| {
        let name = relation_name(relation);
        // SAFETY: an open relation.
        let is_table = unsafe { (*(*relation).rd_rel).relkind } == pg_sys::RELKIND_RELATION as std::ffi::c_char;
        (is_table && name == table_name)
            .then(|| table_shape(relation, || name).ok())
            .flatten()
            .map(|shape| (relation, shape))
    });

    let relid = relid.unwrap_or(pg_sys::InvalidOid);
    warn_if_far_ahead(deleted.hlc, relid, || table_name.clone());
    if target.is_some() {
        stats::count(relid, Event::RemoteRow, 1);
    }
    // The row (or, for a table this node does not have, only the key lock), then the tombstone
    // again: one of the same delete still being written through another subscription is waited
    // for, and the wait lets go of the key lock, so an insert of the key may get through
    // meanwhile. Then the row is looked for again.
    let known_now = loop {
        if let Some((relation, shape)) = &target {
            // As the table's owner, never as ours (see crate::roles).
            // SAFETY: an open relation.
            let owner = unsafe { roles::owner_of(*relation) };
            roles::as_role(owner, || delete_row_of_tombstone(*relation, shape, key_json, deleted))?;
        } else {
            // A table this node does not have (or not as a CRDT table): the tombstone is only
            // stored; the key lock keeps out the same tombstone arriving through another
            // subscription until this one is in the index.
            // key_hash names the table too; its low half is the lock's hash.
            lock_key(deletions::relation_id().unwrap_or(pg_sys::InvalidOid), key_hash as u32);
        }
        let (known_now, held_throughout) = read_holding_key_lock(known);
        if known_now || held_throughout {
            break known_now;
        }
    };
    if let Some(relation) = relation {
        // SAFETY: opened above; its lock is kept to the end of the transaction.
        unsafe { pg_sys::relation_close(relation, pg_sys::NoLock as pg_sys::LOCKMODE) };
    }
    // Known by now (through another subscription, while this one waited): skipped.
    if known_now {
        release_key_lock();
        stats::count(relid, Event::EchoSkipped, 1);
        return Ok(None);
    }
    let sent = (!tombstone.nulls.get(DELETION_KEY_HASH).copied().unwrap_or(true))
        .then(|| tombstone.values[DELETION_KEY_HASH].value() as i64);
    if sent == Some(key_hash) || tombstone.values.len() <= DELETION_KEY_HASH {
        return Ok(trigger_tuple(tupdesc, tuple));
    }
    tombstone.values[DELETION_KEY_HASH] = pg_sys::Datum::from(key_hash);
    tombstone.nulls[DELETION_KEY_HASH] = false;
    let tuple = tombstone.form(&tupdesc);
    Ok(trigger_tuple(tupdesc, tuple))
}

/// The relation a name (as `crdt.deletions` keeps it) names, if any.
fn regclass_of(name: &str) -> Option<pg_sys::Oid> {
    let name = name.into_datum()?;
    // SAFETY: to_regclass takes a text; NULL for a name that names nothing. (A name that does
    // not parse raises 42602 on PostgreSQL 15; crdt writes none.)
    unsafe { pgrx::direct_function_call::<pg_sys::Oid>(pg_sys::to_regclass, &[Some(name)]) }
}

/// Deletes the row of `relation` (a CRDT table) whose key is the `jsonb` object `key_json`
/// unless it was inserted after a delete at least as new as `deleted`
/// (docs/design.md, "Deletes and re-inserts"). If there is no such row, the key lock is held on
/// return.
pub(super) fn delete_row_of_tombstone(
    relation: pg_sys::Relation,
    shape: &TableShape,
    key_json: pg_sys::Datum,
    deleted: Stamp,
) -> Result<(), ErrorReport> {
    // SAFETY: an open relation.
    let (relid, tupdesc) = unsafe { ((*relation).rd_id, PgTupleDesc::from_pg_unchecked((*relation).rd_att)) };
    with_key_row(shape, &tupdesc, key_json, |key_row| {
        while let Some(row) = probe_key(relation, relid, shape, key_row) {
            // A clock that can't be read has seen nothing. Read unlocked: the newest delete a
            // row has seen only grows, so a row kept stays rightly kept; one deleted is deleted
            // where it is, or found again if it changed meanwhile.
            let clock = row.clock.and_then(|clock| RowClock::decode_stored(&clock).ok());
            if !clock.as_ref().is_none_or(|clock| clock.is_deleted_by(deleted)) {
                return Ok(());
            }
            if delete_at(shape, row.tid)? {
                stats::count(relid, Event::DeleteApplied, 1);
                // A row last written by another node than the delete's: what that node wrote
                // went with it.
                let written = clock.as_ref().and_then(|clock| clock.row_stamp());
                if written.is_some_and(|written| written.node != deleted.node) {
                    conflicts::record(&Conflict {
                        table: &shape.qualified_name,
                        key: key_json,
                        kind: "delete_origin_differs",
                        columns: Vec::new(),
                        local: written,
                        remote: Some(deleted),
                    });
                }
                return Ok(());
            }
        }
        Ok(())
    })
}

/// Deletes the row at `tid` as a replicated tombstone's delete; whether it was still there.
pub(super) fn delete_at(shape: &TableShape, mut tid: pg_sys::ItemPointerData) -> Result<bool, ErrorReport> {
    // SAFETY: a tid datum (by reference) that outlives the statement.
    let tid = unsafe { DatumWithOid::new(RawDatum(pg_sys::Datum::from(&mut tid as *mut _)), pg_sys::TIDOID) };
    flags::while_deleting_for_tombstone(|| {
        Spi::connect_mut(|client| {
            client
                .update(&shape.delete_at, None, &[tid])
                .map(|rows| !rows.is_empty())
        })
        .map_err(spi_failed)
    })
}

/// Runs `work` on a row holding the key whose `jsonb` object (as `crdt.deletions` names it) is
/// `key_json` in its key columns, NULL elsewhere. Each key column's value is read from the
/// object with the column type's input function, as `jsonb_populate_record` does for scalars;
/// a key with a column of a JSON, array or composite type goes through `jsonb_populate_record`
/// itself.
pub(super) fn with_key_row<T>(
    shape: &TableShape,
    tupdesc: &PgTupleDesc<'_>,
    key_json: pg_sys::Datum,
    work: impl FnOnce(&Row) -> Result<T, ErrorReport>,
) -> Result<T, ErrorReport> {
    let natts = tupdesc.len();
    let mut row = Row {
        values: smallvec::smallvec![pg_sys::Datum::from(0); natts],
        nulls: smallvec::smallvec![true; natts],
    };
    // SAFETY: a non-null jsonb datum; the key inputs are the key columns' own.
    let scalar = unsafe { key_values_from_json(shape, key_json, &mut row) };
    if scalar {
        return work(&row);
    }
    // SAFETY: a non-null jsonb datum of the incoming tombstone.
    let key = unsafe { DatumWithOid::new(RawDatum(key_json), pg_sys::JSONBOID) };
    Spi::connect(|client| {
        let rows = client.select(&shape.row_of_key_json, None, &[key])?;
        let key_row = match rows.first().get_datum_by_ordinal(1)? {
            // SAFETY: a composite of the table's row type, alive in SPI's memory until the
            // connection closes, which outlives `key_row`.
            Some(composite) => unsafe { composite_row(composite, tupdesc) },
            None => row,
        };
        Ok::<_, pgrx::spi::Error>(work(&key_row))
    })
    .map_err(spi_failed)?
}

/// Fills `row`'s key columns from the `jsonb` object `key_json`; false if a key column's type
/// is not read that simply (see [`with_key_row`]) — NULLs left where the object has no value.
///
/// # Safety
/// `key_json` must be a non-null jsonb datum.
pub(super) unsafe fn key_values_from_json(shape: &TableShape, key_json: pg_sys::Datum, row: &mut Row) -> bool {
    // SAFETY: per the contract; the found values point into the detoasted jsonb, read at once.
    unsafe {
        let jsonb = pg_sys::pg_detoast_datum(key_json.cast_mut_ptr()) as *mut pg_sys::Jsonb;
        for (input, &index) in shape.key_inputs.iter().zip(&shape.key_indexes) {
            let Some(input) = input else { return false };
            let mut name: pg_sys::JsonbValue = std::mem::zeroed();
            name.type_ = pg_sys::jbvType::jbvString;
            name.val.string.len = input.name.as_bytes().len() as i32;
            name.val.string.val = input.name.as_ptr().cast_mut();
            let value = pg_sys::findJsonbValueFromContainer(&mut (*jsonb).root, pg_sys::JB_FOBJECT, &mut name);
            if value.is_null() {
                continue;
            }
            let text: Cow<'_, CStr> = match (*value).type_ {
                pg_sys::jbvType::jbvString => {
                    let string = (*value).val.string;
                    let bytes = std::slice::from_raw_parts(string.val.cast::<u8>(), string.len as usize);
                    // jsonb strings hold no NUL (\u0000 is refused on input).
                    match std::ffi::CString::new(bytes) {
                        Ok(text) => Cow::Owned(text),
                        Err(_) => continue,
                    }
                }
                pg_sys::jbvType::jbvNumeric => Cow::Borrowed(
                    pgrx::direct_function_call::<&CStr>(
                        pg_sys::numeric_out,
                        &[Some(pg_sys::Datum::from((*value).val.numeric))],
                    )
                    .unwrap_or_default(),
                ),
                pg_sys::jbvType::jbvBool if (*value).val.boolean => Cow::Borrowed(c"true"),
                pg_sys::jbvType::jbvBool => Cow::Borrowed(c"false"),
                // NULL: no row has it. Anything else: not a scalar after all.
                pg_sys::jbvType::jbvNull => continue,
                _ => return false,
            };
            row.values[index] =
                pg_sys::OidInputFunctionCall(input.function, text.as_ptr().cast_mut(), input.io_param, input.typmod);
            row.nulls[index] = false;
        }
        true
    }
}
