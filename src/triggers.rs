//! The row triggers of a CRDT table and of its tombstones (DESIGN §5, docs/deletes.md).
//!
//! - `stamp_local_write` (ordinary sessions): stamps exactly the columns a local INSERT or
//!   UPDATE changed, turns numbers assigned to counter columns into differences, and merges
//!   documents assigned to doc columns into the stored ones. A change of the primary key is
//!   refused.
//! - `merge_replicated_row` (`ENABLE REPLICA`: apply workers): merges a replicated row into the
//!   local one column by column, and skips the write when nothing changes — which is what ends
//!   the echo of bidirectional replication on PostgreSQL 15. A replicated INSERT of a key with a
//!   tombstone the row had not seen is dropped.
//! - `record_local_deletes` (AFTER DELETE, per statement, ordinary sessions): writes the
//!   tombstones of a statement's deleted rows into `crdt.deletions`, in one INSERT.
//! - `skip_replicated_delete` (`ENABLE REPLICA`): skips replicated DELETEs.
//! - `refuse_truncate` (BEFORE TRUNCATE, ordinary sessions): TRUNCATE writes no tombstones.
//! - `apply_replicated_deletion` (on `crdt.deletions`, `ENABLE REPLICA`): applies a replicated
//!   tombstone — deletes the row unless it was inserted after a delete at least as new.
//!
//! Every decision is the core's (`RowClock`, `PnCounter`, the doc merge, `delete_wins`); this
//! module moves datums in and out. Writers of a key that may not exist yet take its key lock and
//! probe the indexes (`key_lock`, `index_probe`), so no two of them miss each other and no lock
//! is held per row. Everything reached from here is schema-qualified or catalog-driven, because
//! apply workers run with an empty `search_path`.

use std::borrow::Cow;
use std::convert::Infallible;
use std::ffi::CStr;

use crdt_core::{delete_wins, value_fingerprint, ColumnChoice, CounterView, NodeId, PnCounter, RowClock, Stamp};
use pgrx::datum::{DatumWithOid, IntoDatum};
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{AllocatedByPostgres, AnyNumeric, FromDatum, PgTupleDesc};
use smallvec::SmallVec;

use crate::clock::{local_node_id, stamp_after, warn_if_far_ahead};
use crate::error::{corrupt_datum, out_of_range, raise, spi_failed};
use crate::gucs::{WriteMode, WRITE_MODE};
use crate::index_probe;
use crate::key_lock::{lock_key, release_key_lock};
use crate::roles;
use crate::table_shape::{relation_name, table_shape, Column, ColumnKind, TableShape};
use crate::tombstones;
use crate::types::row_clock::row_clock;
use crate::types::{bytes_into_varlena_datum, varlena_datum_slice};

thread_local! {
    /// Set while `crdt.merge_row` writes: local writes are then merged like replicated ones.
    static MERGING_REMOTE_ROW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Set while a replicated tombstone deletes the row it names: the replicated-delete trigger
    /// lets that delete through (it skips every other delete in apply workers).
    static DELETING_FOR_TOMBSTONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with `flag` set, and clears it after, however `work` ends.
fn while_set<T>(flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>, work: impl FnOnce() -> T) -> T {
    struct Clear(&'static std::thread::LocalKey<std::cell::Cell<bool>>);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.set(false);
        }
    }
    flag.set(true);
    let _clear = Clear(flag);
    work()
}

/// The row-clock entry recording the newest delete of the row's key this node had seen when the
/// row was (re)inserted here. No column can have this name: PostgreSQL forbids empty
/// identifiers. It merges like any stamp of a column the table does not have (last writer wins).
const SEEN_DELETE: &str = "";
/// The fingerprint kept with the [`SEEN_DELETE`] entry (it stands for no value).
const SEEN_DELETE_FINGERPRINT: u32 = 0;

/// Merges a row from another node — e.g. fetched by a sync path other than logical
/// replication, as `jsonb` with its `crdt_clock` — into `table` exactly as the merge trigger of
/// an apply worker would: column by column, counters and docs by their merges, an existing key
/// merged rather than duplicated, nothing written if nothing changes.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn merge_row(table: pgrx::PgRelation, row: crate::types::jsonb_text::JsonbText) -> Result<(), ErrorReport> {
    let relid = table.oid();
    drop(table);
    let name = crate::tables::table_facts(relid)?.qualified_name;
    while_set(&MERGING_REMOTE_ROW, || {
        Spi::run_with_args(
            &format!("INSERT INTO {name} SELECT * FROM pg_catalog.jsonb_populate_record(NULL::{name}, $1)"),
            &[row.into()],
        )
        .map_err(spi_failed)
    })
}

