//! A row of a CRDT table as the triggers handle it: its values deformed, compared and merged
//! column by column (every merge by the core's rules), and the plumbing between PostgreSQL's
//! trigger data and rows.

use std::borrow::Cow;
use std::ffi::CStr;

use crdt_core::{merge_nullable, value_fingerprint, CounterView, NullableMerge, RowClock};
use pgrx::datum::IntoDatum;
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{AllocatedByPostgres, PgTupleDesc};
use smallvec::SmallVec;

use super::shape::{Column, ColumnKind, TableShape};
use crate::error::corrupt_datum;
use crate::types::row_clock;
use crate::types::{bytes_into_varlena_datum, varlena_datum_slice};

/// A row's column values, deformed. Tables of up to [`INLINE_COLUMNS`] columns keep them in
/// the row itself: the merge trigger handles three rows per replicated row, and allocating and
/// freeing their arrays showed in its profile. A clone copies the datums (pointing at the
/// same values).
#[derive(Clone)]
pub(super) struct Row {
    pub(super) values: SmallVec<[pg_sys::Datum; INLINE_COLUMNS]>,
    pub(super) nulls: SmallVec<[bool; INLINE_COLUMNS]>,
}

/// Columns a [`Row`] holds without allocating.
pub(super) const INLINE_COLUMNS: usize = 16;

