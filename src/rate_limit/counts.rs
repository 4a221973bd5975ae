//! What a call reads and writes: one key's counts in `crdt.rate_limits` in the current and the
//! previous window, this node's slot counter credited, and (in `split` mode) how many nodes the
//! mesh has. The statements are prepared once per backend: a call is two or three of them, and
//! parsing and planning would cost more than running.

use std::cell::Cell;

use crdt_core::NodeId;
use pgrx::datum::{DatumWithOid, Interval, TimestampWithTimeZone};
use pgrx::pg_sys;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::PgOid;

use crate::clock::node_uuid;

/// Rows per key, window and node: sessions limiting one hot key spread over them (by process
/// id), so they do not all wait for one row lock. Part of every node's `split` quotas: it never
/// changes.
pub(super) const SLOTS: u64 = 8;

/// One key's counts in two windows.
#[derive(Default)]
pub(super) struct Counts {
    /// Per window (0: previous, 1: current): every node's total.
    pub(super) all: [u64; 2],
    /// Per window: this node's count in each slot.
    pub(super) own: [[u64; SLOTS as usize]; 2],
}

/// Where a call counts: its key, the window length and the two windows' starts.
pub(super) struct Place<'a> {
    pub(super) key: &'a str,
    pub(super) per: Interval,
    pub(super) previous: TimestampWithTimeZone,
    pub(super) current: TimestampWithTimeZone,
    pub(super) node: NodeId,
}

impl<'a> Place<'a> {
    fn node(&self) -> pgrx::Uuid {
        node_uuid(self.node)
    }

    /// The arguments naming this node's `slot` of the current window, then `amount`: `$1` to
    /// `$6` of the credit and of the give-back.
    fn slot_arguments(&self, slot: u64, amount: u64) -> [DatumWithOid<'a>; 6] {
        [
            self.key.into(),
            self.per.into(),
            self.current.into(),
            self.node().into(),
            (slot as i16).into(),
            (amount as i64).into(),
        ]
    }
}

/// The statements, prepared by the first call of the backend (and kept for its life).
struct Statements {
    read: OwnedPreparedStatement,
    credit: OwnedPreparedStatement,
    give_back: OwnedPreparedStatement,
    mesh_size: OwnedPreparedStatement,
}

thread_local! {
    static STATEMENTS: Cell<Option<&'static Statements>> = const { Cell::new(None) };
}

const READ: &str = "SELECT window_start OPERATOR(pg_catalog.=) $4, node OPERATOR(pg_catalog.=) $5, slot,
        count::pg_catalog.int8
    FROM crdt.rate_limits
    WHERE key OPERATOR(pg_catalog.=) $1 AND per OPERATOR(pg_catalog.=) $2
      AND window_start IN ($3, $4)";

/// With `$7` NULL, unconditional; otherwise only if the slot's count stays within `$7`.
const CREDIT: &str = "INSERT INTO crdt.rate_limits AS r (key, per, window_start, node, slot, count)
    SELECT $1, $2, $3, $4, $5, $6
    WHERE $7 IS NULL OR $6 OPERATOR(pg_catalog.<=) $7
    ON CONFLICT (key, per, window_start, node, slot) DO UPDATE
       SET count = r.count OPERATOR(crdt.+) excluded.count::pg_catalog.int8
       WHERE $7 IS NULL OR r.count::pg_catalog.int8 OPERATOR(pg_catalog.+) $6 OPERATOR(pg_catalog.<=) $7
    RETURNING true";

const GIVE_BACK: &str = "UPDATE crdt.rate_limits SET count = count OPERATOR(crdt.-) $6
    WHERE key OPERATOR(pg_catalog.=) $1 AND per OPERATOR(pg_catalog.=) $2
      AND window_start OPERATOR(pg_catalog.=) $3 AND node OPERATOR(pg_catalog.=) $4
      AND slot OPERATOR(pg_catalog.=) $5";

/// This node's subscriptions in this database or the other nodes it has heard from through
/// tombstone collection, whichever are more, plus one.
const MESH_SIZE: &str = "SELECT GREATEST(
        (SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription
         WHERE subdbid OPERATOR(pg_catalog.=)
               (SELECT oid FROM pg_catalog.pg_database
                WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())),
        (SELECT pg_catalog.count(*) FROM crdt.peers
         WHERE NOT forgotten AND heard_at IS NOT NULL AND node OPERATOR(pg_catalog.<>) $1))
    OPERATOR(pg_catalog.+) 1";

