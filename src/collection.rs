//! Tombstone collection (docs/tombstones.md): heartbeats sent through the subscriptions in
//! `crdt.heartbeats`, what this node heard in `crdt.peers`, and `crdt.vacuum_tombstones()` /
//! `crdt.forget_node()`. When a tombstone may go is the core's rule (`crdt_core::stability`);
//! this module reads PostgreSQL's state for it and writes what it decides.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use crdt_core::{collectable_through, holding_collection, next_covers, Heartbeat, Holding, MeshView, NodeId};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::clock::{local_node_id, node_uuid};
use crate::error::spi_failed;

/// How far back a node's wall clock may step without a tombstone being collected early: the
/// candidate time of `covers` is taken this much before the clock read (docs/tombstones.md).
const CLOCK_STEP_MARGIN_MS: u64 = 1000;

/// The advisory lock (two-key form) that serialises `crdt.vacuum_tombstones()` runs: "CRDT", 1.
const VACUUM_LOCK: (i32, i32) = (0x4352_4454, 1);

extension_sql!(
    r#"-- Tombstone collection (docs/tombstones.md). Heartbeats: each node's latest, sent by
-- crdt.vacuum_tombstones() through the same subscriptions as the data; publish this table with
-- the CRDT tables and crdt.deletions. A receiver records one that came straight from its node
-- (via = node) in crdt.peers.
CREATE TABLE heartbeats (
    node uuid PRIMARY KEY,
    -- the node that wrote this copy: the sender, or one that applied it and published it again
    via uuid NOT NULL,
    -- HLC values (unsigned 64-bit): see crdt_core::stability
    covers numeric(20, 0) NOT NULL,
    received numeric(20, 0) NOT NULL,
    settled numeric(20, 0) NOT NULL,
    members uuid[] NOT NULL,
    sent_at timestamptz NOT NULL
);
COMMENT ON TABLE heartbeats IS 'Heartbeats of tombstone collection; publish it with the CRDT tables.';
REVOKE ALL ON heartbeats FROM PUBLIC;
-- What this node heard from each node (and its own latest heartbeat, in its own row). Local:
-- never published, and replicated changes to it are ignored.
CREATE TABLE peers (
    node uuid PRIMARY KEY,
    covers numeric(20, 0) NOT NULL DEFAULT 0,
    received numeric(20, 0) NOT NULL DEFAULT 0,
    -- for this node's own row, the largest it has sent
    settled numeric(20, 0) NOT NULL DEFAULT 0,
    members uuid[] NOT NULL DEFAULT '{}',
    heard_at timestamptz,
    -- crdt.forget_node: left the mesh for good, neither waited for nor counted
    forgotten boolean NOT NULL DEFAULT false,
    -- this node's own row: the next covers' candidate time (wall-clock ms) and the
    -- transactions that were running then
    candidate_ms bigint,
    candidate_xids xid8[]
);
COMMENT ON TABLE peers IS 'What this node heard from each node of the mesh (tombstone collection).';
REVOKE ALL ON peers FROM PUBLIC;
-- Read by the merge triggers, which on PostgreSQL 16 and later run as each table's owner.
GRANT SELECT ON peers TO PUBLIC;

-- A replicated change (trigger depth 1) is skipped; what receive_heartbeat writes from within
-- the apply worker (depth 2) goes through.
CREATE FUNCTION ignore_replicated_row() RETURNS trigger
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF pg_catalog.pg_trigger_depth() > 1 THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION ignore_replicated_row() IS 'Skips a replicated change to a table of tombstone collection.';

CREATE FUNCTION receive_heartbeat() RETURNS trigger
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    own uuid := crdt.node_id();
BEGIN
    IF NEW.node = own OR NEW.via <> NEW.node THEN
        -- This node's own heartbeat back through another node, or a copy another node published
        -- again (origin = any): not straight from its node, so it proves nothing, and is dropped
        -- here so that it goes no further.
        RETURN NULL;
    END IF;
    -- Straight from its node: everything that node committed before it has arrived.
    INSERT INTO crdt.peers AS p (node, covers, received, settled, members, heard_at)
    VALUES (NEW.node, NEW.covers, NEW.received, NEW.settled, NEW.members, now())
    ON CONFLICT (node) DO UPDATE
        SET covers = excluded.covers, received = excluded.received, settled = excluded.settled,
            members = excluded.members, heard_at = excluded.heard_at
        WHERE NOT p.forgotten;
    -- Kept as one row per node, updated in place: replicated DELETEs and UPDATEs of this table
    -- are skipped (zz_crdt_local_only), so the sender's DELETE before each heartbeat, and what
    -- another node publishes again of its own copy, change nothing here.
    UPDATE crdt.heartbeats h
        SET covers = NEW.covers, received = NEW.received, settled = NEW.settled,
            members = NEW.members, sent_at = NEW.sent_at
        WHERE h.node = NEW.node;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    -- Published again from here (origin = any) it is no longer straight from its node.
    NEW.via := own;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION receive_heartbeat() IS 'Records a heartbeat a subscription applies (tombstone collection).';
CREATE TRIGGER zz_crdt_receive_heartbeat BEFORE INSERT ON heartbeats
    FOR EACH ROW EXECUTE FUNCTION receive_heartbeat();
ALTER TABLE heartbeats ENABLE REPLICA TRIGGER zz_crdt_receive_heartbeat;
CREATE TRIGGER zz_crdt_local_only BEFORE UPDATE OR DELETE ON heartbeats
    FOR EACH ROW EXECUTE FUNCTION ignore_replicated_row();
ALTER TABLE heartbeats ENABLE REPLICA TRIGGER zz_crdt_local_only;

CREATE TRIGGER zz_crdt_local_only BEFORE INSERT OR UPDATE OR DELETE ON peers
    FOR EACH ROW EXECUTE FUNCTION ignore_replicated_row();
ALTER TABLE peers ENABLE REPLICA TRIGGER zz_crdt_local_only;

CREATE FUNCTION forget_node(node uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF node = crdt.node_id() THEN
        RAISE EXCEPTION 'a node cannot forget itself'
            USING ERRCODE = '22023', HINT = 'Run crdt.forget_node on the nodes that stay.';
    END IF;
    INSERT INTO crdt.peers AS p (node, forgotten) VALUES (node, true)
    ON CONFLICT ON CONSTRAINT peers_pkey DO UPDATE SET forgotten = true;
END
$$;
COMMENT ON FUNCTION forget_node(uuid) IS
    'Stops waiting for a node that left the mesh for good (drop its subscriptions first).';
REVOKE ALL ON FUNCTION forget_node(uuid) FROM PUBLIC;"#,
    name = "collection"
);

thread_local! {
    /// This node's `settled` as last read, with the transaction completion count of the
    /// snapshot that was active then (see [`settled_here`]).
    static SETTLED_READ: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// This node's `settled` (the largest it has sent; 0 before its first heartbeat): tombstones
/// stamped at or below it no longer decide anything here (`crdt_core::tombstone_decides`).
///
/// A write that relies on `settled` arrives after the value it relies on was committed here
/// (docs/tombstones.md), so it is read in a snapshot at least as new as the one the arriving
/// change is applied in. A value read while a snapshot with the same transaction completion
/// count was active saw exactly as much: it is used again, so a replicated transaction of many
/// rows meeting tombstones reads `crdt.peers` once, not once per row.
pub(crate) fn settled_here() -> Result<u64, ErrorReport> {
    // SAFETY: the active snapshot, if any, lives at least as long as this call.
    let completions = unsafe { pg_sys::GetActiveSnapshot().as_ref() }.map(|snapshot| snapshot.snapXactCompletionCount);
    if let (Some(now), Some((settled, then))) = (completions, SETTLED_READ.get()) {
        if now == then {
            return Ok(settled);
        }
    }
    let own = node_uuid(local_node_id());
    let settled = Spi::connect(|client| {
        let row = client
            .select(
                "SELECT settled::pg_catalog.text FROM crdt.peers WHERE node OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[own.into()],
            )?
            .first();
        // No row before this node's first heartbeat: nothing settled.
        if row.is_empty() {
            return Ok(0);
        }
        Ok::<_, pgrx::spi::Error>(hlc_of(row.get_one::<String>()?))
    })
    .map_err(spi_failed)?;
    SETTLED_READ.set(completions.map(|count| (settled, count)));
    Ok(settled)
}

/// An HLC kept as `numeric(20, 0)` and read as text; 0 for none.
fn hlc_of(text: Option<String>) -> u64 {
    text.and_then(|text| text.parse().ok()).unwrap_or(0)
}

/// Sends this node's heartbeat and removes the tombstones every node has settled; the number
/// removed. Safe on any node at any time (from cron, say): it never removes a tombstone that
/// could still decide anything anywhere.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn vacuum_tombstones() -> Result<i64, ErrorReport> {
    let own = local_node_id();
    // Read before the running transactions are: see crdt_core::next_covers.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    Spi::connect_mut(|client| {
        // One run at a time on a node: two would each replace the heartbeat row.
        client.update(
            "SELECT pg_catalog.pg_advisory_xact_lock($1, $2)",
            None,
            &[VACUUM_LOCK.0.into(), VACUUM_LOCK.1.into()],
        )?;
        let (last_covers, candidate_ms, candidate_ended) = own_candidate(client, own)?;
        let covers = next_covers(last_covers, candidate_ms, candidate_ended, CLOCK_STEP_MARGIN_MS);
        let view = mesh_view(client, own)?;
        let beat = view.next_heartbeat(covers);
        send(client, own, &beat, now_ms)?;
        let through = collectable_through(&view, &beat);
        let removed = client.update(
            "DELETE FROM crdt.deletions WHERE hlc OPERATOR(pg_catalog.<=) $1::pg_catalog.numeric",
            None,
            &[through.to_string().into()],
        )?;
        Ok::<_, pgrx::spi::Error>(removed.len() as i64)
    })
    .map_err(spi_failed)
}