/// A row's column values, deformed. Tables of up to [`INLINE_COLUMNS`] columns keep them in
/// the row itself: the merge trigger handles three rows per replicated row, and allocating and
/// freeing their arrays showed in its profile. A clone copies the datums (pointing at the
/// same values).
#[derive(Clone)]
struct Row {
    values: SmallVec<[pg_sys::Datum; INLINE_COLUMNS]>,
    nulls: SmallVec<[bool; INLINE_COLUMNS]>,
}

/// Columns a [`Row`] holds without allocating.
const INLINE_COLUMNS: usize = 16;

impl Row {
    /// # Safety
    /// `tuple` must be a valid heap tuple described by `tupdesc`.
    unsafe fn deform(tuple: pg_sys::HeapTuple, tupdesc: &PgTupleDesc<'_>) -> Row {
        let natts = tupdesc.len();
        let mut row = Row {
            values: smallvec::smallvec![pg_sys::Datum::from(0); natts],
            nulls: smallvec::smallvec![true; natts],
        };
        // SAFETY: per the contract; the arrays hold natts entries.
        unsafe {
            // A row stored before an ADD COLUMN has fewer attributes than its descriptor: the
            // missing ones come from a cache that can allocate (and raise), so that row goes
            // through pgrx's guard.
            let stored_attributes = (*(*tuple).t_data).t_infomask2 & pg_sys::HEAP_NATTS_MASK as u16;
            if usize::from(stored_attributes) >= natts {
                crate::no_raise::deform_tuple(tuple, tupdesc.as_ptr(), row.values.as_mut_ptr(), row.nulls.as_mut_ptr())
            } else {
                pg_sys::heap_deform_tuple(tuple, tupdesc.as_ptr(), row.values.as_mut_ptr(), row.nulls.as_mut_ptr())
            }
        };
        row
    }

    fn form(&mut self, tupdesc: &PgTupleDesc<'_>) -> pg_sys::HeapTuple {
        // SAFETY: values/nulls were deformed with this descriptor and only replaced by datums of
        // the same column types.
        unsafe { pg_sys::heap_form_tuple(tupdesc.as_ptr(), self.values.as_mut_ptr(), self.nulls.as_mut_ptr()) }
    }

    /// The primary key's values, in the key's order; `None` if one is NULL (no row has it).
    fn key_values(&self, shape: &TableShape) -> Option<SmallVec<[pg_sys::Datum; 4]>> {
        let key = || shape.key_indexes.iter().copied();
        (!key().any(|index| self.nulls[index])).then(|| key().map(|index| self.values[index]).collect())
    }

    fn is_null(&self, column: &Column) -> bool {
        self.nulls[column.index]
    }

