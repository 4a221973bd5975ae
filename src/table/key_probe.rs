//! Finding a key before writing it: the key lock taken and the primary key's index probed,
//! waiting for every transaction still writing the key, so that no two writers of one key miss
//! each other (docs/deletes.md); and, for a new row, the newest tombstone of its key.

use crdt_core::{value_fingerprint, Stamp};
use pgrx::prelude::*;

use super::deletions;
use super::index_probe;
use super::key_lock::{lock_key, read_holding_key_lock, release_key_lock};
use super::row::Row;
use super::shape::TableShape;
use crate::types::varlena_datum_slice;

/// A committed row found by [`probe_key`]: where it is, and its clock as committed.
pub(super) struct FoundRow {
    pub(super) tid: pg_sys::ItemPointerData,
    pub(super) clock: Option<Vec<u8>>,
}

/// Takes the key lock of `row`'s key in `relation` and probes its primary key index, waiting
/// for every transaction still writing the key. The committed row with the key, if any: then
/// the lock is let go (the row itself is what writers of the key meet from then on); if none
/// has it, the lock is held until this backend's write of the key is in the index.
pub(super) fn probe_key(
    relation: pg_sys::Relation,
    relid: pg_sys::Oid,
    shape: &TableShape,
    row: &Row,
) -> Option<FoundRow> {
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

/// What a writer of a new row finds for its key ([`find_key`]).
pub(super) enum KeyFound {
    /// A committed row has the key; the key lock is let go.
    Row,
    /// No row has it: the key lock is held, and this is the key's newest tombstone (`None` if
    /// the key was never deleted, or is NULL).
    Free(Option<Stamp>),
}

/// The key of `row` as an INSERT of it finds it: [`probe_key`], then, if no row has the key,
/// its newest tombstone. Reading the tombstones may wait for a transaction still writing one,
/// letting go of the key lock meanwhile, and another writer may then write the key: so the
/// table is probed again until the tombstones were read without letting go.
///
/// With `lock_row` (a local INSERT), a committed row found is also locked `FOR KEY SHARE`
/// until the transaction ends, so that it is still there when the executor's own unique check
/// meets it (a unique violation, or the ON CONFLICT action). Without it a delete committing in
/// between would let the INSERT write the key without the key lock and without reading the
/// delete's tombstone (docs/deletes.md, "Each path"); a row deleted or moved before it is
/// locked is looked for again.
pub(super) fn find_key(
    relation: pg_sys::Relation,
    relid: pg_sys::Oid,
    shape: &TableShape,
    row: &Row,
    lock_row: bool,
) -> KeyFound {
    loop {
        if let Some(found) = probe_key(relation, relid, shape, row) {
            // SAFETY: `found.tid` is a tuple of the open `relation`, found just now.
            if !lock_row || unsafe { lock_for_key_share(relation, found.tid) } {
                return KeyFound::Row;
            }
            continue;
        }
        let (tombstone, held_throughout) = read_holding_key_lock(|| newest_tombstone(shape, row));
        if held_throughout {
            return KeyFound::Free(tombstone);
        }
    }
}

/// Locks the tuple at `tid` of `relation` `FOR KEY SHARE` (a lock that only a delete or a key
/// change conflicts with), waiting for any transaction that holds a conflicting one; whether it
/// is still there to be met (false: deleted or updated meanwhile). A tuple this transaction
/// wrote needs no lock: nobody else can delete it before it ends.
///
/// # Safety
/// `relation` must be open and `tid` one of its tuples.
unsafe fn lock_for_key_share(relation: pg_sys::Relation, mut tid: pg_sys::ItemPointerData) -> bool {
    use pg_sys::TM_Result;
    // SAFETY: per the contract; the slot is dropped below. The snapshot is only read when
    // following an update chain, which these flags do not ask for; the active one if there is
    // one (a statement's), else the latest.
    unsafe {
        let snapshot = if pg_sys::ActiveSnapshotSet() {
            pg_sys::GetActiveSnapshot()
        } else {
            pg_sys::GetLatestSnapshot()
        };
        let lock = (*(*relation).rd_tableam)
            .tuple_lock
            .expect("every table access method locks tuples");
        let slot = pg_sys::table_slot_create(relation, std::ptr::null_mut());
        let mut failure: pg_sys::TM_FailureData = std::mem::zeroed();
        let result = lock(
            relation,
            &mut tid,
            snapshot,
            slot,
            pg_sys::GetCurrentCommandId(true),
            pg_sys::LockTupleMode::LockTupleKeyShare,
            pg_sys::LockWaitPolicy::LockWaitBlock,
            pg_sys::TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS as u8,
            &mut failure,
        );
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        [TM_Result::TM_Ok, TM_Result::TM_SelfModified, TM_Result::TM_Invisible].contains(&result)
    }
}

/// A hash of `row`'s key values, for its key lock.
pub(super) fn key_hash(shape: &TableShape, row: &Row) -> u32 {
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
    deletions::stamps_of_key(&shape.qualified_name, key).into_iter().max()
}
