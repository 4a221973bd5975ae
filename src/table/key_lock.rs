//! The key lock: a short lock on one primary-key value of one table, held from looking for the
//! key until the row (or tombstone) written for it is in its index (docs/deletes.md, "Races").
//!
//! Every path that writes a key that may not exist yet — a local INSERT, a replicated INSERT, a
//! replicated tombstone — takes it, looks for the key with a dirty index probe
//! (`index_probe`), and keeps it until its own write is in the index, where the next prober
//! sees it and waits for its transaction. So two writers of one key never both miss each other,
//! while a backend holds at most one key lock at a time: the lock table does not grow with the
//! rows a transaction writes: any size works at PostgreSQL's default settings (docs/deletes.md,
//! "The key lock").
//!
//! The lock is an advisory lock in a space of its own, taken at session level and released by
//! this module: when the same backend takes the next key lock (its previous write is in the
//! index by then: a BEFORE ROW trigger fires for the next row only after the executor has
//! written the previous one), and at the end of the transaction (a transaction callback), commit
//! or abort. A session-level lock has no resource owner, so savepoints and PL/pgSQL exception
//! blocks (subtransactions) cannot take it away from under the bookkeeping here.

use std::cell::Cell;

use pgrx::pg_sys;

/// `locktag_field4` of the key locks ("CR"); SQL's `pg_advisory_lock` uses 1 and 2 there.
const KEY_LOCK_SPACE: u16 = 0x4352;

thread_local! {
    /// The key lock this backend holds: (database, relation, key hash).
    static HELD: Cell<Option<(u32, u32, u32)>> = const { Cell::new(None) };
    /// How many times [`while_released`] has let go of a held key lock.
    static TIMES_LET_GO: Cell<u64> = const { Cell::new(0) };
}

fn tag((database, relation, hash): (u32, u32, u32)) -> pg_sys::LOCKTAG {
    pg_sys::LOCKTAG {
        locktag_field1: database,
        locktag_field2: relation,
        locktag_field3: hash,
        locktag_field4: KEY_LOCK_SPACE,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

/// Takes the key lock of `hash` (a hash of the key's values) in relation `relid`, waiting for
/// its holder, after letting go of the one this backend held.
pub(crate) fn lock_key(relid: pg_sys::Oid, hash: u32) {
    release_key_lock();
    // SAFETY: MyDatabaseId is set for the whole life of a backend connected to a database.
    let key = (unsafe { pg_sys::MyDatabaseId }.to_u32(), relid.to_u32(), hash);
    // SAFETY: a valid tag. Session-level: released by `release_key_lock`, at the latest by the
    // transaction callback. A cancel or timeout while waiting raises before HELD is set.
    unsafe { pg_sys::LockAcquire(&tag(key), pg_sys::ExclusiveLock as pg_sys::LOCKMODE, true, false) };
    HELD.set(Some(key));
}

/// Lets go of the key lock this backend holds, if any.
pub(crate) fn release_key_lock() {
    if let Some(key) = HELD.take() {
        // SAFETY: a session-level lock this backend took and has not released.
        unsafe { pg_sys::LockRelease(&tag(key), pg_sys::ExclusiveLock as pg_sys::LOCKMODE, true) };
    }
}

/// Runs `wait` — a wait for another transaction — without the key lock this backend holds, and
/// takes it again after. Waiting while holding it would deadlock with a transaction that wrote
/// the key before and writes it again (an insert, then the delete of the same key, replicated
/// in one transaction): that one waits for the key lock, this one for it to end.
///
/// Another writer of the key may get through meanwhile: whoever looked at anything under the
/// key lock before must look again (see [`read_holding_key_lock`]).
pub(crate) fn while_released<T>(wait: impl FnOnce() -> T) -> T {
    let held = HELD.get();
    if held.is_some() {
        TIMES_LET_GO.set(TIMES_LET_GO.get() + 1);
    }
    release_key_lock();
    let result = wait();
    if let Some((_, relation, hash)) = held {
        lock_key(pg_sys::Oid::from(relation), hash);
    }
    result
}

/// Runs `read` (a read of the key's tombstones, which may wait) and says whether the key lock
/// was held throughout. A caller that read the table under the key lock before must read it
/// again when it was not: another writer of the key may have got through meanwhile.
pub(crate) fn read_holding_key_lock<T>(read: impl FnOnce() -> T) -> (T, bool) {
    let before = TIMES_LET_GO.get();
    let result = read();
    (result, TIMES_LET_GO.get() == before)
}

/// Releases the key lock when the transaction ends, whichever way. At commit the transaction's
/// rows are visible already (the callback runs after the commit is recorded and published).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PREPARE
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_PARALLEL_ABORT
    ) {
        release_key_lock();
    }
}

/// Registers the transaction callback; once per backend, from `_PG_init`.
pub(crate) fn init() {
    // SAFETY: called once when the library is loaded; the callback only releases our lock.
    unsafe { pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut()) };
}