fn statements(client: &SpiClient<'_>) -> Result<&'static Statements, pgrx::spi::Error> {
    if let Some(statements) = STATEMENTS.get() {
        return Ok(statements);
    }
    let [text, interval, at, node, slot, amount] = [
        pg_sys::TEXTOID,
        pg_sys::INTERVALOID,
        pg_sys::TIMESTAMPTZOID,
        pg_sys::UUIDOID,
        pg_sys::INT2OID,
        pg_sys::INT8OID,
    ]
    .map(PgOid::from);
    let statements: &'static Statements = Box::leak(Box::new(Statements {
        // Prepared as mutating: run with a snapshot of its own, it reads the latest counts.
        read: client.prepare_mut(READ, &[text, interval, at, at, node])?.keep(),
        credit: client
            .prepare_mut(CREDIT, &[text, interval, at, node, slot, amount, amount])?
            .keep(),
        give_back: client
            .prepare_mut(GIVE_BACK, &[text, interval, at, node, slot, amount])?
            .keep(),
        mesh_size: client.prepare_mut(MESH_SIZE, &[node])?.keep(),
    }));
    STATEMENTS.set(Some(statements));
    Ok(statements)
}

/// Reads the counts of `place`.
pub(super) fn read(client: &SpiClient<'_>, place: &Place<'_>) -> Result<Counts, pgrx::spi::Error> {
    let rows = client.select(
        &statements(client)?.read,
        None,
        &[
            place.key.into(),
            place.per.into(),
            place.previous.into(),
            place.current.into(),
            place.node().into(),
        ],
    )?;
    let mut counts = Counts::default();
    for row in rows {
        let window = usize::from(row.get::<bool>(1)?.unwrap_or(false));
        // A count below zero is nobody's admission (only crdt.rate_limit writes them).
        let count = row
            .get::<i64>(4)?
            .and_then(|count| u64::try_from(count).ok())
            .unwrap_or(0);
        counts.all[window] = counts.all[window].saturating_add(count);
        let slot = row.get::<i16>(3)?.and_then(|slot| usize::try_from(slot).ok());
        if let (Some(true), Some(slot)) = (row.get::<bool>(2)?, slot) {
            if let Some(own) = counts.own[window].get_mut(slot) {
                *own = own.saturating_add(count);
            }
        }
    }
    Ok(counts)
}

/// Credits `cost` to this node's `slot` in the current window. With `room`, only if the slot's
/// count then stays within it (the row's lock makes that exact); whether it was credited.
pub(super) fn credit(
    client: &mut SpiClient<'_>,
    place: &Place<'_>,
    slot: u64,
    cost: u64,
    room: Option<u64>,
) -> Result<bool, pgrx::spi::Error> {
    // The previous window's rows go once it no longer counts: crdt.rate_limit_vacuum().
    let [key, per, window, node, slot, cost] = place.slot_arguments(slot, cost);
    let room = room.map(|room| i64::try_from(room).unwrap_or(i64::MAX));
    let credited = client.update(
        &statements(client)?.credit,
        None,
        &[key, per, window, node, slot, cost, room.into()],
    )?;
    Ok(!credited.is_empty())
}

/// Takes back `part` credited to this node's `slot` by a call that was then refused.
pub(super) fn give_back(
    client: &mut SpiClient<'_>,
    place: &Place<'_>,
    slot: u64,
    part: u64,
) -> Result<(), pgrx::spi::Error> {
    client.update(&statements(client)?.give_back, None, &place.slot_arguments(slot, part))?;
    Ok(())
}

/// How many nodes the mesh has, as this node knows it (docs/rate_limit.md): at least one.
pub(super) fn mesh_size(client: &SpiClient<'_>, this_node: NodeId) -> Result<u64, pgrx::spi::Error> {
    let nodes = client
        .select(&statements(client)?.mesh_size, Some(1), &[node_uuid(this_node).into()])?
        .first()
        .get_one::<i64>()?;
    Ok(nodes.and_then(|nodes| u64::try_from(nodes).ok()).unwrap_or(1).max(1))
}