impl Row {
    /// # Safety
    /// `tuple` must be a valid heap tuple described by `tupdesc`.
    pub(super) unsafe fn deform(tuple: pg_sys::HeapTuple, tupdesc: &PgTupleDesc<'_>) -> Row {
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

    pub(super) fn form(&mut self, tupdesc: &PgTupleDesc<'_>) -> pg_sys::HeapTuple {
        // SAFETY: values/nulls were deformed with this descriptor and only replaced by datums of
        // the same column types.
        unsafe { pg_sys::heap_form_tuple(tupdesc.as_ptr(), self.values.as_mut_ptr(), self.nulls.as_mut_ptr()) }
    }

    /// The primary key's values, in the key's order; `None` if one is NULL (no row has it).
    pub(super) fn key_values(&self, shape: &TableShape) -> Option<SmallVec<[pg_sys::Datum; 4]>> {
        let key = || shape.key_indexes.iter().copied();
        (!key().any(|index| self.nulls[index])).then(|| key().map(|index| self.values[index]).collect())
    }

    pub(super) fn is_null(&self, column: &Column) -> bool {
        self.nulls[column.index]
    }

    /// The value's bytes as PostgreSQL holds them (detoasted), the same on every node of one
    /// architecture; `None` for NULL. Borrowed from the datum unless it is passed by value.
    pub(super) fn value_bytes(&self, column: &Column) -> Option<Cow<'_, [u8]>> {
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
    pub(super) fn clock_bytes(&self, shape: &TableShape) -> Option<&[u8]> {
        if self.nulls[shape.clock_index] {
            return None;
        }
        // SAFETY: the clock column holds a non-null crdt.row_clock (a varlena), alive for the
        // trigger call.
        Some(unsafe { varlena_datum_slice(self.values[shape.clock_index]) })
    }

    pub(super) fn fingerprint(&self, column: &Column) -> u32 {
        value_fingerprint(self.value_bytes(column).as_deref())
    }

    pub(super) fn same_value(&self, other: &Row, column: &Column) -> bool {
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

    /// Whether a varlena column holds the same stored bytes as in `other`, read as they are:
    /// an unchanged TOASTed value compares by its TOAST pointer, without being fetched. Equal
    /// bytes are the same value; unequal bytes may still be (compressed differently, say).
    pub(super) fn same_stored_varlena(&self, other: &Row, column: &Column) -> bool {
        let stored = |row: &Row| {
            let datum = row.values[column.index];
            // SAFETY: a non-null varlena datum (the caller's column), alive for the trigger
            // call; VARSIZE_ANY reads only its header, and the bytes it names are the value's
            // own, a TOAST pointer for an external one.
            unsafe {
                let varlena = datum.cast_mut_ptr::<pg_sys::varlena>();
                std::slice::from_raw_parts(varlena.cast::<u8>(), pgrx::varsize_any(varlena))
            }
        };
        match (self.is_null(column), other.is_null(column)) {
            (true, true) => true,
            (false, false) => self.values[column.index] == other.values[column.index] || stored(self) == stored(other),
            _ => false,
        }
    }

    /// Whether every column holds the same value as in `other` (the same datum, or equal
    /// bytes).
    pub(super) fn same_row(&self, other: &Row, shape: &TableShape) -> bool {
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

    pub(super) fn clock(&self, shape: &TableShape) -> Result<Option<RowClock>, ErrorReport> {
        self.clock_bytes(shape)
            .map(row_clock::RowClock::decode_stored)
            .transpose()
    }

    pub(super) fn set_clock(&mut self, shape: &TableShape, clock: &RowClock) {
        self.set_bytes(shape.clock_index, &clock.encode());
    }

    /// Puts `other`'s clock, as stored, in place of this row's.
    pub(super) fn take_clock(&mut self, other: &Row, shape: &TableShape) {
        self.values[shape.clock_index] = other.values[shape.clock_index];
        self.nulls[shape.clock_index] = other.nulls[shape.clock_index];
    }

    pub(super) fn set_bytes(&mut self, index: usize, bytes: &[u8]) {
        self.values[index] = bytes_into_varlena_datum(bytes);
        self.nulls[index] = false;
    }

    pub(super) fn take(&mut self, other: &Row, column: &Column) {
        self.values[column.index] = other.values[column.index];
        self.nulls[column.index] = other.nulls[column.index];
    }

    /// Puts the merge of this row's value of `column` with `theirs`' in place; whether the
    /// value changed.
    pub(super) fn set_merged(&mut self, theirs: &Row, column: &Column, merged: MergedValue) -> bool {
        match merged {
            MergedValue::Ours => return false,
            MergedValue::Theirs => self.take(theirs, column),
            MergedValue::New(bytes) => self.set_bytes(column.index, &bytes),
        }
        true
    }
}

/// The merge of one CRDT-typed column.
pub(super) enum MergedValue {
    /// Ours already is the merge.
    Ours,
    /// Theirs is (taken as is, so a row equal to theirs is written without forming a tuple).
    Theirs,
    /// Neither: the merged bytes.
    New(Vec<u8>),
}

/// Merges two CRDT-typed values (counter or doc) by the type's own merge; NULL as the core says.
pub(super) fn merge_crdt_value(ours: &Row, theirs: &Row, column: &Column) -> Result<MergedValue, ErrorReport> {
    match merge_nullable(ours.is_null(column), theirs.is_null(column)) {
        NullableMerge::Ours => return Ok(MergedValue::Ours),
        NullableMerge::Theirs => return Ok(MergedValue::Theirs),
        NullableMerge::Both => {}
    }
    let (Some(local), Some(remote)) = (ours.value_bytes(column), theirs.value_bytes(column)) else {
        return Ok(MergedValue::Ours);
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

pub(super) fn trigger_tuple<'a>(
    tupdesc: PgTupleDesc<'a>,
    tuple: pg_sys::HeapTuple,
) -> Option<PgHeapTuple<'a, AllocatedByPostgres>> {
    // SAFETY: a tuple just formed with this descriptor, in the trigger's memory context.
    Some(unsafe { PgHeapTuple::from_heap_tuple(tupdesc, tuple) })
}

/// The trigger's relation descriptor; not freed when dropped (the relation owns it).
pub(super) fn relation_tupdesc<'a>(trigger: &PgTrigger<'a>) -> PgTupleDesc<'a> {
    let data = trigger.trigger_data();
    // SAFETY: tg_relation is open for the duration of the trigger call.
    unsafe { PgTupleDesc::from_pg_unchecked((*data.tg_relation).rd_att) }
}

/// What a trigger returns: the row to write, or `None` to skip the write.
pub(super) type TriggerResult<'a> = Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, ErrorReport>;

/// Whether an UPDATE changes the row's primary key.
pub(super) fn key_changed(shape: &TableShape, old: &Row, new: &Row) -> bool {
    shape
        .columns
        .iter()
        .filter(|column| shape.key_indexes.contains(&column.index))
        .any(|column| !old.same_value(new, column))
}

/// The OID of the trigger's relation.
pub(super) fn relation_id(trigger: &PgTrigger<'_>) -> pg_sys::Oid {
    // SAFETY: tg_relation is open for the duration of the trigger call.
    unsafe { (*trigger.trigger_data().tg_relation).rd_id }
}

/// `tuple` as a composite datum of the trigger's table row type, and that type.
///
/// # Safety
/// `tuple` must be a valid tuple of the trigger's relation, described by `tupdesc`.
pub(super) unsafe fn row_composite(
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
pub(super) unsafe fn composite_row(datum: pg_sys::Datum, tupdesc: &PgTupleDesc<'_>) -> Row {
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

/// A datum already built, passed to SPI with an explicit type.
pub(super) struct RawDatum(pub(super) pg_sys::Datum);

impl IntoDatum for RawDatum {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::InvalidOid
    }
}