    /// The value's bytes as PostgreSQL holds them (detoasted), the same on every node of one
    /// architecture; `None` for NULL. Borrowed from the datum unless it is passed by value.
    fn value_bytes(&self, column: &Column) -> Option<Cow<'_, [u8]>> {
        if self.is_null(column) {
            return None;
        }
        let datum = self.values[column.index];
        let bytes = match (column.byval, column.typlen) {
            (true, len) => Cow::Owned(datum.value().to_ne_bytes()[..usize::try_from(len).unwrap_or(0).min(8)].to_vec()),
            // SAFETY: a non-null by-reference datum of a fixed-length type points at len bytes.
            (false, len) if len > 0 => {
                Cow::Borrowed(unsafe { std::slice::from_raw_parts(datum.cast_mut_ptr::<u8>(), len as usize) })
            }
            // SAFETY: a non-null varlena datum, alive (with any detoasted copy) for the
            // trigger call, which outlives this row.
            (false, -1) => Cow::Borrowed(unsafe { varlena_datum_slice(datum) }),
            // SAFETY: a non-null cstring datum.
            _ => Cow::Borrowed(unsafe { CStr::from_ptr(datum.cast_mut_ptr()) }.to_bytes()),
        };
        Some(bytes)
    }

    /// The row clock's bytes, `None` if the row has none.
    fn clock_bytes(&self, shape: &TableShape) -> Option<&[u8]> {
        if self.nulls[shape.clock_index] {
            return None;
        }
        // SAFETY: the clock column holds a non-null crdt.row_clock (a varlena), alive for the
        // trigger call.
        Some(unsafe { varlena_datum_slice(self.values[shape.clock_index]) })
    }

    fn fingerprint(&self, column: &Column) -> u32 {
        value_fingerprint(self.value_bytes(column).as_deref())
    }

    fn same_value(&self, other: &Row, column: &Column) -> bool {
        match (self.is_null(column), other.is_null(column)) {
            (true, true) => true,
            // The same datum (by value, or the same pointer — an unchanged TOASTed value) is
            // the same value without reading it; otherwise compare the detoasted bytes.
            (false, false) => {
                self.values[column.index] == other.values[column.index]
                    || self.value_bytes(column) == other.value_bytes(column)
            }
            _ => false,
        }
    }

    /// Whether every column holds the same value as in `other` (the same datum, or equal
    /// bytes).
    fn same_row(&self, other: &Row, shape: &TableShape) -> bool {
        let same_datum =
            |i: usize| self.nulls[i] == other.nulls[i] && (self.nulls[i] || self.values[i] == other.values[i]);
        self.values.len() == other.values.len()
            && (0..self.values.len()).all(|i| {
                same_datum(i)
                    || (i == shape.clock_index && self.clock_bytes(shape) == other.clock_bytes(shape))
                    || shape
                        .columns
                        .iter()
                        .any(|column| column.index == i && self.same_value(other, column))
            })
    }

    fn clock(&self, shape: &TableShape) -> Result<Option<RowClock>, ErrorReport> {
        self.clock_bytes(shape).map(row_clock::decode_stored).transpose()
    }

    fn set_clock(&mut self, shape: &TableShape, clock: &RowClock) {
        self.set_bytes(shape.clock_index, &clock.encode());
    }

    fn set_bytes(&mut self, index: usize, bytes: &[u8]) {
        self.values[index] = bytes_into_varlena_datum(bytes);
        self.nulls[index] = false;
    }

    fn take(&mut self, other: &Row, column: &Column) {
        self.values[column.index] = other.values[column.index];
        self.nulls[column.index] = other.nulls[column.index];
    }

    /// Puts the merge of this row's value of `column` with `theirs`' in place; whether the
    /// value changed.
    fn set_merged(&mut self, theirs: &Row, column: &Column, merged: MergedValue) -> bool {
        match merged {
            MergedValue::Ours => return false,
            MergedValue::Theirs => self.take(theirs, column),
            MergedValue::New(bytes) => self.set_bytes(column.index, &bytes),
        }
        true
    }
}

/// The merge of one CRDT-typed column.
enum MergedValue {
    /// Ours already is the merge.
    Ours,
    /// Theirs is (taken as is, so a row equal to theirs is written without forming a tuple).
    Theirs,
    /// Neither: the merged bytes.
    New(Vec<u8>),
}

/// Merges two CRDT-typed values (counter or doc) by the type's own merge; NULL merges as absent.
fn merge_crdt_value(ours: &Row, theirs: &Row, column: &Column) -> Result<MergedValue, ErrorReport> {
    let (Some(local), Some(remote)) = (ours.value_bytes(column), theirs.value_bytes(column)) else {
        let theirs_only = ours.is_null(column) && !theirs.is_null(column);
        return Ok(if theirs_only {
            MergedValue::Theirs
        } else {
            MergedValue::Ours
        });
    };
    if column.kind == ColumnKind::Counter {
        let corrupt = |err| corrupt_datum(&column.name, err);
        // One side holding the other is the common case: decided without writing the merge.
        return Ok(
            match CounterView::covers_each_other(&local, &remote).map_err(corrupt)? {
                (true, _) => MergedValue::Ours,
                (false, true) => MergedValue::Theirs,
                (false, false) => {
                    let (local_counter, remote_counter) = (
                        CounterView::parse(&local).map_err(corrupt)?,
                        CounterView::parse(&remote).map_err(corrupt)?,
                    );
                    let mut merged = Vec::with_capacity(local.len() + remote.len());
                    local_counter.merge_into(&remote_counter, &mut merged);
                    MergedValue::New(merged)
                }
            },
        );
    }
    let mut merged = Vec::with_capacity(local.len().max(remote.len()));
    crdt_core::doc::merge_encoded(&local, &remote, &mut merged).map_err(|err| corrupt_datum(&column.name, err))?;
    Ok(if merged == *local {
        MergedValue::Ours
    } else if merged == *remote {
        MergedValue::Theirs
    } else {
        MergedValue::New(merged)
    })
}

