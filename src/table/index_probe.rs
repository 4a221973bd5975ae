//! Looking a key up in a unique (or prefix of a) btree index the way PostgreSQL's own unique
//! check does: with a dirty snapshot, which also shows rows that transactions still running
//! are inserting or deleting, and waiting for such a transaction to end before looking again.
//! So a key written by a transaction that has not committed yet is never missed: the prober
//! waits for it, then sees the outcome (docs/deletes.md, "Races").
//!
//! This is what replaces a lock per key held to the end of the transaction: with a short
//! `key_lock` around it, a probe and the write that follows it are never interleaved with
//! another writer's probe and write of the same key. The key lock is let go while waiting
//! (`key_lock::while_released`), and the index looked at again after.

use pgrx::pg_sys;

/// The primary key's index of `relation` (open), from the relation and system caches; `None`
/// if it has none.
///
/// # Safety
/// `relation` must be an open relation.
pub(crate) unsafe fn primary_key_index(relation: pg_sys::Relation) -> Option<pg_sys::Oid> {
    // SAFETY: per the contract; the index list is a palloc'd list of oids, freed here; each
    // syscache entry is released after reading.
    unsafe {
        let list = pg_sys::RelationGetIndexList(relation);
        let indexes = if list.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts((*list).elements, usize::try_from((*list).length).unwrap_or(0))
        };
        let primary = indexes.iter().map(|cell| cell.oid_value).find(|&index| {
            let tuple = pg_sys::SearchSysCache1(
                pg_sys::SysCacheIdentifier::INDEXRELID as i32,
                pg_sys::Datum::from(index),
            );
            if tuple.is_null() {
                return false;
            }
            let primary = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_index>(tuple)).indisprimary;
            pg_sys::ReleaseSysCache(tuple);
            primary
        });
        pg_sys::list_free(list);
        primary
    }
}

/// How one index column is compared: its opfamily's equality function and its collation.
#[derive(Clone, Copy)]
pub(crate) struct KeyComparison {
    procedure: pg_sys::RegProcedure,
    collation: pg_sys::Oid,
}

/// The comparisons of the first `columns` columns of `index` (a btree).
///
/// # Safety
/// `index` must be an open index relation with at least `columns` key columns.
pub(crate) unsafe fn key_comparisons(index: pg_sys::Relation, columns: usize) -> Vec<KeyComparison> {
    // SAFETY: per the contract, the relcache arrays hold an entry per key column.
    unsafe {
        (0..columns)
            .map(|column| {
                let opfamily = *(*index).rd_opfamily.add(column);
                let input_type = *(*index).rd_opcintype.add(column);
                let operator =
                    pg_sys::get_opfamily_member(opfamily, input_type, input_type, pg_sys::BTEqualStrategyNumber as i16);
                KeyComparison {
                    procedure: pg_sys::get_opcode(operator),
                    collation: *(*index).rd_indcollation.add(column),
                }
            })
            .collect()
    }
}

/// What a probe found: each committed, live tuple equal to the key, as `read` made of it.
///
/// # Safety
/// `heap` and `index` must be open and locked, `index` an index of `heap`; `values` are datums
/// of the index's first `comparisons.len()` column types; `read` may only read the slot.
pub(crate) unsafe fn committed_matches<T>(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    comparisons: &[KeyComparison],
    values: &[pg_sys::Datum],
    mut read: impl FnMut(*mut pg_sys::TupleTableSlot) -> T,
) -> Vec<T> {
    // SAFETY: per the contract. Every scan is ended and the slot dropped (it pins buffers).
    unsafe {
        let mut keys = scan_keys(comparisons, values);
        let mut snapshot = dirty_snapshot();
        let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        let mut found = Vec::new();
        loop {
            let scan = begin_scan(heap, index, &mut snapshot, keys.len());
            pg_sys::index_rescan(scan, keys.as_mut_ptr(), keys.len() as i32, std::ptr::null_mut(), 0);
            let mut running_writer = pg_sys::InvalidTransactionId;
            while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
                // The dirty snapshot names the transaction still inserting (xmin) or deleting
                // (xmax) the tuple it just let through.
                let writer = if snapshot.xmin != pg_sys::InvalidTransactionId {
                    snapshot.xmin
                } else {
                    snapshot.xmax
                };
                if writer != pg_sys::InvalidTransactionId {
                    running_writer = writer;
                    break;
                }
                found.push(read(slot));
            }
            pg_sys::index_endscan(scan);
            if running_writer == pg_sys::InvalidTransactionId {
                break;
            }
            // Wait for it to commit or abort, then look again from the start.
            found.clear();
            let mut tid = (*slot).tts_tid;
            pg_sys::ExecClearTuple(slot);
            super::key_lock::while_released(|| {
                pg_sys::XactLockTableWait(running_writer, heap, &mut tid, pg_sys::XLTW_Oper::XLTW_None)
            });
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        found
    }
}

/// Equality scan keys on the first index columns.
fn scan_keys(comparisons: &[KeyComparison], values: &[pg_sys::Datum]) -> Vec<pg_sys::ScanKeyData> {
    // SAFETY: ScanKeyData is plain data; ScanKeyInit fills every field it reads.
    let mut keys: Vec<pg_sys::ScanKeyData> = vec![unsafe { std::mem::zeroed() }; comparisons.len()];
    for (column, (comparison, value)) in comparisons.iter().zip(values).enumerate() {
        // SAFETY: a key of this vector; the procedure is a btree equality function.
        unsafe {
            pg_sys::ScanKeyInit(
                &mut keys[column],
                (column + 1) as pg_sys::AttrNumber,
                pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                comparison.procedure,
                *value,
            )
        };
        keys[column].sk_collation = comparison.collation;
    }
    keys
}

/// A snapshot that sees committed tuples and those of running transactions, and says which
/// running transaction wrote the last one it let through (`InitDirtySnapshot`).
fn dirty_snapshot() -> pg_sys::SnapshotData {
    // SAFETY: SnapshotData is plain data; a dirty snapshot only uses its type and its xmin/xmax.
    let mut snapshot: pg_sys::SnapshotData = unsafe { std::mem::zeroed() };
    snapshot.snapshot_type = pg_sys::SnapshotType::SNAPSHOT_DIRTY;
    snapshot
}

/// `index_beginscan`, whose arguments changed in PostgreSQL 18.
///
/// # Safety
/// As `index_beginscan`.
unsafe fn begin_scan(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    snapshot: *mut pg_sys::SnapshotData,
    keys: usize,
) -> pg_sys::IndexScanDesc {
    // SAFETY: per the contract.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        let scan = pg_sys::index_beginscan(heap, index, snapshot, keys as i32, 0);
        #[cfg(feature = "pg18")]
        let scan = pg_sys::index_beginscan(heap, index, snapshot, std::ptr::null_mut(), keys as i32, 0);
        scan
    }
}