/// Why this node collects no further than it does, as `crdt.status()` reports it: the members
/// of the mesh it knows and what holds collection back, as a run of
/// `crdt.vacuum_tombstones()` would find them now (its `covers` not moved on).
pub(crate) fn holding_now(client: &mut SpiClient<'_>) -> Result<(Vec<NodeId>, Holding), pgrx::spi::Error> {
    let own = local_node_id();
    let (last_covers, _, _) = own_candidate(client, own)?;
    let view = mesh_view(client, own)?;
    let beat = view.next_heartbeat(last_covers);
    Ok((view.members().into_iter().collect(), holding_collection(&view, &beat)))
}

/// This node's last `covers`, and its candidate: the time, and whether every transaction
/// running then has ended.
fn own_candidate(client: &mut SpiClient<'_>, own: NodeId) -> Result<(u64, Option<u64>, bool), pgrx::spi::Error> {
    let row = client
        .select(
            "SELECT covers::pg_catalog.text, candidate_ms,
                    NOT EXISTS (SELECT FROM pg_catalog.unnest(candidate_xids) x
                                WHERE pg_catalog.pg_xact_status(x) OPERATOR(pg_catalog.=) 'in progress')
             FROM crdt.peers WHERE node OPERATOR(pg_catalog.=) $1",
            Some(1),
            &[node_uuid(own).into()],
        )?
        .first();
    if row.is_empty() {
        return Ok((0, None, false));
    }
    let covers = hlc_of(row.get::<String>(1)?);
    let candidate = row.get::<i64>(2)?.and_then(|ms| u64::try_from(ms).ok());
    Ok((covers, candidate, row.get::<bool>(3)?.unwrap_or(false)))
}