fn trigger_tuple<'a>(
    tupdesc: PgTupleDesc<'a>,
    tuple: pg_sys::HeapTuple,
) -> Option<PgHeapTuple<'a, AllocatedByPostgres>> {
    // SAFETY: a tuple just formed with this descriptor, in the trigger's memory context.
    Some(unsafe { PgHeapTuple::from_heap_tuple(tupdesc, tuple) })
}

/// The trigger's relation descriptor; not freed when dropped (the relation owns it).
fn relation_tupdesc<'a>(trigger: &PgTrigger<'a>) -> PgTupleDesc<'a> {
    let data = trigger.trigger_data();
    // SAFETY: tg_relation is open for the duration of the trigger call.
    unsafe { PgTupleDesc::from_pg_unchecked((*data.tg_relation).rd_att) }
}

/// What a trigger returns: the row to write, or `None` to skip the write.
type TriggerResult<'a> = Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, ErrorReport>;

/// The local-write trigger (`zz_crdt_stamp`).
#[pg_trigger]
fn stamp_local_write<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(stamp_local(trigger).unwrap_or_else(|report| raise(report)))
}

/// The merge trigger (`zz_crdt_merge`, `ENABLE REPLICA`).
#[pg_trigger]
fn merge_replicated_row<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(merge_replicated(trigger).unwrap_or_else(|report| raise(report)))
}

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
    if DELETING_FOR_TOMBSTONE.get() {
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

/// The tombstone trigger of `crdt.deletions` (`zz_crdt_apply_deletion`, `BEFORE INSERT`,
/// `ENABLE REPLICA`): applies a replicated delete.
#[pg_trigger]
fn apply_replicated_deletion<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(apply_deletion(trigger).unwrap_or_else(|report| raise(report)))
}

/// The local DELETE statement of rows of a CRDT table: records the tombstone `(table, key, D)`
/// of each deleted row in one INSERT, `D` one fresh stamp after every stamp of every deleted row
/// (so after each row's own). Being an AFTER trigger, its INSERT into `crdt.deletions` follows
/// the DELETEs in the transaction's WAL, so subscribers apply both together. The deleted rows
/// come from the statement's transition table, which spills to disk past `work_mem`: nothing
/// here grows with the rows deleted.
fn record_deletes(trigger: &PgTrigger<'_>) -> Result<(), ErrorReport> {
    let data = trigger.trigger_data();
    if DELETING_FOR_TOMBSTONE.get() || data.tg_oldtable.is_null() {
        // The delete of a replicated tombstone: that tombstone is recorded already.
        return Ok(());
    }
    let relation = data.tg_relation;
    let shape = table_shape(relation, || relation_name(relation))?;
    let Some(newest) = newest_stamp_of_rows(data.tg_oldtable, relation, &shape)? else {
        return Ok(());
    };
    let deleted = stamp_after(newest)?;
    tombstones::as_owner(|| {
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
                        pgrx::Uuid::from_bytes(*deleted.node.as_bytes()).into(),
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
fn newest_stamp_of_rows(
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
                row_clock::decode_stored(varlena_datum_slice(clock)).map(|clock| clock.max_hlc())
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

/// Columns of `crdt.deletions`, in order.
const DELETION_TABLE: usize = 0;
const DELETION_KEY: usize = 1;
const DELETION_HLC: usize = 2;
const DELETION_NODE: usize = 3;

/// A replicated tombstone `(table, key, D)`. Known already: skipped (this ends the echo of
/// tombstones). Otherwise the row with that key is deleted unless it was inserted after this
/// node had seen a delete at least as new as `D` (its clock's [`SEEN_DELETE`] entry), and the
/// tombstone is stored.
///
/// Races (docs/deletes.md): the key lock is taken and the table probed for the key, waiting
/// for every transaction still writing it; a row found is locked, and a row not found can't
/// appear before this tombstone is in the index, where every later insert of the key finds it.
fn apply_deletion<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let tuple = data.tg_trigtuple;
    // SAFETY: for INSERT, tg_trigtuple is the incoming tombstone, a tuple of crdt.deletions.
    let tombstone = unsafe { Row::deform(tuple, &tupdesc) };
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
    // A tombstone this node has already (an echo, or the same delete through another
    // subscription) is skipped: looked up first, so an echo costs no more than this probe; and
    // again below, under the key lock, for one still being written.
    let known = || tombstones::stamps_of_key(&table_name, key_json).contains(&deleted);
    if known() {
        return Ok(None);
    }

    // The CRDT table the tombstone is of, if this node has it: a table with this name as crdt
    // names it, with a row clock.
    let relid = {
        let name = table_name.as_str().into_datum().unwrap_or(pg_sys::Datum::from(0));
        // SAFETY: to_regclass takes a text; NULL for a name that names nothing. (A name that
        // does not parse raises 42602 on PostgreSQL 15; crdt writes none.)
        unsafe { pgrx::direct_function_call::<pg_sys::Oid>(pg_sys::to_regclass, &[Some(name)]) }
    };
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

    warn_if_far_ahead(deleted.hlc, relid.unwrap_or(pg_sys::InvalidOid), || table_name.clone());
    if let Some((relation, shape)) = &target {
        // As the table's owner, never as ours (see crate::roles).
        // SAFETY: an open relation.
        let owner = unsafe { roles::owner_of(*relation) };
        roles::as_role(owner, || delete_row_of_tombstone(*relation, shape, key_json, deleted))?;
    } else {
        // A table this node does not have (or not as a CRDT table): the tombstone is only
        // stored; the key lock keeps out the same tombstone arriving through another
        // subscription until this one is in the index.
        let hash = value_fingerprint(Some(table_name.as_bytes()))
            .rotate_left(5)
            // SAFETY: a non-null jsonb datum.
            ^ value_fingerprint(Some(unsafe { varlena_datum_slice(key_json) }));
        lock_key(tombstones::relation_id().unwrap_or(pg_sys::InvalidOid), hash);
    }
    if let Some(relation) = relation {
        // SAFETY: opened above; its lock is kept to the end of the transaction.
        unsafe { pg_sys::relation_close(relation, pg_sys::NoLock as pg_sys::LOCKMODE) };
    }
    // Known by now (through another subscription, while this one waited): skipped.
    if known() {
        release_key_lock();
        return Ok(None);
    }
    Ok(trigger_tuple(tupdesc, tuple))
}

/// Deletes the row of `relation` (a CRDT table) whose key is the `jsonb` object `key_json`
/// unless it was inserted after a delete at least as new as `deleted` (DESIGN §5). If there is
/// no such row, the key lock is held on return.
fn delete_row_of_tombstone(
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
            let seen = row
                .clock
                .and_then(|clock| row_clock::decode_stored(&clock).ok())
                .and_then(|clock| clock.column(SEEN_DELETE))
                .map(|entry| entry.stamp);
            if !delete_wins(deleted, seen) || delete_at(shape, row.tid)? {
                return Ok(());
            }
        }
        Ok(())
    })
}

