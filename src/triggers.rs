//! The row triggers of a CRDT table and of its tombstones (DESIGN §5).
//!
//! - `stamp_local_write` (ordinary sessions): stamps exactly the columns a local INSERT or
//!   UPDATE changed, turns numbers assigned to counter columns into differences, and merges
//!   documents assigned to doc columns into the stored ones.
//! - `merge_replicated_row` (`ENABLE REPLICA`: apply workers): merges a replicated row into the
//!   local one column by column, and skips the write when nothing changes — which is what ends
//!   the echo of bidirectional replication on PostgreSQL 15. A replicated INSERT of a key with a
//!   tombstone the row had not seen is dropped.
//! - `record_local_delete` (AFTER DELETE, ordinary sessions): writes the tombstone of a deleted
//!   row into `crdt.deletions`.
//! - `skip_replicated_delete` (`ENABLE REPLICA`): skips replicated DELETEs.
//! - `apply_replicated_deletion` (on `crdt.deletions`, `ENABLE REPLICA`): applies a replicated
//!   tombstone — deletes the row unless it was inserted after a delete at least as new.
//!
//! Every decision is the core's (`RowClock`, `PnCounter`, the doc merge); this module moves
//! datums in and out. Everything reached from here is schema-qualified or catalog-driven,
//! because apply workers run with an empty `search_path`.

use std::borrow::Cow;
use std::convert::Infallible;
use std::ffi::CStr;
use std::rc::Rc;

use crdt_core::{value_fingerprint, ColumnChoice, CounterView, NodeId, PnCounter, RowClock, Stamp};
use pgrx::datum::{DatumWithOid, IntoDatum};
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::quote_qualified_identifier;
use pgrx::{AllocatedByPostgres, PgTupleDesc};
use smallvec::SmallVec;

use crate::catalog_cache::{Cached, CachedByOid};
use crate::clock::{local_node_id, stamp_after, warn_if_far_ahead};
use crate::error::{corrupt_datum, out_of_range, raise, spi_failed};
use crate::gucs::{WriteMode, WRITE_MODE};
use crate::tables::CLOCK_COLUMN;
use crate::types::counter::Counter;
use crate::types::doc::Doc;
use crate::types::row_clock::row_clock;
use crate::types::{bytes_into_varlena_datum, varlena_datum_slice};

thread_local! {
    /// Set while `crdt.merge_row` writes: local writes are then merged like replicated ones.
    static MERGING_REMOTE_ROW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Set while a replicated tombstone deletes the row it names: the replicated-delete trigger
    /// lets that delete through (it skips every other delete in apply workers).
    static DELETING_FOR_TOMBSTONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            MERGING_REMOTE_ROW.set(false);
        }
    }
    MERGING_REMOTE_ROW.set(true);
    let _reset = Reset;
    Spi::run_with_args(
        &format!("INSERT INTO {name} SELECT * FROM pg_catalog.jsonb_populate_record(NULL::{name}, $1)"),
        &[row.into()],
    )
    .map_err(spi_failed)
}

/// How a column merges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    /// Last writer wins, by the column's stamp in the row clock.
    Register,
    /// `crdt.counter`: merged by its own merge, not stamped.
    Counter,
    /// `crdt.doc`: merged by its own merge, not stamped.
    Doc,
}

struct Column {
    index: usize,
    name: String,
    kind: ColumnKind,
    typlen: i16,
    byval: bool,
}

/// The columns of a CRDT table as the triggers see them.
struct TableShape {
    columns: Vec<Column>,
    clock_index: usize,
    /// Descriptor indexes of the primary key's columns (none if the key was dropped).
    key_indexes: Vec<usize>,
    /// Locks the row whose key equals that of the row passed as `$1` (composite).
    lock_existing_sql: String,
    /// Waits for writers of that row, locking it in the weakest mode that waits for a deleter.
    share_existing_sql: String,
    /// Updates that row with the values of `$1`.
    update_existing_sql: String,
    /// `schema.table`, quoted where needed: the table's name in `crdt.deletions`, the same on
    /// every node.
    qualified_name: String,
    /// The tombstones (`hlc` as text, `node`) of the key of the row passed as `$1` (composite),
    /// in the table named `$2`.
    tombstones_sql: String,
    /// Records a tombstone of the key of the row `$1` (composite) of the table named `$2`,
    /// stamped `$3` (hlc, text) and `$4` (node).
    record_deletion_sql: String,
    /// The row of this table whose key is given as a `jsonb` object `$1` (as in
    /// `crdt.deletions`), as a composite of the table's row type.
    key_row_sql: String,
    /// Locks the row whose key is the `jsonb` object `$1` and returns its clock.
    lock_by_key_json_sql: String,
    /// Deletes the row whose key is the `jsonb` object `$1`.
    delete_by_key_json_sql: String,
}

