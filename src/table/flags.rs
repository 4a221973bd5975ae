//! Three facts one trigger tells another that PostgreSQL's trigger interface cannot carry: a
//! trigger gets only its own row and table, not who caused the write. Each is set around one
//! SPI statement that this extension runs itself, and cleared after it however it ends:
//!
//! - merging a remote row (`crdt.merge_row`): its INSERT must be merged like a replicated one,
//!   though it comes from an ordinary session, where only the stamping trigger fires;
//! - merging a replicated INSERT into the existing row of its key: the UPDATE that does it is
//!   that INSERT, not a replicated change of its own (for `crdt.stats`);
//! - deleting for a tombstone: the row a replicated tombstone deletes must get through the
//!   trigger that skips every other replicated DELETE, and must record no new tombstone.
//!
//! Nothing else is kept between trigger calls.

use std::cell::Cell;
use std::thread::LocalKey;

thread_local! {
    static MERGING_REMOTE_ROW: Cell<bool> = const { Cell::new(false) };
    static DELETING_FOR_TOMBSTONE: Cell<bool> = const { Cell::new(false) };
    static MERGING_EXISTING_ROW: Cell<bool> = const { Cell::new(false) };
}

/// Whether this backend is inside `crdt.merge_row`'s write.
pub(super) fn merging_remote_row() -> bool {
    MERGING_REMOTE_ROW.get()
}

/// Runs `work` (`crdt.merge_row`'s write) as the merge of a remote row.
pub(super) fn while_merging_remote_row<T>(work: impl FnOnce() -> T) -> T {
    while_set(&MERGING_REMOTE_ROW, work)
}

/// Whether this backend is merging a replicated INSERT into the existing row of its key.
pub(super) fn merging_existing_row() -> bool {
    MERGING_EXISTING_ROW.get()
}

/// Runs `work` (the UPDATE of the existing row of a replicated INSERT's key) as that merge.
pub(super) fn while_merging_existing_row<T>(work: impl FnOnce() -> T) -> T {
    while_set(&MERGING_EXISTING_ROW, work)
}

/// Whether this backend is deleting the row a replicated tombstone names.
pub(super) fn deleting_for_tombstone() -> bool {
    DELETING_FOR_TOMBSTONE.get()
}

/// Runs `work` (the delete of the row a replicated tombstone names) as that delete.
pub(super) fn while_deleting_for_tombstone<T>(work: impl FnOnce() -> T) -> T {
    while_set(&DELETING_FOR_TOMBSTONE, work)
}

/// Runs `work` with `flag` set, and clears it after, however `work` ends.
fn while_set<T>(flag: &'static LocalKey<Cell<bool>>, work: impl FnOnce() -> T) -> T {
    struct Clear(&'static LocalKey<Cell<bool>>);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.set(false);
        }
    }
    flag.set(true);
    let _clear = Clear(flag);
    work()
}
