//! Node identity and the backend's hybrid logical clock (docs/design.md, "Clocks").

use std::cell::{Cell, RefCell};
use std::time::{SystemTime, UNIX_EPOCH};

use crdt_core::{HybridClock, NodeId, Stamp};
use pgrx::prelude::*;

use crate::gucs;

thread_local! {
    /// Derived once per backend: the system identifier and database never change under it.
    static DERIVED_NODE_ID: Cell<Option<NodeId>> = const { Cell::new(None) };
    /// The backend-local monotonic floor: stamps from this backend never go backwards even if
    /// the wall clock does.
    static CLOCK: RefCell<HybridClock> = const { RefCell::new(HybridClock::new()) };
}

/// A node id as SQL's `uuid`.
pub fn node_uuid(node: NodeId) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*node.as_bytes())
}

/// This node's id: `crdt.node_id` when set, else derived from the cluster's system identifier
/// and the current database's OID (a UUIDv5), so two databases of one cluster are two nodes.
pub fn local_node_id() -> NodeId {
    if let Some(id) = gucs::node_id_override() {
        return id;
    }
    DERIVED_NODE_ID.with(|cell| {
        cell.get().unwrap_or_else(|| {
            // SAFETY: plain reads of backend globals, valid once connected to a database.
            let (system_identifier, database_oid) =
                unsafe { (pg_sys::GetSystemIdentifier(), pg_sys::MyDatabaseId.to_u32()) };
            let id = NodeId::derive(system_identifier, database_oid);
            cell.set(Some(id));
            id
        })
    })
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before 1970).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh HLC reading of this backend greater than `seen_hlc` (`max(now, last + 1, seen + 1)`).
fn next_hlc(seen_hlc: u64) -> Result<u64, pg_sys::panic::ErrorReport> {
    CLOCK
        .with(|clock| clock.borrow_mut().tick_after(wall_ms(), seen_hlc))
        .map_err(|err| crate::error::out_of_range(format!("hybrid logical clock exhausted: {err}")))
}

/// A fresh stamp of this node for a write that replaces state whose newest stamp is `seen_hlc`:
/// `max(now, seen + 1)`, so a node never loses its own write to its own skewed clock.
pub fn stamp_after(seen_hlc: u64) -> Result<Stamp, pg_sys::panic::ErrorReport> {
    Ok(Stamp::new(next_hlc(seen_hlc)?, local_node_id()))
}

/// Reports (WARNING, never ERROR: rejecting would break convergence) a replicated stamp further
/// ahead of this node's wall clock than `crdt.max_clock_skew`, once per table per transaction:
/// a big replicated transaction from a skewed node would otherwise log a line per row. `table`
/// names table `relid`, and is only asked for when there is something to report.
pub fn warn_if_far_ahead(hlc: u64, relid: pg_sys::Oid, table: impl FnOnce() -> String) {
    let ahead_ms = crdt_core::ahead_of_wall_ms(hlc, wall_ms());
    let limit_ms = u64::try_from(crate::gucs::MAX_CLOCK_SKEW_MS.get()).unwrap_or(0);
    if ahead_ms <= limit_ms {
        return;
    }
    // SAFETY: reads the start time of the current transaction.
    let transaction = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    if WARNED.get() == Some((transaction, relid)) {
        return;
    }
    WARNED.set(Some((transaction, relid)));
    let table = table();
    pgrx::warning!(
        "crdt: a row replicated into {table} carries a stamp {ahead_ms} ms ahead of this node's clock \
         (crdt.max_clock_skew is {limit_ms} ms); merged anyway — check the clocks of both nodes"
    );
}

thread_local! {
    /// The transaction (by its start time) and table of the last clock-skew WARNING.
    static WARNED: Cell<Option<(pg_sys::TimestampTz, pg_sys::Oid)>> = const { Cell::new(None) };
}

/// This node's id, as set by `crdt.node_id` or derived from the cluster and database.
#[pg_extern(stable, parallel_safe, name = "node_id")]
fn node_id_sql() -> pgrx::Uuid {
    node_uuid(local_node_id())
}

/// A fresh hybrid-logical-clock reading of this backend: 48 bits of wall-clock milliseconds and
/// a 16-bit logical counter in one bigint; strictly increasing within a session.
#[pg_extern(volatile, parallel_unsafe, name = "clock_now")]
fn clock_now_sql() -> Result<i64, pg_sys::panic::ErrorReport> {
    // 48 bits of milliseconds keep the top bit clear, so the value is a positive bigint.
    next_hlc(0).map(|hlc| hlc as i64)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn node_id_is_derived_and_stable() {
        let first = Spi::get_one::<pgrx::Uuid>("SELECT crdt.node_id()").unwrap().unwrap();
        let second = Spi::get_one::<pgrx::Uuid>("SELECT crdt.node_id()").unwrap().unwrap();
        assert_eq!(first, second);
    }

    #[pg_test]
    fn node_id_guc_overrides_and_resets() {
        let derived = Spi::get_one::<pgrx::Uuid>("SELECT crdt.node_id()").unwrap().unwrap();
        Spi::run("SET crdt.node_id = '00000000-0000-0000-0000-00000000000a'").unwrap();
        let set = Spi::get_one::<String>("SELECT crdt.node_id()::text").unwrap().unwrap();
        assert_eq!(set, "00000000-0000-0000-0000-00000000000a");
        Spi::run("RESET crdt.node_id").unwrap();
        let back = Spi::get_one::<pgrx::Uuid>("SELECT crdt.node_id()").unwrap().unwrap();
        assert_eq!(back, derived);
    }

    #[pg_test(error = "invalid value for parameter \"crdt.node_id\": \"not-a-uuid\"")]
    fn node_id_guc_rejects_garbage() {
        Spi::run("SET crdt.node_id = 'not-a-uuid'").unwrap();
    }

    #[pg_test]
    fn clock_is_strictly_increasing() {
        let pair = Spi::get_two::<i64, i64>("SELECT crdt.clock_now(), crdt.clock_now()").unwrap();
        let (a, b) = (pair.0.unwrap(), pair.1.unwrap());
        assert!(b > a, "{b} must be > {a}");
    }
}