thread_local! {
    static TABLE_SHAPES: CachedByOid<TableShape> = CachedByOid::new();
}

/// The shape of the trigger's table, read from its descriptor once per relation (and again
/// after it or a type changes), not once per row.
fn table_shape(trigger: &PgTrigger<'_>, tupdesc: &PgTupleDesc<'_>) -> Result<Rc<TableShape>, ErrorReport> {
    let name = || {
        quote_qualified_identifier(trigger.table_schema().unwrap_or_default(), trigger.table_name().unwrap_or_default())
    };
    table_shape_of(relation_id(trigger), name, tupdesc)
}

/// The shape of CRDT table `relid` (open, with descriptor `tupdesc`), named (quoted and
/// schema-qualified) by `name` when it has to be read.
fn table_shape_of(
    relid: pg_sys::Oid,
    name: impl FnOnce() -> String,
    tupdesc: &PgTupleDesc<'_>,
) -> Result<Rc<TableShape>, ErrorReport> {
    TABLE_SHAPES.with(|shapes| shapes.get_or_try(relid, || read_table_shape(name(), relid, tupdesc)))
}

fn read_table_shape(table: String, relid: pg_sys::Oid, tupdesc: &PgTupleDesc<'_>) -> Result<TableShape, ErrorReport> {
    let (counter_oid, doc_oid, clock_oid) =
        (Counter::type_oid(), Doc::type_oid(), row_clock::type_oid());
    let mut columns = Vec::new();
    let mut clock_index = None;
    for (index, attribute) in tupdesc.iter().enumerate() {
        // Generated columns are recomputed on every node; they are not written, so not stamped.
        if attribute.attisdropped || attribute.attgenerated != 0 {
            continue;
        }
        // SAFETY: attname is a NUL-terminated NameData.
        let name = unsafe { CStr::from_ptr(attribute.attname.data.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        if name == CLOCK_COLUMN && attribute.atttypid == clock_oid {
            clock_index = Some(index);
            continue;
        }
        let kind = match attribute.atttypid {
            oid if oid == counter_oid => ColumnKind::Counter,
            oid if oid == doc_oid => ColumnKind::Doc,
            _ => ColumnKind::Register,
        };
        columns.push(Column { index, name, kind, typlen: attribute.attlen, byval: attribute.attbyval });
    }
    let clock_index = clock_index.ok_or_else(|| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("a CRDT table needs its {CLOCK_COLUMN} column of type crdt.row_clock"),
            "crdt",
        )
        .set_hint("Run SELECT crdt.enable('your_table') again.")
    })?;
    let key = primary_key(relid)?;
    let key_indexes = key
        .iter()
        .map(|column| usize::try_from(column.attnum - 1).unwrap_or(usize::MAX))
        .collect();
    // Each key column is compared with its index's own equality operator, named with its
    // schema: nothing here depends on the search_path.
    let key_match_with = |row: &str| {
        key.iter()
            .map(|column| format!("t.{name} OPERATOR({op}) ({row}).{name}", name = column.name, op = column.equality))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let key_match = key_match_with("$1");
    let row_of_key_json = format!("pg_catalog.jsonb_populate_record(NULL::{table}, $1)");
    let key_match_json = key_match_with(&row_of_key_json);
    // The key as a jsonb object of its columns, by name: the same on every node for one key,
    // and what jsonb_populate_record turns back into the key's values.
    let key_json = format!(
        "pg_catalog.jsonb_build_object({})",
        key.iter()
            .map(|column| format!("{}::pg_catalog.text, ($1).{}", pgrx::spi::quote_literal(&column.raw_name), column.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let assignments = columns
        .iter()
        .map(|column| pgrx::spi::quote_identifier(&column.name))
        .filter(|name| !key.iter().any(|k| &k.name == name))
        .chain(std::iter::once(CLOCK_COLUMN.to_owned()))
        .map(|name| format!("{name} = ($1).{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(TableShape {
        columns,
        clock_index,
        key_indexes,
        lock_existing_sql: format!("SELECT true FROM {table} t WHERE {key_match} FOR UPDATE"),
        share_existing_sql: format!("SELECT true FROM {table} t WHERE {key_match} FOR KEY SHARE"),
        update_existing_sql: format!("UPDATE {table} t SET {assignments} WHERE {key_match}"),
        tombstones_sql: format!(
            "SELECT d.hlc::pg_catalog.text, d.node FROM crdt.deletions d \
             WHERE d.table_name OPERATOR(pg_catalog.=) $2 AND d.key OPERATOR(pg_catalog.=) {key_json}"
        ),
        record_deletion_sql: format!(
            "INSERT INTO crdt.deletions (table_name, key, hlc, node) \
             VALUES ($2, {key_json}, $3::pg_catalog.numeric, $4)"
        ),
        key_row_sql: format!("SELECT {row_of_key_json}"),
        lock_by_key_json_sql: format!("SELECT t.{CLOCK_COLUMN} FROM {table} t WHERE {key_match_json} FOR UPDATE"),
        delete_by_key_json_sql: format!("DELETE FROM {table} t WHERE {key_match_json}"),
        qualified_name: table,
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
        let mut row =
            Row { values: smallvec::smallvec![pg_sys::Datum::from(0); natts], nulls: smallvec::smallvec![true; natts] };
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
            (true, len) => {
                Cow::Owned(datum.value().to_ne_bytes()[..usize::try_from(len).unwrap_or(0).min(8)].to_vec())
            }
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
        let same_datum = |i: usize| {
            self.nulls[i] == other.nulls[i] && (self.nulls[i] || self.values[i] == other.values[i])
        };
        self.values.len() == other.values.len()
            && (0..self.values.len()).all(|i| {
                same_datum(i)
                    || (i == shape.clock_index && self.clock_bytes(shape) == other.clock_bytes(shape))
                    || shape.columns.iter().any(|column| column.index == i && self.same_value(other, column))
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
        return Ok(if theirs_only { MergedValue::Theirs } else { MergedValue::Ours });
    };
    if column.kind == ColumnKind::Counter {
        let corrupt = |err| corrupt_datum(&column.name, err);
        // One side holding the other is the common case: decided without writing the merge.
        return Ok(match CounterView::covers_each_other(&local, &remote).map_err(corrupt)? {
            (true, _) => MergedValue::Ours,
            (false, true) => MergedValue::Theirs,
            (false, false) => {
                let (local_counter, remote_counter) =
                    (CounterView::parse(&local).map_err(corrupt)?, CounterView::parse(&remote).map_err(corrupt)?);
                let mut merged = Vec::with_capacity(local.len() + remote.len());
                local_counter.merge_into(&remote_counter, &mut merged);
                MergedValue::New(merged)
            }
        });
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

/// The local-delete trigger (`zz_crdt_delete`, `AFTER DELETE`): writes the tombstone.
#[pg_trigger]
fn record_local_delete<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(record_delete(trigger).unwrap_or_else(|report| raise(report)))
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

/// The tombstone trigger of `crdt.deletions` (`zz_crdt_apply_deletion`, `BEFORE INSERT`,
/// `ENABLE REPLICA`): applies a replicated delete.
#[pg_trigger]
fn apply_replicated_deletion<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(apply_deletion(trigger).unwrap_or_else(|report| raise(report)))
}

/// A local DELETE of a row of a CRDT table: records the tombstone `(table, key, D)`, `D` a
/// fresh stamp after every stamp of the row. Being an AFTER trigger, its INSERT into
/// `crdt.deletions` follows the DELETE in the transaction's WAL, so subscribers apply both
/// together.
fn record_delete<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    if DELETING_FOR_TOMBSTONE.get() {
        // The delete of a replicated tombstone: that tombstone is recorded already.
        return Ok(None);
    }
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let shape = table_shape(trigger, &tupdesc)?;
    // No key lock: the DELETE holds the row lock, which every insert of the key waits for
    // (see `lock_key`), so none misses this tombstone.
    // SAFETY: for DELETE, tg_trigtuple is the deleted row, a tuple of this relation.
    let old = unsafe { Row::deform(data.tg_trigtuple, &tupdesc) };
    let clock = old.clock(&shape)?.unwrap_or_default();
    let deleted = stamp_after(clock.max_hlc())?;
    // SAFETY: as above.
    let (composite, rowtype) = unsafe { row_composite(trigger, &tupdesc, data.tg_trigtuple) };
    as_deletions_owner(|| {
        // SAFETY: `composite` is a datum of type `rowtype`, alive until the trigger returns.
        let row = unsafe { DatumWithOid::new(RawDatum(composite), rowtype) };
        Spi::run_with_args(
            &shape.record_deletion_sql,
            &[
                row,
                shape.qualified_name.as_str().into(),
                deleted.hlc.to_string().into(),
                pgrx::Uuid::from_bytes(*deleted.node.as_bytes()).into(),
            ],
        )
        .map_err(spi_failed)
    })?;
    Ok(None)
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
    let value = |index: usize, type_oid: pg_sys::Oid| {
        // SAFETY: a non-null datum of crdt.deletions' column `index`, whose type is `type_oid`.
        unsafe { DatumWithOid::new(RawDatum(tombstone.values[index]), type_oid) }
    };
    let key = || value(DELETION_KEY, pg_sys::JSONBOID);
    // SAFETY: a non-null text datum.
    let table_name = String::from_utf8_lossy(unsafe { varlena_datum_slice(tombstone.values[DELETION_TABLE]) }).into_owned();
    // SAFETY: a non-null uuid datum: 16 bytes by reference.
    let node = unsafe { std::slice::from_raw_parts(tombstone.values[DELETION_NODE].cast_mut_ptr::<u8>(), 16) };
    let node = NodeId::from_bytes(node.try_into().unwrap_or([0; 16]));
    let (relid, hlc) = Spi::connect(|client| {
        let row = client
            .select(
                "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid, $2::pg_catalog.text",
                None,
                &[value(DELETION_TABLE, pg_sys::TEXTOID), value(DELETION_HLC, pg_sys::NUMERICOID)],
            )?
            .first()
            .get_two::<pg_sys::Oid, String>()?;
        Ok::<_, pgrx::spi::Error>(row)
    })
    .map_err(spi_failed)?;
    let deleted = hlc.and_then(|hlc| hlc.parse::<u64>().ok()).map(|hlc| Stamp::new(hlc, node));

    // The CRDT table the tombstone is of, if this node has it.
    let relation = relid
        .filter(|relid| *relid != pg_sys::InvalidOid)
        // SAFETY: an existing relation, locked as any write to it would.
        .map(|relid| unsafe { pgrx::PgRelation::with_lock(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE) });
    let target = relation.as_ref().and_then(|relation| {
        let tupdesc = relation.tuple_desc();
        let name = quote_qualified_identifier(relation.namespace(), relation.name());
        // Only a table with this name as crdt names it, and a CRDT table.
        (name == table_name).then(|| table_shape_of(relation.oid(), || name, &tupdesc).ok()).flatten()
    });

    // The row locked FOR UPDATE; if there is none, the key (see `lock_key`), and a row inserted
    // meanwhile is seen once the key lock is ours.
    let lock_row = |shape: &TableShape| {
        Spi::connect_mut(|client| {
            let rows = client.update(&shape.lock_by_key_json_sql, None, &[key()])?;
            if rows.is_empty() {
                return Ok(None);
            }
            // SAFETY: a non-null crdt.row_clock datum, read before SPI's memory goes.
            let clock = rows
                .first()
                .get_datum_by_ordinal(1)?
                .map(|datum| row_clock::decode_stored(unsafe { varlena_datum_slice(datum) }));
            Ok::<_, pgrx::spi::Error>(Some(clock))
        })
        .map_err(spi_failed)
    };
    let mut row_clock = None;
    if let Some(shape) = &target {
        row_clock = lock_row(shape)?;
    }
    match (&relation, &target) {
        (Some(_), Some(_)) if row_clock.is_some() => {}
        (Some(relation), Some(shape)) => {
            let tupdesc = relation.tuple_desc();
            Spi::connect(|client| {
                let rows = client.select(&shape.key_row_sql, None, &[key()])?;
                if let Some(datum) = rows.first().get_datum_by_ordinal(1)? {
                    // SAFETY: a composite datum of the table's row type, alive in SPI's memory
                    // until the connection closes.
                    let row = unsafe { composite_row(datum, &tupdesc) };
                    lock_key(relation.oid(), shape, &row);
                }
                Ok::<_, pgrx::spi::Error>(())
            })
            .map_err(spi_failed)?;
            row_clock = lock_row(shape)?;
        }
        _ => {
            // A table this node does not have (or not as a CRDT table): the tombstone is only
            // stored; lock it against the same tombstone arriving through another subscription.
            // SAFETY: a non-null jsonb datum.
            let bytes = unsafe { varlena_datum_slice(tombstone.values[DELETION_KEY]) };
            lock_hash(relation_id(trigger), value_fingerprint(Some(bytes)));
        }
    }

    let known = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM crdt.deletions d \
         WHERE d.table_name OPERATOR(pg_catalog.=) $1 AND d.key OPERATOR(pg_catalog.=) $2 \
           AND d.hlc OPERATOR(pg_catalog.=) $3 AND d.node OPERATOR(pg_catalog.=) $4)",
        &[
            value(DELETION_TABLE, pg_sys::TEXTOID),
            key(),
            value(DELETION_HLC, pg_sys::NUMERICOID),
            value(DELETION_NODE, pg_sys::UUIDOID),
        ],
    )
    .map_err(spi_failed)?
    .unwrap_or(false);
    if known {
        return Ok(None);
    }
    if let (Some(shape), Some(deleted), Some(clock)) = (&target, deleted, row_clock) {
        // A clock that can't be read has seen nothing.
        let seen = clock.transpose().ok().flatten().and_then(|clock| clock.column(SEEN_DELETE));
        if seen.is_none_or(|seen| deleted > seen.stamp) {
            struct Reset;
            impl Drop for Reset {
                fn drop(&mut self) {
                    DELETING_FOR_TOMBSTONE.set(false);
                }
            }
            DELETING_FOR_TOMBSTONE.set(true);
            let _reset = Reset;
            Spi::run_with_args(&shape.delete_by_key_json_sql, &[key()]).map_err(spi_failed)?;
        }
    }
    Ok(trigger_tuple(tupdesc, tuple))
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

/// Stamps a local INSERT or UPDATE (DESIGN §5): changed columns get a fresh stamp, newer than
/// every stamp of the row; `crdt.write_mode = put` stamps every column.
fn stamp_local<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    if MERGING_REMOTE_ROW.get() {
        // crdt.merge_row: this session writes a row from elsewhere, exactly as an apply worker.
        return merge_replicated(trigger);
    }
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let shape = table_shape(trigger, &tupdesc)?;
    let is_update = trigger.op().is_ok_and(|op| matches!(op, PgTriggerOperation::Update));
    // SAFETY: for UPDATE, tg_trigtuple is OLD and tg_newtuple NEW; for INSERT tg_trigtuple is NEW.
    let (old, mut new) = unsafe {
        if is_update {
            (Some(Row::deform(data.tg_trigtuple, &tupdesc)), Row::deform(data.tg_newtuple, &tupdesc))
        } else {
            (None, Row::deform(data.tg_trigtuple, &tupdesc))
        }
    };
    let mut seen_delete = None;
    if old.is_none() {
        // SAFETY: for INSERT, tg_trigtuple is the new row, a tuple of this relation.
        let (composite, rowtype) = unsafe { row_composite(trigger, &tupdesc, data.tg_trigtuple) };
        // A transaction deleting the key right now has written its tombstone when it commits:
        // wait for it (the row lock, then the key lock — see `lock_key`). As the table's owner,
        // as foreign-key checks do: the lock needs more than the INSERT privilege.
        // SAFETY: the relation is open during the trigger call.
        let owner = unsafe { (*(*data.tg_relation).rd_rel).relowner };
        let exists = as_role(owner, || {
            // SAFETY: `composite` is a datum of type `rowtype`, alive until the trigger returns.
            let row = unsafe { DatumWithOid::new(RawDatum(composite), rowtype) };
            Spi::connect_mut(|client| {
                client.update(&shape.share_existing_sql, None, &[row]).map(|rows| !rows.is_empty())
            })
            .map_err(spi_failed)
        })?;
        if !exists {
            lock_key(relation_id(trigger), &shape, &new);
        }
        // A key deleted before (here, or elsewhere and replicated here): the row is inserted
        // after that delete, and says so, so the delete's tombstone does not remove it on the
        // nodes it reaches (DESIGN §5).
        seen_delete = latest_tombstone(&shape, composite, rowtype)?;
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
            (ColumnKind::Register, old) => {
                if stamp_all || old.as_ref().is_some_and(|old| !old.same_value(&new, column)) {
                    clock.stamp(&column.name, new.fingerprint(column), stamp);
                }
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

/// Merges a replicated INSERT or UPDATE into the local row (apply workers only).
fn merge_replicated<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let shape = table_shape(trigger, &tupdesc)?;
    if trigger.op().is_ok_and(|op| matches!(op, PgTriggerOperation::Insert)) {
        // For INSERT, tg_trigtuple is the incoming row.
        return match merge_insert_into_existing_row(trigger, &tupdesc, &shape, data.tg_trigtuple)? {
            ReplicatedInsert::Merged | ReplicatedInsert::Deleted => Ok(None),
            // SAFETY: hand the incoming row back unchanged.
            ReplicatedInsert::New => Ok(trigger_tuple(tupdesc, data.tg_trigtuple)),
        };
    }
    // SAFETY: for UPDATE, tg_trigtuple is the local row (OLD) and tg_newtuple the replicated one.
    let (local, remote) =
        unsafe { (Row::deform(data.tg_trigtuple, &tupdesc), Row::deform(data.tg_newtuple, &tupdesc)) };
    let table = || trigger.table_name().unwrap_or_default();
    match merge_rows(&shape, &local, &remote, table)? {
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

/// The merge of a replicated row into the local one, or `None` if the local row already is it
/// (then nothing is written, no WAL, and the change is not echoed back).
fn merge_rows(
    shape: &TableShape,
    local: &Row,
    remote: &Row,
    table: impl FnOnce() -> String,
) -> Result<Option<Row>, ErrorReport> {
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
        warn_if_far_ahead(remote_clock.max_hlc(), table);
        let registers: Vec<&Column> = shape.columns.iter().filter(|c| c.kind == ColumnKind::Register).collect();
        let named: Vec<(&str, u32)> =
            registers.iter().map(|column| (column.name.as_str(), remote.fingerprint(column))).collect();
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
/// The key is locked first (see [`lock_key`]), so a concurrent insert of the same key — a
/// local one, or the same row arriving from another node through another apply worker — has
/// committed and is seen. The existing row is then locked and updated with the incoming
/// values through SQL, so the update takes the ordinary path: this same trigger merges it as
/// a replicated UPDATE.
fn merge_insert_into_existing_row(
    trigger: &PgTrigger<'_>,
    tupdesc: &PgTupleDesc<'_>,
    shape: &TableShape,
    incoming: pg_sys::HeapTuple,
) -> Result<ReplicatedInsert, ErrorReport> {
    if shape.key_indexes.is_empty() {
        // Only possible if the key was dropped after crdt.enable.
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "a CRDT table needs a primary key",
            "crdt",
        ));
    }
    // SAFETY: a valid tuple of this relation.
    let row = unsafe { Row::deform(incoming, tupdesc) };
    // SAFETY: a valid tuple of this relation.
    let (composite, rowtype) = unsafe { row_composite(trigger, tupdesc, incoming) };
    // SAFETY: `composite` is a datum of type `rowtype`, alive until the trigger returns.
    let arg = || unsafe { DatumWithOid::new(RawDatum(composite), rowtype) };
    let lock_existing = || {
        Spi::connect_mut(|client| {
            client.update(&shape.lock_existing_sql, None, &[arg()]).map(|rows| !rows.is_empty())
        })
        .map_err(spi_failed)
    };
    // The row lock first, then the key lock (the order every path takes both in, see
    // `lock_key`); a row inserted meanwhile is seen once the key lock is ours.
    let mut exists = lock_existing()?;
    if !exists {
        lock_key(relation_id(trigger), shape, &row);
        exists = lock_existing()?;
    }
    if exists {
        Spi::run_with_args(&shape.update_existing_sql, &[arg()]).map_err(spi_failed)?;
        return Ok(ReplicatedInsert::Merged);
    }
    if let Some(deleted) = latest_tombstone(shape, composite, rowtype)? {
        let seen = row.clock(shape)?.and_then(|clock| clock.column(SEEN_DELETE)).map(|entry| entry.stamp);
        if seen.is_none_or(|seen| deleted > seen) {
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

/// The newest tombstone of the key of the row `composite` (of type `rowtype`), if the key was
/// ever deleted.
fn latest_tombstone(shape: &TableShape, composite: pg_sys::Datum, rowtype: pg_sys::Oid) -> Result<Option<Stamp>, ErrorReport> {
    as_deletions_owner(|| {
        Spi::connect(|client| {
            // SAFETY: `composite` is a datum of type `rowtype`, alive until the trigger returns.
            let row = unsafe { DatumWithOid::new(RawDatum(composite), rowtype) };
            let rows = client.select(&shape.tombstones_sql, None, &[row, shape.qualified_name.as_str().into()])?;
            let mut latest: Option<Stamp> = None;
            for tombstone in rows {
                let hlc = tombstone.get::<String>(1)?.and_then(|hlc| hlc.parse::<u64>().ok());
                let node = tombstone.get::<pgrx::Uuid>(2)?;
                if let (Some(hlc), Some(node)) = (hlc, node) {
                    let stamp = Stamp::new(hlc, NodeId::from_bytes(*node.as_bytes()));
                    latest = latest.max(Some(stamp));
                }
            }
            Ok::<_, pgrx::spi::Error>(latest)
        })
        .map_err(spi_failed)
    })
    .map(Option::flatten)
}

thread_local! {
    /// The owner of `crdt.deletions` (the role that created the extension).
    static DELETIONS_OWNER: Cached<pg_sys::Oid> = const { Cached::new() };
}

/// Runs `work` — reads and writes of `crdt.deletions` — as the owner of `crdt.deletions`.
///
/// Why not a grant: whoever can insert into `crdt.deletions` can delete any row of any CRDT
/// table on every node the tombstone replicates to. So nobody but its owner has any privilege
/// on it, and the triggers — which run as whoever writes the CRDT table — switch to the owner
/// for exactly their own statements on it, the way PostgreSQL's foreign-key triggers switch to
/// the table owner (`SECURITY_LOCAL_USERID_CHANGE`, and `SECURITY_RESTRICTED_OPERATION` so
/// nothing run meanwhile can change session state). No SQL-callable function gets the owner's
/// rights. An error inside is fine: transaction and subtransaction abort restore the user.
///
/// `None` without running `work` if there is no `crdt.deletions`: the library of a newer
/// version runs with the SQL objects of an older one until `ALTER EXTENSION crdt UPDATE`.
fn as_deletions_owner<T>(work: impl FnOnce() -> Result<T, ErrorReport>) -> Result<Option<T>, ErrorReport> {
    let owner = DELETIONS_OWNER.with(|owner| {
        owner.get_or(|| {
            Spi::get_one::<pg_sys::Oid>(
                "SELECT c.relowner FROM pg_catalog.pg_class c \
                 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('crdt.deletions')",
            )
            .ok()
            .flatten()
            .unwrap_or(pg_sys::InvalidOid)
        })
    });
    if owner == pg_sys::InvalidOid {
        return Ok(None);
    }
    as_role(owner, work).map(Some)
}

/// Runs `work` as `role` (see [`as_deletions_owner`]).
fn as_role<T>(role: pg_sys::Oid, work: impl FnOnce() -> Result<T, ErrorReport>) -> Result<T, ErrorReport> {
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads the backend's current user and security context.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    struct Restore(pg_sys::Oid, std::ffi::c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back what GetUserIdAndSecContext returned.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let _restore = Restore(user, context);
    let switched = context
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as std::ffi::c_int
        | pg_sys::SECURITY_RESTRICTED_OPERATION as std::ffi::c_int;
    // SAFETY: a role that exists (it owns a relation); restored when `_restore` drops.
    unsafe { pg_sys::SetUserIdAndSecContext(role, switched) };
    work()
}

/// Takes a transaction-long lock on the row's key in this table. Every INSERT into a CRDT
/// table takes it (local ones in the stamping trigger, replicated ones before looking for an
/// existing row), so two inserts of one key never both miss each other: the second waits for
/// the first to commit, then finds its row and merges into it.
///
/// Deletes are serialized with inserts too, so an insert and a delete of one key never miss
/// each other: the insert sees the tombstone, or the tombstone sees the row.
///
/// The key lock stands in for the row lock of a row that does not exist (yet), and is taken
/// only then, after looking for the row — it is held to the end of the transaction, and the
/// fewer keys a transaction holds, the fewer lock cycles between transactions writing several
/// keys (apply workers of different subscriptions included). So: a local INSERT first waits
/// for writers of an existing row with the key (`FOR KEY SHARE`, which waits for a deleter),
/// and takes the key lock only if there is none; a replicated INSERT or tombstone locks the row
/// `FOR UPDATE`, and if there is none, takes the key lock and looks again; a local DELETE holds
/// the row lock, which is enough, and takes no key lock.
fn lock_key(relid: pg_sys::Oid, shape: &TableShape, row: &Row) {
    let mut hash = 0x811c_9dc5_u32;
    for &index in &shape.key_indexes {
        let column = shape.columns.iter().find(|column| column.index == index);
        let bytes = column.and_then(|column| row.value_bytes(column));
        hash = hash.rotate_left(5) ^ value_fingerprint(bytes.as_deref());
    }
    lock_hash(relid, hash);
}

/// Takes the transaction-long key lock `hash` of relation `relid` (see [`lock_key`]).
fn lock_hash(relid: pg_sys::Oid, hash: u32) {
    let tag = pg_sys::LOCKTAG {
        // SAFETY: MyDatabaseId is set for the whole life of a backend connected to a database.
        locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        locktag_field2: relid.to_u32(),
        locktag_field3: hash,
        // An advisory lock in a space of its own: SQL's pg_advisory_lock uses 1 and 2 here.
        locktag_field4: KEY_LOCK_SPACE,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    };
    // SAFETY: a valid tag; the lock is released at the end of the transaction.
    unsafe { pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as pg_sys::LOCKMODE, false, false) };
}

/// `locktag_field4` of the key locks ("CR").
const KEY_LOCK_SPACE: u16 = 0x4352;

/// A primary key column: its name (quoted) and number, and the schema-qualified equality
/// operator of its index.
struct KeyColumn {
    name: String,
    /// The name as it is (unquoted): the key's field name in `crdt.deletions`.
    raw_name: String,
    attnum: i16,
    equality: String,
}

fn primary_key(relid: pg_sys::Oid) -> Result<Vec<KeyColumn>, ErrorReport> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.quote_ident(a.attname::text), a.attnum,
                        pg_catalog.quote_ident(n.nspname::text) OPERATOR(pg_catalog.||) '.'
                            OPERATOR(pg_catalog.||) o.oprname::text,
                        a.attname::text
                 FROM pg_catalog.pg_index i
                 CROSS JOIN LATERAL pg_catalog.generate_subscripts(i.indkey, 1) AS k
                 JOIN pg_catalog.pg_attribute a
                   ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                  AND a.attnum OPERATOR(pg_catalog.=) i.indkey[k]
                 JOIN pg_catalog.pg_opclass c ON c.oid OPERATOR(pg_catalog.=) i.indclass[k]
                 JOIN pg_catalog.pg_amop m
                   ON m.amopfamily OPERATOR(pg_catalog.=) c.opcfamily
                  AND m.amoplefttype OPERATOR(pg_catalog.=) c.opcintype
                  AND m.amoprighttype OPERATOR(pg_catalog.=) c.opcintype
                  AND m.amopstrategy OPERATOR(pg_catalog.=) 3
                 JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) m.amopopr
                 JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
                 WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisprimary
                 ORDER BY k",
                None,
                &[relid.into()],
            )?
            .map(|row| {
                Ok(KeyColumn {
                    name: row.get::<String>(1)?.unwrap_or_default(),
                    attnum: row.get::<i16>(2)?.unwrap_or_default(),
                    equality: row.get::<String>(3)?.unwrap_or_default(),
                    raw_name: row.get::<String>(4)?.unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .map_err(spi_failed)
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
