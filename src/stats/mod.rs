//! `crdt.stats`: what the merges decided, per CRDT table, counted by the merge and tombstone
//! triggers and kept in shared memory (`shared`) when the library is in
//! `shared_preload_libraries`. A transaction's counts are kept in the backend and added at its
//! commit, so a rolled-back apply counts nothing and the triggers take no lock per row.

mod shared;

use std::cell::RefCell;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use shared::COUNTS;

/// What the triggers count; the order of `crdt.stats`' columns.
#[derive(Clone, Copy)]
pub(crate) enum Event {
    /// A replicated INSERT, UPDATE or tombstone of the table (or a `crdt.merge_row`).
    RemoteRow,
    /// A column whose value differed, decided for the replicated value.
    RemoteWin,
    /// A column whose value differed, decided for the local value.
    LocalWin,
    /// A counter the merge changed.
    CounterMerge,
    /// A doc the merge changed.
    DocMerge,
    /// A replicated change that changed nothing here: an echo, or what this node had already.
    EchoSkipped,
    /// A replicated INSERT of a key this node has, merged into its row.
    InsertMerged,
    /// A row a replicated tombstone deleted.
    DeleteApplied,
    /// A replicated INSERT of a key whose tombstone it had not seen: it stays deleted.
    InsertDroppedByTombstone,
}

thread_local! {
    /// This transaction's counts per relation, added to the shared ones at commit.
    static PENDING: RefCell<Vec<(u32, [u64; COUNTS])>> = const { RefCell::new(Vec::new()) };
    /// The shared slot each relation counted by this backend had.
    static SLOT_HINTS: RefCell<Vec<(u32, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Whether merges are counted: callers skip work done only to count.
pub(crate) fn counting() -> bool {
    shared::reserved()
}

/// Counts `times` events of `relid` in this transaction.
pub(crate) fn count(relid: pg_sys::Oid, event: Event, times: u64) {
    // A tombstone of a table this node does not have is not counted.
    if times == 0 || relid == pg_sys::InvalidOid || !counting() {
        return;
    }
    let relation = relid.to_u32();
    PENDING.with_borrow_mut(|pending| {
        let counts = match pending.iter().position(|(counted, _)| *counted == relation) {
            Some(index) => &mut pending[index].1,
            None => {
                pending.push((relation, [0; COUNTS]));
                &mut pending.last_mut().expect("just pushed").1
            }
        };
        counts[event as usize] += times;
    });
}

/// Adds the transaction's counts at commit; drops them at abort.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    let committed = matches!(
        event,
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE
    );
    if !committed && !matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        return;
    }
    let pending = PENDING.take();
    if committed && !pending.is_empty() {
        SLOT_HINTS.with_borrow_mut(|hints| shared::add(this_database(), &pending, hints));
    }
}

/// Reserves the shared memory and registers the transaction callback; from `_PG_init`. Nothing
/// is counted unless PostgreSQL is loading `shared_preload_libraries`.
pub(crate) fn init() {
    shared::init();
    if counting() {
        // SAFETY: called once when the library is loaded; the callback only moves counts.
        unsafe { pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut()) };
    }
}

fn not_counting() -> ErrorReport {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        "crdt.stats needs crdt in shared_preload_libraries",
        "crdt",
    )
    .set_detail("Merges are counted in shared memory, which a library can reserve only when the server starts.")
    .set_hint("Add crdt to shared_preload_libraries in postgresql.conf and restart PostgreSQL.")
}

