//! The two row triggers of a CRDT table (DESIGN §5).
//!
//! - `stamp_local_write` (ordinary sessions): stamps exactly the columns a local INSERT or
//!   UPDATE changed, turns numbers assigned to counter columns into differences, and merges
//!   documents assigned to doc columns into the stored ones.
//! - `merge_replicated_row` (`ENABLE REPLICA`: apply workers): merges a replicated row into the
//!   local one column by column, and skips the write when nothing changes — which is what ends
//!   the echo of bidirectional replication on PostgreSQL 15.
//!
//! Every decision is the core's (`RowClock`, `PnCounter`, the doc merge); this module moves
//! datums in and out. Everything reached from here is schema-qualified or catalog-driven,
//! because apply workers run with an empty `search_path`.

use std::borrow::Cow;
use std::convert::Infallible;
use std::ffi::CStr;
use std::rc::Rc;

use crdt_core::{value_fingerprint, ColumnChoice, NodeId, PnCounter, RowClock};
use pgrx::datum::{DatumWithOid, IntoDatum};
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::quote_qualified_identifier;
use pgrx::{AllocatedByPostgres, PgTupleDesc};

use crate::catalog_cache::CachedByOid;
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
}

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
    /// Updates that row with the values of `$1`.
    update_existing_sql: String,
}

thread_local! {
    static TABLE_SHAPES: CachedByOid<TableShape> = CachedByOid::new();
}

/// The shape of the trigger's table, read from its descriptor once per relation (and again
/// after it or a type changes), not once per row.
fn table_shape(trigger: &PgTrigger<'_>, tupdesc: &PgTupleDesc<'_>) -> Result<Rc<TableShape>, ErrorReport> {
    // SAFETY: tg_relation is open for the duration of the trigger call.
    let relid = unsafe { (*trigger.trigger_data().tg_relation).rd_id };
    TABLE_SHAPES.with(|shapes| shapes.get_or_try(relid, || read_table_shape(trigger, relid, tupdesc)))
}

fn read_table_shape(
    trigger: &PgTrigger<'_>,
    relid: pg_sys::Oid,
    tupdesc: &PgTupleDesc<'_>,
) -> Result<TableShape, ErrorReport> {
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
    let table = quote_qualified_identifier(
        trigger.table_schema().unwrap_or_default(),
        trigger.table_name().unwrap_or_default(),
    );
    // Each key column is compared with its index's own equality operator, named with its
    // schema: nothing here depends on the search_path.
    let key_match = key
        .iter()
        .map(|column| format!("t.{name} OPERATOR({op}) ($1).{name}", name = column.name, op = column.equality))
        .collect::<Vec<_>>()
        .join(" AND ");
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
        update_existing_sql: format!("UPDATE {table} t SET {assignments} WHERE {key_match}"),
    })
}