/// Deletes the row at `tid` as a replicated tombstone's delete; whether it was still there.
fn delete_at(shape: &TableShape, mut tid: pg_sys::ItemPointerData) -> Result<bool, ErrorReport> {
    // SAFETY: a tid datum (by reference) that outlives the statement.
    let tid = unsafe { DatumWithOid::new(RawDatum(pg_sys::Datum::from(&mut tid as *mut _)), pg_sys::TIDOID) };
    while_set(&DELETING_FOR_TOMBSTONE, || {
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
fn with_key_row<T>(
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
unsafe fn key_values_from_json(shape: &TableShape, key_json: pg_sys::Datum, row: &mut Row) -> bool {
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

/// A committed row found by [`probe_key`]: where it is, and its clock as committed.
struct FoundRow {
    tid: pg_sys::ItemPointerData,
    clock: Option<Vec<u8>>,
}

/// Takes the key lock of `row`'s key in `relation` and probes its primary key index, waiting
/// for every transaction still writing the key. The committed row with the key, if any: then
/// the lock is let go (the row itself is what writers of the key meet from then on); if none
/// has it, the lock is held until this backend's write of the key is in the index.
fn probe_key(relation: pg_sys::Relation, relid: pg_sys::Oid, shape: &TableShape, row: &Row) -> Option<FoundRow> {
    let Some(values) = row.key_values(shape) else {
        // A NULL in the key: no row can have it, and the key's NOT NULL constraint refuses this
        // one once the BEFORE triggers are done. Nothing to probe (an index scan key can't be
        // NULL here).
        release_key_lock();
        return None;
    };
    lock_key(relid, key_hash(shape, row));
    let clock_attribute = shape.clock_index as i32 + 1;
    // SAFETY: the primary key's index of the open `relation`; the values are the key's columns
    // in the index's order, of the index's column types; the slot holds a row of `relation`,
    // whose clock is copied out before the next one is read.
    let found = unsafe {
        let index = pg_sys::index_open(shape.key_index, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let mut found = index_probe::committed_matches(relation, index, &shape.key_comparisons, &values, |slot| {
            let mut is_null = false;
            let clock = pg_sys::slot_getattr(slot, clock_attribute, &mut is_null);
            FoundRow {
                tid: (*slot).tts_tid,
                clock: (!is_null).then(|| varlena_datum_slice(clock).to_vec()),
            }
        });
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        found.pop()
    };
    if found.is_some() {
        release_key_lock();
    }
    found
}

/// A hash of `row`'s key values, for its key lock.
fn key_hash(shape: &TableShape, row: &Row) -> u32 {
    let mut hash = 0x811c_9dc5_u32;
    for &index in &shape.key_indexes {
        let column = shape.columns.iter().find(|column| column.index == index);
        let bytes = column.and_then(|column| row.value_bytes(column));
        hash = hash.rotate_left(5) ^ value_fingerprint(bytes.as_deref());
    }
    hash
}

/// The newest tombstone of `row`'s key, after every transaction still writing one has ended;
/// `None` if the key was never deleted (or is NULL: no row has it).
fn newest_tombstone(shape: &TableShape, row: &Row) -> Option<Stamp> {
    let key = shape.key_json.build(&row.key_values(shape)?);
    tombstones::stamps_of_key(&shape.qualified_name, key).into_iter().max()
}

/// Stamps a local INSERT or UPDATE (DESIGN §5): changed columns get a fresh stamp, newer than
/// every stamp of the row; `crdt.write_mode = put` stamps every column.
fn stamp_local<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    if MERGING_REMOTE_ROW.get() {
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
            // nodes it reaches (DESIGN §5). A transaction deleting the key right now has its
            // tombstone read once it ends: the probe waits for it.
            if probe_key(data.tg_relation, relation_id(trigger), &shape, &new).is_none() {
                seen_delete = newest_tombstone(&shape, &new);
            }
        }
    }
    let old_clock = match &old {
        Some(old) => old.clock(&shape)?,
        None => None,
    };
    // A row without a clock (a fresh INSERT, or rows that predate crdt.enable) gets every
    // column stamped; so does a PUT-style update.
    let stamp_all = old_clock.is_none() || WRITE_MODE.get() == WriteMode::Put;
    let mut clock = old_clock.unwrap_or_default();
    if let Some(deleted) = seen_delete {
        // Recorded before stamping, so every column's stamp comes after the delete.
        clock.stamp(SEEN_DELETE, SEEN_DELETE_FINGERPRINT, deleted);
    }
    let stamp = stamp_after(clock.max_hlc())?;
    let node = local_node_id();
    for column in &shape.columns {
        match (column.kind, &old) {
            (ColumnKind::Register, old)
                if stamp_all || old.as_ref().is_some_and(|old| !old.same_value(&new, column)) =>
            {
                clock.stamp(&column.name, new.fingerprint(column), stamp);
            }
            (ColumnKind::Counter, Some(old)) => write_counter_locally(old, &mut new, column, node)?,
            // A doc set to NULL stays NULL: clearing the column is the user's to do.
            (ColumnKind::Doc, Some(old)) if !new.is_null(column) => {
                let merged = merge_crdt_value(&new, old, column)?;
                new.set_merged(old, column, merged);
            }
            _ => {}
        }
    }
    new.set_clock(&shape, &clock);
    let tuple = new.form(&tupdesc);
    Ok(trigger_tuple(tupdesc, tuple))
}

/// Whether an UPDATE changes the row's primary key.
fn key_changed(shape: &TableShape, old: &Row, new: &Row) -> bool {
    shape
        .columns
        .iter()
        .filter(|column| shape.key_indexes.contains(&column.index))
        .any(|column| !old.same_value(new, column))
}

/// `0A000`: a primary key is not changed in place on a CRDT table. Replicated, the change would
/// meet concurrent writes of the old key on other nodes, which would keep the old row: a
/// delete and an insert converge, with the tombstone deciding, where a key update cannot.
fn key_update_refused(shape: &TableShape) -> ErrorReport {
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

/// Merges a replicated INSERT or UPDATE into the local row (apply workers only).
fn merge_replicated<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let shape = table_shape(data.tg_relation, || relation_name(data.tg_relation))?;
    if trigger.op().is_ok_and(|op| matches!(op, PgTriggerOperation::Insert)) {
        // For INSERT, tg_trigtuple is the incoming row.
        return match merge_replicated_insert(trigger, &tupdesc, &shape, data.tg_trigtuple)? {
            ReplicatedInsert::Merged | ReplicatedInsert::Deleted => Ok(None),
            ReplicatedInsert::New => Ok(trigger_tuple(tupdesc, data.tg_trigtuple)),
        };
    }
    // SAFETY: for UPDATE, tg_trigtuple is the local row (OLD) and tg_newtuple the replicated one.
    let (local, remote) = unsafe {
        (
            Row::deform(data.tg_trigtuple, &tupdesc),
            Row::deform(data.tg_newtuple, &tupdesc),
        )
    };
    if key_changed(&shape, &local, &remote) {
        // Only a node that does not refuse key updates (not a CRDT table there, or an older
        // version) sends one. Applying it would move a row the other nodes keep: skipped, loudly.
        pgrx::warning!(
            "crdt: skipped a replicated change of the primary key of a row of {}: CRDT tables do not \
             change keys in place; delete the row and insert it with the new key instead",
            shape.qualified_name
        );
        return Ok(None);
    }
    let relid = relation_id(trigger);
    match merge_rows(&shape, &local, &remote, relid)? {
        None => Ok(None),
        // The replicated row as it came (the common case of a row written on one node only):
        // no tuple to form.
        Some(merged) if merged.same_row(&remote, &shape) => Ok(trigger_tuple(tupdesc, data.tg_newtuple)),
        Some(mut merged) => {
            let tuple = merged.form(&tupdesc);
            Ok(trigger_tuple(tupdesc, tuple))
        }
    }
}

/// What became of a replicated INSERT.
enum ReplicatedInsert {
    /// The key existed here: the row was merged into the existing one.
    Merged,
    /// The key was deleted here by a delete the row had not seen: it stays deleted.
    Deleted,
    /// A new row: insert it.
    New,
}

/// A replicated INSERT of a key that exists locally is merged into the existing row instead of
/// failing with a unique violation (which would stop the subscription for good). A key that
/// does not exist here but has a tombstone newer than the newest delete the row had seen stays
/// deleted: the INSERT is an echo of a row deleted since, or concurrent with the delete, and a
/// delete wins over every write its node had not seen (DESIGN §5).
///
/// The key lock is taken and the index probed first (see [`probe_key`]), so a
/// concurrent insert of the same key — a local one, or the same row arriving from another node
/// through another apply worker — has committed and is seen. The existing row is updated with
/// the incoming values through SQL, so the update takes the ordinary path: this same trigger
/// merges it as a replicated UPDATE.
fn merge_replicated_insert(
    trigger: &PgTrigger<'_>,
    tupdesc: &PgTupleDesc<'_>,
    shape: &TableShape,
    incoming: pg_sys::HeapTuple,
) -> Result<ReplicatedInsert, ErrorReport> {
    // SAFETY: a valid tuple of this relation.
    let row = unsafe { Row::deform(incoming, tupdesc) };
    let relation = trigger.trigger_data().tg_relation;
    let relid = relation_id(trigger);
    while probe_key(relation, relid, shape, &row).is_some() {
        // SAFETY: a valid tuple of this relation.
        let (composite, rowtype) = unsafe { row_composite(trigger, tupdesc, incoming) };
        // SAFETY: `composite` is a datum of type `rowtype`, alive until the trigger returns.
        let argument = || unsafe { DatumWithOid::new(RawDatum(composite), rowtype) };
        // Locked first: the merge trigger may skip the UPDATE (nothing new), which then counts
        // no row, as a row deleted since would not either.
        let locked = Spi::connect_mut(|client| {
            let locked = !client.update(&shape.lock_existing, None, &[argument()])?.is_empty();
            if locked {
                client.update(&shape.update_existing, None, &[argument()])?;
            }
            Ok::<_, pgrx::spi::Error>(locked)
        })
        .map_err(spi_failed)?;
        if locked {
            return Ok(ReplicatedInsert::Merged);
        }
        // Deleted since it was found: look again.
    }
    // A new row: its clock decides whether a tombstone here wins over it.
    let clock = row.clock(shape)?;
    if let Some(clock) = &clock {
        warn_if_far_ahead(clock.max_hlc(), relid, || shape.qualified_name.clone());
    }
    if let Some(deleted) = newest_tombstone(shape, &row) {
        let seen = clock
            .as_ref()
            .and_then(|clock| clock.column(SEEN_DELETE))
            .map(|entry| entry.stamp);
        if delete_wins(deleted, seen) {
            release_key_lock();
            return Ok(ReplicatedInsert::Deleted);
        }
    }
    Ok(ReplicatedInsert::New)
}

/// The OID of the trigger's relation.
fn relation_id(trigger: &PgTrigger<'_>) -> pg_sys::Oid {
    // SAFETY: tg_relation is open for the duration of the trigger call.
    unsafe { (*trigger.trigger_data().tg_relation).rd_id }
}

/// `tuple` as a composite datum of the trigger's table row type, and that type.
///
/// # Safety
/// `tuple` must be a valid tuple of the trigger's relation, described by `tupdesc`.
unsafe fn row_composite(
    trigger: &PgTrigger<'_>,
    tupdesc: &PgTupleDesc<'_>,
    tuple: pg_sys::HeapTuple,
) -> (pg_sys::Datum, pg_sys::Oid) {
    // SAFETY: the relation is open during the trigger call; the tuple is one of its tuples.
    unsafe {
        let rowtype = (*(*trigger.trigger_data().tg_relation).rd_rel).reltype;
        (pg_sys::heap_copy_tuple_as_datum(tuple, tupdesc.as_ptr()), rowtype)
    }
}

/// The values of a composite datum of a table's row type, deformed with the table's descriptor.
///
/// # Safety
/// `datum` must be a composite of the row type `tupdesc` describes; the row borrows it.
unsafe fn composite_row(datum: pg_sys::Datum, tupdesc: &PgTupleDesc<'_>) -> Row {
    // SAFETY: per the contract, `datum` points at a HeapTupleHeader (detoasted if needed).
    unsafe {
        let header = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
        let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
        tuple.t_len = pgrx::varsize_any(header as *const pg_sys::varlena) as u32;
        tuple.t_tableOid = pg_sys::InvalidOid;
        tuple.t_data = header;
        Row::deform(&mut tuple, tupdesc)
    }
}

/// A counter column written locally: a number assigned to it counts as the difference from the
/// stored value (DESIGN §4.1), so it composes with concurrent increments elsewhere.
fn write_counter_locally(old: &Row, new: &mut Row, column: &Column, node: NodeId) -> Result<(), ErrorReport> {
    let (Some(old_bytes), Some(new_bytes)) = (old.value_bytes(column), new.value_bytes(column)) else {
        return Ok(());
    };
    let decode = |bytes: &[u8]| PnCounter::decode(bytes).map_err(|err| corrupt_datum(&column.name, err));
    let written = PnCounter::write_local(&decode(&old_bytes)?, &decode(&new_bytes)?, node)
        .map_err(|_| out_of_range(format!("crdt.counter column {} out of range", column.name)))?;
    let encoded = written.encode();
    if encoded != *new_bytes {
        new.set_bytes(column.index, &encoded);
    }
    Ok(())
}

/// The merge of a replicated row into the local one, or `None` if the local row already is it
/// (then nothing is written, no WAL, and the change is not echoed back).
fn merge_rows(shape: &TableShape, local: &Row, remote: &Row, relid: pg_sys::Oid) -> Result<Option<Row>, ErrorReport> {
    let Some(remote_stamps) = remote.clock_bytes(shape) else {
        // A row without stamps was not written through crdt: nothing in it can be newer.
        return Ok(None);
    };
    let mut merged = local.clone();
    let mut changed = false;
    // Identical clocks (the remote change touched only counters or docs, or it is an echo):
    // no stamp moves, so every stamped column keeps its local value; nothing to decode.
    if local.clock_bytes(shape) != Some(remote_stamps) {
        let local_clock = local.clock(shape)?.unwrap_or_default();
        let remote_clock = row_clock::decode_stored(remote_stamps)?;
        warn_if_far_ahead(remote_clock.max_hlc(), relid, || shape.qualified_name.clone());
        let registers: Vec<&Column> = shape
            .columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Register)
            .collect();
        let named: Vec<(&str, u32)> = registers
            .iter()
            .map(|column| (column.name.as_str(), remote.fingerprint(column)))
            .collect();
        let mut clock = local_clock.clone();
        let choices = clock.merge_replicated(&remote_clock, &named);
        for (column, choice) in registers.iter().zip(&choices) {
            if *choice == ColumnChoice::Remote {
                merged.take(remote, column);
            }
        }
        if clock != local_clock {
            merged.set_clock(shape, &clock);
            changed = true;
        }
    }
    for column in shape.columns.iter().filter(|c| c.kind != ColumnKind::Register) {
        changed |= merged.set_merged(remote, column, merge_crdt_value(local, remote, column)?);
    }
    Ok(changed.then_some(merged))
}

/// A datum already built, passed to SPI with an explicit type.
struct RawDatum(pg_sys::Datum);

impl IntoDatum for RawDatum {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::InvalidOid
    }
}
