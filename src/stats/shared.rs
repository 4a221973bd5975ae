//! The counts behind `crdt.stats`, in shared memory: one slot per table (database and relation
//! OIDs), kept while the server runs, whichever backend or apply worker counted. Reserved when
//! the library is in `shared_preload_libraries`; there is none otherwise.

use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::{pg_guard, pg_shmem_init, pg_sys, PGRXSharedMemory, PgLwLock};

/// How many counts a table has (see `super::Event`).
pub(super) const COUNTS: usize = 9;

/// Tables counted at most, over all databases; more go uncounted (see [`Table::uncounted`]).
const SLOTS: usize = 2048;

/// One table's counts.
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) database: u32,
    /// 0: a free slot.
    pub(super) relation: u32,
    /// When `crdt.stats_reset()` last zeroed the counts (a `timestamptz`), if ever.
    pub(super) reset_at: Option<i64>,
    pub(super) counts: [u64; COUNTS],
}

const FREE: Slot = Slot {
    database: 0,
    relation: 0,
    reset_at: None,
    counts: [0; COUNTS],
};

#[derive(Clone, Copy)]
pub(super) struct Table {
    slots: [Slot; SLOTS],
    /// Transactions' counts of tables that found no free slot.
    uncounted: u64,
}

// SAFETY: plain data without pointers, the same in every process.
unsafe impl PGRXSharedMemory for Table {}

static TABLE: PgLwLock<Table> = unsafe { PgLwLock::new(c"crdt stats") };

/// Set in the postmaster while it loads `shared_preload_libraries`; inherited by every backend.
static RESERVED: AtomicBool = AtomicBool::new(false);

/// Reserves the shared memory; from `_PG_init`, which does nothing here unless PostgreSQL is
/// loading `shared_preload_libraries` (shared memory can be reserved only then).
pub(super) fn init() {
    // SAFETY: a flag PostgreSQL sets while it runs the preloaded libraries' _PG_init.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    pg_shmem_init!(
        TABLE = Table {
            slots: [FREE; SLOTS],
            uncounted: 0
        }
    );
    RESERVED.store(true, Ordering::Relaxed);
}

/// Whether counts are kept (the library was preloaded).
pub(super) fn reserved() -> bool {
    RESERVED.load(Ordering::Relaxed)
}

/// Adds one transaction's counts, per relation of `database`. `hints` remembers, per
/// relation, the slot it had, so that a table's slot is found without a search.
pub(super) fn add(database: u32, counted: &[(u32, [u64; COUNTS])], hints: &mut Vec<(u32, usize)>) {
    let mut table = TABLE.exclusive();
    for (relation, counts) in counted {
        let hinted = hints
            .iter()
            .find(|(hinted, _)| hinted == relation)
            .map(|&(_, index)| index)
            .filter(|&index| table.slots[index].database == database && table.slots[index].relation == *relation);
        let index = hinted.or_else(|| {
            let found = table
                .slots
                .iter()
                .position(|slot| slot.database == database && slot.relation == *relation)
                .or_else(|| table.slots.iter().position(|slot| slot.relation == 0))?;
            if table.slots[found].relation == 0 {
                table.slots[found] = Slot {
                    database,
                    relation: *relation,
                    ..FREE
                };
            }
            hints.retain(|(hinted, _)| hinted != relation);
            hints.push((*relation, found));
            Some(found)
        });
        let Some(index) = index else {
            table.uncounted += 1;
            continue;
        };
        for (total, added) in table.slots[index].counts.iter_mut().zip(counts) {
            *total = total.wrapping_add(*added);
        }
    }
}

/// The slots of `database`'s tables, and the transactions' counts that found no slot (all
/// databases).
pub(super) fn read(database: u32) -> (Vec<Slot>, u64) {
    let table = TABLE.share();
    let slots = table
        .slots
        .iter()
        .filter(|slot| slot.relation != 0 && slot.database == database)
        .copied()
        .collect();
    (slots, table.uncounted)
}

/// Zeroes the counts of `only` of `database`, or of all its tables, at `now`; frees the slots
/// of the tables in `gone` (dropped since they were counted).
pub(super) fn reset(database: u32, only: Option<u32>, now: i64, gone: &[u32]) {
    let mut table = TABLE.exclusive();
    for slot in table.slots.iter_mut() {
        if slot.relation == 0 || slot.database != database {
            continue;
        }
        if gone.contains(&slot.relation) {
            *slot = FREE;
        } else if only.is_none_or(|only| only == slot.relation) {
            slot.counts = [0; COUNTS];
            slot.reset_at = Some(now);
        }
    }
    if only.is_none() {
        table.uncounted = 0;
    }
}
