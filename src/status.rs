//! `crdt.status()`: one call that tells a DBA whether this node and its mesh are healthy — the
//! node and its clock, whether merges are counted, whether each CRDT table replicates, the
//! tombstones held and what holds their collection back, and each subscription and slot.

use crdt_core::Holding;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::clock::{local_node_id, node_uuid};
use crate::collection::holding_now;
use crate::error::spi_failed;

/// An HLC (bigint or numeric) as the `timestamptz` of its wall-clock part.
macro_rules! hlc_time {
    ($hlc:literal) => {
        concat!("to_timestamp((trunc((", $hlc, ")::numeric / 65536) / 1000)::float8)")
    };
}

/// The rows of `crdt.status()`, one query. Parameters: $1 this node, $2 the members of the
/// mesh it knows, $3 the members holding collection back (NULL: it has not heard from every
/// subscription), $4 the HLC collection has reached, $5 / $6 nodes heard from / subscriptions,
/// $7 / $8 whether merges are counted and how. Run with search_path = pg_catalog.
const STATUS: &str = concat!(
    "SELECT 'node', $1::text, true,
            format('clock %s; crdt %s', ",
    hlc_time!("crdt.clock_now()"),
    ",
                   (SELECT extversion FROM pg_extension WHERE extname = 'crdt'))
UNION ALL
SELECT 'stats', 'crdt.stats', $7, $8
UNION ALL
SELECT 'table', t.oid::regclass::text, count(p.pubname) > 0 OR rate_limits_unused,
       CASE WHEN count(p.pubname) > 0 THEN 'published in ' || string_agg(quote_ident(p.pubname), ', ' ORDER BY p.pubname)
            WHEN rate_limits_unused THEN 'in no publication, and unused: publish it before calling crdt.rate_limit'
            ELSE 'in no publication: its changes reach no other node' END
FROM (SELECT tgrelid AS oid FROM pg_trigger WHERE tgname = 'zz_crdt_merge'
      UNION SELECT 'crdt.deletions'::regclass UNION SELECT 'crdt.heartbeats'::regclass) t
JOIN pg_class c ON c.oid = t.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_publication_tables p ON p.schemaname = n.nspname AND p.tablename = c.relname
CROSS JOIN LATERAL (SELECT t.oid = 'crdt.rate_limits'::regclass AND NOT EXISTS (SELECT FROM crdt.rate_limits)
                    AS rate_limits_unused) u
GROUP BY t.oid, rate_limits_unused
UNION ALL
SELECT 'tombstones', count(*)::text, true,
       CASE WHEN count(*) = 0 THEN 'none held'
            ELSE format('oldest stamped %s', ",
    hlc_time!("min(hlc)"),
    ") END
FROM crdt.deletions
UNION ALL
SELECT 'collection', CASE WHEN $4 = 0 THEN 'not started' ELSE ",
    hlc_time!("$4"),
    "::text END, $3 IS NOT NULL AND $4 > 0,
       CASE WHEN $3 IS NULL
            THEN format('heard from %s of the %s nodes this node subscribes to: nothing is collected until '
                        'every node runs crdt.vacuum_tombstones()', $5, $6)
            ELSE 'held there by ' || (SELECT string_agg(CASE WHEN m = $1 THEN 'this node' ELSE m::text END, ', ')
                                      FROM unnest($3) m) END
UNION ALL
SELECT 'peer', m.node::text, coalesce(p.forgotten OR p.heard_at IS NOT NULL, false),
       CASE WHEN p.forgotten THEN 'forgotten (crdt.forget_node): not waited for'
            WHEN p.heard_at IS NULL THEN 'named by other nodes, not heard from: it holds collection back'
            ELSE format('last heartbeat %s ago; settled through %s%s', date_trunc('second', now() - p.heard_at),
                        ",
    hlc_time!("p.settled"),
    ",
                        CASE WHEN m.node = ANY ($3) THEN '; holds collection back' ELSE '' END) END
FROM (SELECT unnest($2) AS node UNION SELECT node FROM crdt.peers WHERE forgotten) m
LEFT JOIN crdt.peers p ON p.node = m.node
WHERE m.node <> $1
UNION ALL
SELECT 'subscription', s.subname::text, s.subenabled AND w.pid IS NOT NULL,
       CASE WHEN NOT s.subenabled THEN 'disabled'
            WHEN w.pid IS NULL THEN 'enabled, but no apply worker is running: see the server log'
            ELSE format('applying; last message from the publisher sent %s ago; received through %s',
                        date_trunc('milliseconds', now() - w.last_msg_send_time), w.received_lsn) END
FROM pg_subscription s
LEFT JOIN LATERAL (SELECT pid, last_msg_send_time, received_lsn FROM pg_stat_subscription w
                   WHERE w.subid = s.oid AND w.relid IS NULL
                   ORDER BY w.last_msg_receipt_time DESC NULLS LAST LIMIT 1) w ON true
WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
UNION ALL
SELECT 'slot', slot_name::text, active,
       format('%s; %s of WAL not yet confirmed by its subscriber',
              CASE WHEN active THEN 'active' ELSE 'inactive: its subscriber is not connected' END,
              pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)))
FROM pg_replication_slots
WHERE slot_type = 'logical' AND database = current_database()"
);

/// This node's health in rows of (item, name, ok, detail); see the README, "Day-2 operations".
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn status() -> Result<
    TableIterator<
        'static,
        (
            name!(item, String),
            name!(name, Option<String>),
            name!(ok, Option<bool>),
            name!(detail, Option<String>),
        ),
    >,
    ErrorReport,
> {
    let stats = match crate::stats::uncounted() {
        None => (false, "off: crdt is not in shared_preload_libraries".to_string()),
        Some(0) => (true, "counting".to_string()),
        Some(lost) => (
            false,
            format!(
                "counting, but {lost} transactions' counts found no free slot: \
                 SELECT crdt.stats_reset() frees those of dropped tables"
            ),
        ),
    };
    let rows = Spi::connect_mut(|client| {
        let (members, holding) = holding_now(client)?;
        let members: Vec<pgrx::Uuid> = members.into_iter().map(node_uuid).collect();
        let (holders, through, heard, subscriptions) = match holding {
            Holding::Unheard { heard, subscriptions } => (None, 0, heard, subscriptions),
            Holding::Members { through, nodes } => (
                Some(nodes.into_iter().map(node_uuid).collect::<Vec<_>>()),
                through,
                0,
                0,
            ),
        };
        let rows = client.select(
            STATUS,
            None,
            &[
                node_uuid(local_node_id()).into(),
                members.into(),
                holders.into(),
                // An HLC has 48 bits of milliseconds: a positive bigint.
                (through as i64).into(),
                (heard as i32).into(),
                (subscriptions as i32).into(),
                stats.0.into(),
                stats.1.into(),
            ],
        )?;
        rows.map(|row| {
            Ok((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .map_err(spi_failed)?;
    Ok(TableIterator::new(rows))
}

extension_sql!(
    r#"-- It reads crdt.deletions and crdt.peers as their owner: for superusers and monitoring roles.
REVOKE ALL ON FUNCTION status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION status() TO pg_monitor;"#,
    name = "status_grants",
    requires = [status]
);