fn this_database() -> u32 {
    // SAFETY: MyDatabaseId is set for the whole life of a backend connected to a database.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// The counts of this database's tables, as `crdt.stats` shows them (the view adds the tables
/// not counted yet).
#[pg_extern(stable, strict, parallel_restricted)]
#[allow(clippy::type_complexity)]
fn table_stats() -> Result<
    TableIterator<
        'static,
        (
            name!(relid, pg_sys::Oid),
            name!(remote_rows, i64),
            name!(remote_wins, i64),
            name!(local_wins, i64),
            name!(counter_merges, i64),
            name!(doc_merges, i64),
            name!(echoes_skipped, i64),
            name!(inserts_merged, i64),
            name!(deletes_applied, i64),
            name!(inserts_dropped_by_tombstone, i64),
            name!(stats_reset, Option<TimestampWithTimeZone>),
        ),
    >,
    ErrorReport,
> {
    if !counting() {
        return Err(not_counting());
    }
    let (slots, _) = shared::read(this_database());
    // Counts wrap past i64::MAX only after centuries at any rate a server reaches.
    let count = |slot: &shared::Slot, event: Event| slot.counts[event as usize] as i64;
    Ok(TableIterator::new(slots.into_iter().map(move |slot| {
        (
            pg_sys::Oid::from(slot.relation),
            count(&slot, Event::RemoteRow),
            count(&slot, Event::RemoteWin),
            count(&slot, Event::LocalWin),
            count(&slot, Event::CounterMerge),
            count(&slot, Event::DocMerge),
            count(&slot, Event::EchoSkipped),
            count(&slot, Event::InsertMerged),
            count(&slot, Event::DeleteApplied),
            count(&slot, Event::InsertDroppedByTombstone),
            slot.reset_at.and_then(|at| TimestampWithTimeZone::try_from(at).ok()),
        )
    })))
}

/// Zeroes the counts of `crdt.stats` for one table, or for every table of this database.
#[pg_extern(volatile, parallel_unsafe)]
fn stats_reset(table: default!(Option<pgrx::PgRelation>, "NULL")) -> Result<(), ErrorReport> {
    if !counting() {
        return Err(not_counting());
    }
    let database = this_database();
    let (slots, _) = shared::read(database);
    // Checked before the lock is taken: a catalog lookup may wait.
    let gone: Vec<u32> = slots
        .iter()
        .map(|slot| slot.relation)
        // SAFETY: a syscache lookup by OID.
        .filter(|&relation| unsafe {
            !pg_sys::SearchSysCacheExists(
                pg_sys::SysCacheIdentifier::RELOID as i32,
                pg_sys::Datum::from(relation),
                0.into(),
                0.into(),
                0.into(),
            )
        })
        .collect();
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    shared::reset(database, table.map(|table| table.oid().to_u32()), now, &gone);
    Ok(())
}

/// Tables' counts that found no free slot in shared memory since the last full reset.
pub(crate) fn uncounted() -> Option<u64> {
    counting().then(|| shared::read(this_database()).1)
}

extension_sql!(
    r#"-- What the merges decided, one row per CRDT table of this database (docs/stats.md).
CREATE VIEW stats AS
SELECT c.oid::pg_catalog.regclass AS table_name,
       COALESCE(s.remote_rows, 0) AS remote_rows,
       COALESCE(s.remote_wins, 0) AS remote_wins,
       COALESCE(s.local_wins, 0) AS local_wins,
       COALESCE(s.counter_merges, 0) AS counter_merges,
       COALESCE(s.doc_merges, 0) AS doc_merges,
       COALESCE(s.echoes_skipped, 0) AS echoes_skipped,
       COALESCE(s.inserts_merged, 0) AS inserts_merged,
       COALESCE(s.deletes_applied, 0) AS deletes_applied,
       COALESCE(s.inserts_dropped_by_tombstone, 0) AS inserts_dropped_by_tombstone,
       s.stats_reset
FROM pg_catalog.pg_class c
LEFT JOIN crdt.table_stats() s ON s.relid OPERATOR(pg_catalog.=) c.oid
WHERE EXISTS (SELECT FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND t.tgname OPERATOR(pg_catalog.=) 'zz_crdt_merge');
COMMENT ON VIEW stats IS 'What the merges decided, per CRDT table (needs crdt in shared_preload_libraries).';
GRANT SELECT ON stats TO PUBLIC;
REVOKE ALL ON FUNCTION stats_reset(pg_catalog.regclass) FROM PUBLIC;"#,
    name = "stats",
    requires = [table_stats, stats_reset]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    // `cargo pgrx test`'s server does not preload the library (see `crate::pg_test`).
    #[pg_test(error = "crdt.stats needs crdt in shared_preload_libraries")]
    fn stats_say_they_need_preloading() {
        Spi::run("CREATE TABLE counted (id int PRIMARY KEY); SELECT crdt.enable('counted')").unwrap();
        Spi::run("SELECT * FROM crdt.stats").unwrap();
    }

    #[pg_test(error = "crdt.stats needs crdt in shared_preload_libraries")]
    fn stats_reset_says_it_needs_preloading() {
        Spi::run("SELECT crdt.stats_reset()").unwrap();
    }

    #[pg_test]
    fn status_says_merges_are_not_counted() {
        let stats = Spi::get_two::<bool, String>("SELECT ok, detail FROM crdt.status() WHERE item = 'stats'").unwrap();
        assert_eq!(
            stats,
            (
                Some(false),
                Some("off: crdt is not in shared_preload_libraries".to_string())
            )
        );
    }
}
