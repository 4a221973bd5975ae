//! Distributed rate limiting on CRDT counters (docs/rate_limit.md): `crdt.rate_limit`,
//! `crdt.rate_limit_peek`, `crdt.rate_limit_reset`, `crdt.rate_limit_vacuum` and the CRDT table
//! `crdt.rate_limits` they keep counts in. What a call may do is the core's
//! (`crdt_core::rate_limit`); this module reads and writes the counts.

mod counts;

use std::time::{SystemTime, UNIX_EPOCH};

use crdt_core::rate_limit::{admits, node_share, sliding_count, slot_limit, split_parts, window_of};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::clock::local_node_id;
use crate::error::spi_failed;
use counts::{Counts, Place, SLOTS};

/// `crdt.rate_limit_nodes`: how many nodes share a `split` limit; 0 derives it from the mesh.
static RATE_LIMIT_NODES: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Registers the settings; from `_PG_init`.
pub(crate) fn init() {
    GucRegistry::define_int_guc(
        c"crdt.rate_limit_nodes",
        c"How many nodes share a split rate limit (0: this node's subscriptions plus one, or the nodes it has heard from).",
        c"Each node admits max_count divided by it. Set it on every node two windows before a node joins, and two windows after one left.",
        &RATE_LIMIT_NODES,
        0,
        10_000,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// How a limit is shared between the nodes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every node counts every node's calls once replication has brought them.
    Shared,
    /// Each node admits at most its share of the limit: a hard bound without coordination.
    Split,
}

/// A call's arguments, checked.
struct Call<'a> {
    place: Place<'a>,
    max_count: u64,
    cost: u64,
    mode: Mode,
    per_ms: u64,
    elapsed_ms: u64,
}

fn invalid(message: String) -> ErrorReport {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "crdt")
}

fn call<'a>(key: &'a str, max_count: i64, per: Interval, cost: i64, mode: &str) -> Result<Call<'a>, ErrorReport> {
    let mode = match mode {
        "shared" => Mode::Shared,
        "split" => Mode::Split,
        other => {
            return Err(invalid(format!("unknown rate limit mode \"{other}\""))
                .set_hint("The modes are 'shared' (the default) and 'split'."))
        }
    };
    let max_count =
        u64::try_from(max_count).map_err(|_| invalid(format!("max_count must not be negative: {max_count}")))?;
    let cost = u64::try_from(cost).map_err(|_| invalid(format!("cost must not be negative: {cost}")))?;
    // Months have no fixed length: a window must have one, the same on every node.
    let per_ms = (per.months() == 0)
        .then(|| i128::from(per.days()) * 86_400_000 + i128::from(per.micros()) / 1000)
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|ms| *ms >= 1)
        .ok_or_else(|| {
            invalid("per must be a positive interval of fixed length, at least 1 ms".to_string())
                .set_detail("Months and years have no fixed length, so a window of them would differ between nodes.")
                .set_hint("Use seconds, minutes, hours or days, such as '1 minute'.")
        })?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let window = window_of(now_ms, per_ms);
    let at = |ms: u64| {
        // PostgreSQL's timestamps count microseconds from 2000-01-01.
        const EPOCH_2000_MS: i64 = 946_684_800_000;
        TimestampWithTimeZone::try_from((ms as i64 - EPOCH_2000_MS) * 1000)
            .map_err(|_| invalid("the window of this call starts out of the range of timestamptz".to_string()))
    };
    Ok(Call {
        place: Place {
            key,
            per,
            previous: at(window.start_ms.saturating_sub(per_ms))?,
            current: at(window.start_ms)?,
            node: local_node_id(),
        },
        max_count,
        cost,
        mode,
        per_ms,
        elapsed_ms: window.elapsed_ms,
    })
}

/// This session's slot, and the others in turn.
fn slots_from_mine() -> impl Iterator<Item = u64> {
    // SAFETY: MyProcPid is set for the whole life of a backend.
    let mine = (unsafe { pg_sys::MyProcPid } as u64) % SLOTS;
    (0..SLOTS).map(move |offset| (mine + offset) % SLOTS)
}

/// How many nodes share a `split` limit: `crdt.rate_limit_nodes`, or the mesh as this node
/// knows it (docs/rate_limit.md).
fn nodes(client: &SpiClient<'_>) -> Result<u64, pgrx::spi::Error> {
    match u64::try_from(RATE_LIMIT_NODES.get()) {
        Ok(set @ 1..) => Ok(set),
        _ => counts::mesh_size(client, local_node_id()),
    }
}