/// What this node has heard: the other nodes' latest heartbeats, the forgotten, and how many
/// subscriptions it has.
fn mesh_view(client: &mut SpiClient<'_>, own: NodeId) -> Result<MeshView, pgrx::spi::Error> {
    let mut view = MeshView {
        own,
        ..MeshView::default()
    };
    let peers = client.select(
        "SELECT node, covers::pg_catalog.text, received::pg_catalog.text, settled::pg_catalog.text, members, forgotten,
                heard_at IS NOT NULL
         FROM crdt.peers WHERE node OPERATOR(pg_catalog.<>) $1",
        None,
        &[node_uuid(own).into()],
    )?;
    for row in peers {
        let Some(node) = row
            .get::<pgrx::Uuid>(1)?
            .map(|node| NodeId::from_bytes(*node.as_bytes()))
        else {
            continue;
        };
        if row.get::<bool>(6)?.unwrap_or(false) {
            view.forgotten.insert(node);
            continue;
        }
        let hlc = |index| row.get::<String>(index).map(hlc_of);
        let members = row.get::<Vec<pgrx::Uuid>>(5)?.unwrap_or_default();
        let beat = Heartbeat {
            covers: hlc(2)?,
            received: hlc(3)?,
            settled: hlc(4)?,
            members: members
                .iter()
                .map(|member| NodeId::from_bytes(*member.as_bytes()))
                .collect(),
        };
        if row.get::<bool>(7)?.unwrap_or(false) {
            view.heard.insert(node, beat);
        }
    }
    view.subscriptions = client
        .select(
            "SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription
             WHERE subdbid OPERATOR(pg_catalog.=)
                   (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())",
            Some(1),
            &[],
        )?
        .first()
        .get_one::<i64>()?
        .and_then(|count| usize::try_from(count).ok())
        .unwrap_or(0);
    Ok(view)
}

