//! The conflict journal (docs/stats.md): with `crdt.log_conflicts = on`, each replicated change
//! whose merge took something from both sides, or dropped a row, is recorded in
//! `crdt.conflicts`, a ring of `crdt.conflicts_kept` rows. It is written in a subtransaction of
//! its own, as the owner of crdt's tables: if it fails, a WARNING says so and the apply goes
//! on with nothing of the journal's write left.

use std::panic::AssertUnwindSafe;

use crdt_core::Stamp;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PgTryBuilder};

use super::deletions::as_owner;
use super::row::RawDatum;
use crate::clock::node_uuid;
use crate::error::spi_failed;

/// `crdt.log_conflicts`: off by default, because most meshes only need the counts of
/// `crdt.stats`; on, the journal costs an INSERT per conflict.
static LOG_CONFLICTS: GucSetting<bool> = GucSetting::<bool>::new(false);

/// `crdt.conflicts_kept`: the journal's size, in rows; the oldest are overwritten.
static CONFLICTS_KEPT: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// Registers the settings; from `_PG_init`.
pub(crate) fn init() {
    GucRegistry::define_bool_guc(
        c"crdt.log_conflicts",
        c"Records in crdt.conflicts each replicated change whose merge took from both sides or dropped a row.",
        c"Set it where the apply workers read it: postgresql.conf, ALTER SYSTEM or ALTER DATABASE.",
        &LOG_CONFLICTS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"crdt.conflicts_kept",
        c"How many of the latest conflicts crdt.conflicts keeps.",
        c"",
        &CONFLICTS_KEPT,
        1,
        100_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// Whether conflicts are journaled: callers skip the work of describing one otherwise.
pub(super) fn journaling() -> bool {
    LOG_CONFLICTS.get()
}

/// How a column of a conflict was decided.
#[derive(Clone, Copy)]
pub(super) enum Decided {
    Local,
    Remote,
    Merged,
}

/// One conflict, as `crdt.conflicts` records it.
pub(super) struct Conflict<'a> {
    /// `schema.table`, as `crdt.deletions` names it.
    pub(super) table: &'a str,
    /// The row's key, a `jsonb` datum.
    pub(super) key: pg_sys::Datum,
    /// PostgreSQL 18's name for it, where one fits (see docs/stats.md).
    pub(super) kind: &'static str,
    /// The columns whose values differed, and how each was decided.
    pub(super) columns: Vec<(&'a str, Decided)>,
    /// The newest stamp of each side.
    pub(super) local: Option<Stamp>,
    pub(super) remote: Option<Stamp>,
}

const RECORD: &str = "INSERT INTO crdt.conflicts AS c
        (slot, id, logged_at, table_name, key, conflict, columns, local_hlc, local_node, remote_hlc, remote_node)
    SELECT n OPERATOR(pg_catalog.%) $10, n, pg_catalog.clock_timestamp(), $1, $2, $3,
           CASE WHEN pg_catalog.cardinality($4) OPERATOR(pg_catalog.>) 0 THEN pg_catalog.jsonb_object($4, $5) END,
           $6::pg_catalog.numeric, $7, $8::pg_catalog.numeric, $9
    FROM pg_catalog.nextval('crdt.conflicts_id_seq') n
    ON CONFLICT (slot) DO UPDATE
        SET id = excluded.id, logged_at = excluded.logged_at, table_name = excluded.table_name,
            key = excluded.key, conflict = excluded.conflict, columns = excluded.columns,
            local_hlc = excluded.local_hlc, local_node = excluded.local_node,
            remote_hlc = excluded.remote_hlc, remote_node = excluded.remote_node";

/// Records `conflict` if conflicts are journaled. Never fails: see the module.
pub(super) fn record(conflict: &Conflict<'_>) {
    if !journaling() {
        return;
    }
    // jsonb_object(names, decisions) builds the columns' object: no JSON written here.
    let names: Vec<String> = conflict.columns.iter().map(|(name, _)| name.to_string()).collect();
    let decisions: Vec<&str> = conflict
        .columns
        .iter()
        .map(|(_, decided)| match decided {
            Decided::Local => "local",
            Decided::Remote => "remote",
            Decided::Merged => "merged",
        })
        .collect();
    let stamp = |stamp: Option<Stamp>| {
        (
            stamp.map(|stamp| stamp.hlc.to_string()),
            stamp.map(|stamp| node_uuid(stamp.node)),
        )
    };
    let (local_hlc, local_node) = stamp(conflict.local);
    let (remote_hlc, remote_node) = stamp(conflict.remote);
    in_subtransaction(|| {
        as_owner(|| {
            Spi::connect_mut(|client| {
                client
                    .update(
                        RECORD,
                        None,
                        &[
                            conflict.table.into(),
                            // SAFETY: a jsonb datum alive for the trigger call.
                            unsafe { DatumWithOid::new(RawDatum(conflict.key), pg_sys::JSONBOID) },
                            conflict.kind.into(),
                            names.clone().into(),
                            decisions.clone().into(),
                            local_hlc.clone().into(),
                            local_node.into(),
                            remote_hlc.clone().into(),
                            remote_node.into(),
                            i64::from(CONFLICTS_KEPT.get()).into(),
                        ],
                    )
                    .map(drop)
            })
            .map_err(spi_failed)
        })
        .map(drop)
    });
}

/// Runs `work` in a subtransaction, as PL/pgSQL runs a block with an EXCEPTION clause: an ERROR
/// in it rolls back what it wrote and becomes a WARNING.
fn in_subtransaction(work: impl FnOnce() -> Result<(), ErrorReport>) {
    // SAFETY: the subtransaction is begun and ended here, on every path; the memory context and
    // resource owner of the caller are restored after it, as PL/pgSQL does.
    let failed = unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let failed = PgTryBuilder::new(AssertUnwindSafe(|| {
            work().err().map(|report| report.message().to_string())
        }))
        .catch_others(|caught| {
            Some(match caught {
                CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report.message().to_string(),
                CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
            })
        })
        .execute();
        pg_sys::MemoryContextSwitchTo(context);
        if failed.is_none() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        failed
    };
    if let Some(message) = failed {
        pgrx::warning!("crdt: a conflict was not recorded in crdt.conflicts: {message}");
    }
}

extension_sql!(
    r#"-- The conflict journal (src/table/conflicts.rs): a ring of crdt.conflicts_kept rows, written
-- only with crdt.log_conflicts = on. Local: never published, and replicated changes to it are
-- ignored.
CREATE SEQUENCE conflicts_id_seq;
CREATE TABLE conflicts (
    -- the place in the ring: id modulo crdt.conflicts_kept
    slot bigint PRIMARY KEY,
    -- in the order they were recorded
    id bigint NOT NULL,
    logged_at timestamptz NOT NULL,
    -- schema.table, as crdt.deletions names it
    table_name text NOT NULL,
    key jsonb NOT NULL,
    -- PostgreSQL 18's name where one fits: insert_exists, update_origin_differs,
    -- delete_origin_differs; insert_deleted (ours) for an insert a tombstone dropped
    conflict text NOT NULL,
    -- the columns whose values differed: "local", "remote" or "merged"
    columns jsonb,
    -- the newest stamp of each side (HLC and node)
    local_hlc numeric(20, 0),
    local_node uuid,
    remote_hlc numeric(20, 0),
    remote_node uuid
);
COMMENT ON TABLE conflicts IS 'The latest conflicts merges decided (with crdt.log_conflicts = on).';
REVOKE ALL ON conflicts FROM PUBLIC;
REVOKE ALL ON SEQUENCE conflicts_id_seq FROM PUBLIC;
GRANT SELECT ON conflicts TO pg_monitor;
CREATE TRIGGER zz_crdt_local_only BEFORE INSERT OR UPDATE OR DELETE ON conflicts
    FOR EACH ROW EXECUTE FUNCTION ignore_replicated_row();
ALTER TABLE conflicts ENABLE REPLICA TRIGGER zz_crdt_local_only;"#,
    name = "conflicts",
    requires = ["collection"]
);