/// Decides the call and, if `count`, credits it; whether it is admitted.
fn decide(call: &Call<'_>, count: bool) -> Result<bool, ErrorReport> {
    Spi::connect_mut(|client| {
        let counts: Counts = counts::read(client, &call.place)?;
        let sliding = |previous, current| sliding_count(previous, current, call.elapsed_ms, call.per_ms);
        match call.mode {
            Mode::Shared => {
                if !admits(sliding(counts.all[0], counts.all[1]), call.cost, call.max_count) {
                    return Ok(false);
                }
                let slot = slots_from_mine().next().unwrap_or(0);
                Ok(!count || counts::credit(client, &call.place, slot, call.cost, None)?)
            }
            Mode::Split => {
                let share = node_share(call.max_count, nodes(client)?);
                let limit = |slot: u64| {
                    slot_limit(
                        share,
                        SLOTS,
                        slot,
                        counts.own[0][slot as usize],
                        call.elapsed_ms,
                        call.per_ms,
                    )
                };
                let rooms: Vec<(u64, u64)> = slots_from_mine()
                    .map(|slot| (slot, limit(slot).saturating_sub(counts.own[1][slot as usize])))
                    .collect();
                let Some(parts) = split_parts(&rooms, call.cost) else {
                    return Ok(false);
                };
                if !count {
                    return Ok(true);
                }
                // Each part is credited only if its slot stays within its limit, which the
                // row's lock makes exact; if others took the room meanwhile, what this call
                // took is given back and it is refused.
                let mut taken = Vec::new();
                for (slot, part) in parts {
                    if !counts::credit(client, &call.place, slot, part, Some(limit(slot)))? {
                        for (slot, part) in taken {
                            counts::give_back(client, &call.place, slot, part)?;
                        }
                        return Ok(false);
                    }
                    taken.push((slot, part));
                }
                Ok(true)
            }
        }
    })
    .map_err(spi_failed)
}

/// Counts `cost` against `key` and says whether the call is within `max_count` per `per` (a
/// sliding window over two fixed windows); a call refused counts nothing.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rate_limit(
    key: &str,
    max_count: i64,
    per: Interval,
    cost: default!(i64, 1),
    mode: default!(&str, "'shared'"),
) -> Result<bool, ErrorReport> {
    decide(&call(key, max_count, per, cost, mode)?, true)
}

/// Whether `crdt.rate_limit` with the same arguments would admit the call, counting nothing.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rate_limit_peek(
    key: &str,
    max_count: i64,
    per: Interval,
    cost: default!(i64, 1),
    mode: default!(&str, "'shared'"),
) -> Result<bool, ErrorReport> {
    decide(&call(key, max_count, per, cost, mode)?, false)
}

/// Removes the windows that no longer count (older than the previous one) on this node, without
/// tombstones: every node removes its own copies. The number of rows removed.
#[pg_extern(volatile, strict, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rate_limit_vacuum() -> Result<i64, ErrorReport> {
    crate::table::without_tombstones(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "DELETE FROM crdt.rate_limits
                     WHERE (window_start OPERATOR(pg_catalog.+) (per OPERATOR(pg_catalog.*) 2))
                           OPERATOR(pg_catalog.<=) pg_catalog.now()",
                    None,
                    &[],
                )
                .map(|removed| removed.len() as i64)
        })
    })
    .map_err(spi_failed)
}

extension_sql!(
    r#"-- Rate limiting (src/rate_limit/, docs/rate_limit.md): counts per key, window length, window,
-- node and slot. A CRDT table: publish it with the other CRDT tables and crdt.deletions. A
-- node writes only its own rows.
CREATE TABLE rate_limits (
    key text NOT NULL,
    per interval NOT NULL,
    window_start timestamptz NOT NULL,
    node uuid NOT NULL,
    slot smallint NOT NULL,
    count crdt.counter NOT NULL DEFAULT 0,
    PRIMARY KEY (key, per, window_start, node, slot)
);
COMMENT ON TABLE rate_limits IS 'Counts of crdt.rate_limit; publish it with the CRDT tables.';
REVOKE ALL ON rate_limits FROM PUBLIC;
GRANT SELECT ON rate_limits TO pg_monitor;
SELECT crdt.enable('crdt.rate_limits');

-- Expired windows go without tombstones: see crdt.rate_limit_vacuum.
CREATE FUNCTION rate_limit_reset(key text) RETURNS void
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM crdt.rate_limits r WHERE r.key OPERATOR(pg_catalog.=) rate_limit_reset.key;
END;
COMMENT ON FUNCTION rate_limit_reset(text) IS 'Forgets every count of a rate-limited key, on every node.';
REVOKE ALL ON FUNCTION rate_limit_reset(text) FROM PUBLIC;"#,
    name = "rate_limits",
    requires = [
        "deletions",
        "counter_casts",
        enable,
        table::stamp::stamp_local_write,
        table::merge::merge_replicated_row,
        table::deletes::record_local_deletes,
        table::deletes::skip_replicated_delete,
        table::deletes::refuse_truncate
    ]
);