/// Sends `beat` (the DELETE and INSERT replicate; a receiver records the INSERT) and records
/// it as this node's own, with the next candidate for `covers`: `now_ms` and the transactions
/// running now.
fn send(client: &mut SpiClient<'_>, own: NodeId, beat: &Heartbeat, now_ms: u64) -> Result<(), pgrx::spi::Error> {
    let members: Vec<pgrx::Uuid> = beat.members.iter().map(|member| node_uuid(*member)).collect();
    let hlcs = [beat.covers, beat.received, beat.settled].map(|hlc| hlc.to_string());
    client.update(
        "DELETE FROM crdt.heartbeats WHERE node OPERATOR(pg_catalog.=) $1",
        None,
        &[node_uuid(own).into()],
    )?;
    client.update(
        "INSERT INTO crdt.heartbeats (node, via, covers, received, settled, members, sent_at)
         VALUES ($1, $1, $2::pg_catalog.numeric, $3::pg_catalog.numeric, $4::pg_catalog.numeric, $5,
                 pg_catalog.now())",
        None,
        &[
            node_uuid(own).into(),
            hlcs[0].clone().into(),
            hlcs[1].clone().into(),
            hlcs[2].clone().into(),
            members.clone().into(),
        ],
    )?;
    client.update(
        "INSERT INTO crdt.peers AS p (node, covers, received, settled, members, heard_at, candidate_ms, candidate_xids)
         VALUES ($1, $2::pg_catalog.numeric, $3::pg_catalog.numeric, $4::pg_catalog.numeric, $5, pg_catalog.now(), $6,
                 (SELECT pg_catalog.array_agg(x) FROM pg_catalog.pg_snapshot_xip(pg_catalog.pg_current_snapshot()) x
                  WHERE x IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned()))
         ON CONFLICT (node) DO UPDATE
            SET covers = excluded.covers, received = excluded.received,
                settled = GREATEST(p.settled, excluded.settled), members = excluded.members,
                heard_at = excluded.heard_at, candidate_ms = excluded.candidate_ms,
                candidate_xids = excluded.candidate_xids",
        None,
        &[
            node_uuid(own).into(),
            hlcs[0].clone().into(),
            hlcs[1].clone().into(),
            hlcs[2].clone().into(),
            members.into(),
            (now_ms as i64).into(),
        ],
    )?;
    Ok(())
}