/// A row's column values, deformed.
struct Row {
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl Row {
    /// # Safety
    /// `tuple` must be a valid heap tuple described by `tupdesc`.
    unsafe fn deform(tuple: pg_sys::HeapTuple, tupdesc: &PgTupleDesc<'_>) -> Row {
        let natts = tupdesc.len();
        let mut row = Row { values: vec![pg_sys::Datum::from(0); natts], nulls: vec![true; natts] };
        // SAFETY: per the contract; the arrays hold natts entries.
        unsafe {
            pg_sys::heap_deform_tuple(tuple, tupdesc.as_ptr(), row.values.as_mut_ptr(), row.nulls.as_mut_ptr())
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
}

/// Merges two CRDT-typed values (counter or doc) by the type's own merge; NULL merges as absent.
/// Returns the merged bytes, or `None` if `ours` already is the merge.
fn merge_crdt_value(ours: &Row, theirs: &Row, column: &Column) -> Result<Option<Vec<u8>>, ErrorReport> {
    let (Some(local), Some(remote)) = (ours.value_bytes(column), theirs.value_bytes(column)) else {
        return Ok(if ours.is_null(column) { theirs.value_bytes(column).map(Cow::into_owned) } else { None });
    };
    let mut merged = Vec::with_capacity(local.len().max(remote.len()));
    let result = match column.kind {
        ColumnKind::Counter => crdt_core::merge_encoded(&local, &remote, &mut merged),
        _ => crdt_core::doc::merge_encoded(&local, &remote, &mut merged),
    };
    result.map_err(|err| corrupt_datum(&column.name, err))?;
    Ok((merged != *local).then_some(merged))
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
    if old.is_none() {
        lock_key(trigger, &shape, &new);
    }
    let old_clock = match &old {
        Some(old) => old.clock(&shape)?,
        None => None,
    };
    // A row without a clock (a fresh INSERT, or rows that predate crdt.enable) gets every
    // column stamped; so does a PUT-style update.
    let stamp_all = old_clock.is_none() || WRITE_MODE.get() == WriteMode::Put;
    let mut clock = old_clock.unwrap_or_default();
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
                if let Some(merged) = merge_crdt_value(&new, old, column)? {
                    new.set_bytes(column.index, &merged);
                }
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
        return if merge_insert_into_existing_row(trigger, &tupdesc, &shape, data.tg_trigtuple)? {
            Ok(None)
        } else {
            // SAFETY: hand the incoming row back unchanged.
            Ok(trigger_tuple(tupdesc, data.tg_trigtuple))
        };
    }
    // SAFETY: for UPDATE, tg_trigtuple is the local row (OLD) and tg_newtuple the replicated one.
    let (local, remote) =
        unsafe { (Row::deform(data.tg_trigtuple, &tupdesc), Row::deform(data.tg_newtuple, &tupdesc)) };
    let table = || trigger.table_name().unwrap_or_default();
    match merge_rows(&shape, &local, &remote, table)? {
        None => Ok(None),
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
    let mut merged = Row { values: local.values.clone(), nulls: local.nulls.clone() };
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
        if let Some(bytes) = merge_crdt_value(local, remote, column)? {
            merged.set_bytes(column.index, &bytes);
            changed = true;
        }
    }
    Ok(changed.then_some(merged))
}

/// A replicated INSERT of a key that exists locally is merged into the existing row instead of
/// failing with a unique violation (which would stop the subscription for good). Returns
/// whether the row existed.
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
) -> Result<bool, ErrorReport> {
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
    lock_key(trigger, shape, &row);
    // SAFETY: the relation is open during the trigger call.
    let rowtype = unsafe { (*(*trigger.trigger_data().tg_relation).rd_rel).reltype };
    // SAFETY: a valid tuple of this relation; the datum is a composite of the table's row type.
    let composite = unsafe { pg_sys::heap_copy_tuple_as_datum(incoming, tupdesc.as_ptr()) };
    // SAFETY: `composite` is a datum of type `rowtype`, alive until the trigger returns.
    let arg = || unsafe { DatumWithOid::new(RawDatum(composite), rowtype) };
    let exists = Spi::connect_mut(|client| {
        client.update(&shape.lock_existing_sql, None, &[arg()]).map(|rows| !rows.is_empty())
    })
    .map_err(spi_failed)?;
    if exists {
        Spi::run_with_args(&shape.update_existing_sql, &[arg()]).map_err(spi_failed)?;
    }
    Ok(exists)
}

/// Takes a transaction-long lock on the row's key in this table. Every INSERT into a CRDT
/// table takes it (local ones in the stamping trigger, replicated ones before looking for an
/// existing row), so two inserts of one key never both miss each other: the second waits for
/// the first to commit, then finds its row and merges into it.
fn lock_key(trigger: &PgTrigger<'_>, shape: &TableShape, row: &Row) {
    let mut hash = 0x811c_9dc5_u32;
    for &index in &shape.key_indexes {
        let column = shape.columns.iter().find(|column| column.index == index);
        let bytes = column.and_then(|column| row.value_bytes(column));
        hash = hash.rotate_left(5) ^ value_fingerprint(bytes.as_deref());
    }
    // SAFETY: tg_relation is open for the duration of the trigger call.
    let relid = unsafe { (*trigger.trigger_data().tg_relation).rd_id };
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
    attnum: i16,
    equality: String,
}

fn primary_key(relid: pg_sys::Oid) -> Result<Vec<KeyColumn>, ErrorReport> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.quote_ident(a.attname::text), a.attnum,
                        pg_catalog.quote_ident(n.nspname::text) OPERATOR(pg_catalog.||) '.'
                            OPERATOR(pg_catalog.||) o.oprname::text
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
