//! A replicated INSERT or UPDATE (the merge trigger, `zz_crdt_merge`, `ENABLE REPLICA`: apply
//! workers), and `crdt.merge_row`, which merges a row from elsewhere the same way. The
//! replicated row is merged into the local one column by column, and the write is skipped when
//! nothing changes — which is what ends the echo of bidirectional replication on PostgreSQL 15.
//! A replicated INSERT of an existing key merges into that row; one of a key with a tombstone
//! the row had not seen is dropped.

use std::convert::Infallible;

use crdt_core::{tombstone_decides, ColumnChoice, Incarnation, Stamp};
use pgrx::datum::DatumWithOid;
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{AllocatedByPostgres, PgTupleDesc};

use super::conflicts::{self, Conflict, Decided};
use super::flags;
use super::key_lock::release_key_lock;
use super::key_probe::{find_key, KeyFound};
use super::row::{
    key_changed, merge_crdt_value, relation_id, relation_tupdesc, row_composite, trigger_tuple, MergedValue, RawDatum,
    Row, TriggerResult,
};
use super::shape::{relation_name, table_shape, Column, ColumnKind, TableShape};
use crate::clock::warn_if_far_ahead;
use crate::error::{raise, spi_failed};
use crate::stats::{self, Event};
use crate::types::row_clock::RowClock;

/// Merges a row from another node — e.g. fetched by a sync path other than logical
/// replication, as `jsonb` with its `crdt_clock` — into `table` exactly as the merge trigger of
/// an apply worker would: column by column, counters and docs by their merges, an existing key
/// merged rather than duplicated, nothing written if nothing changes.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn merge_row(table: pgrx::PgRelation, row: crate::types::jsonb_text::JsonbText) -> Result<(), ErrorReport> {
    let relid = table.oid();
    drop(table);
    let name = super::enable::table_facts(relid)?.qualified_name;
    flags::while_merging_remote_row(|| {
        Spi::run_with_args(
            &format!("INSERT INTO {name} SELECT * FROM pg_catalog.jsonb_populate_record(NULL::{name}, $1)"),
            &[row.into()],
        )
        .map_err(spi_failed)
    })
}

/// The merge trigger (`zz_crdt_merge`, `ENABLE REPLICA`).
#[pg_trigger]
fn merge_replicated_row<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible> {
    Ok(merge_replicated(trigger).unwrap_or_else(|report| raise(report)))
}

/// Merges a replicated INSERT or UPDATE into the local row (apply workers only).
pub(super) fn merge_replicated<'a>(trigger: &'a PgTrigger<'a>) -> TriggerResult<'a> {
    let data = trigger.trigger_data();
    let tupdesc = relation_tupdesc(trigger);
    let shape = table_shape(data.tg_relation, || relation_name(data.tg_relation))?;
    let relid = relation_id(trigger);
    if trigger.op().is_ok_and(|op| matches!(op, PgTriggerOperation::Insert)) {
        stats::count(relid, Event::RemoteRow, 1);
        // For INSERT, tg_trigtuple is the incoming row.
        return match merge_replicated_insert(trigger, &tupdesc, &shape, data.tg_trigtuple)? {
            ReplicatedInsert::Merged => {
                stats::count(relid, Event::InsertMerged, 1);
                Ok(None)
            }
            ReplicatedInsert::Deleted => {
                stats::count(relid, Event::InsertDroppedByTombstone, 1);
                Ok(None)
            }
            ReplicatedInsert::New => Ok(trigger_tuple(tupdesc, data.tg_trigtuple)),
        };
    }
    // The UPDATE a merged INSERT makes is counted as that INSERT.
    if !flags::merging_existing_row() {
        stats::count(relid, Event::RemoteRow, 1);
    }
    // SAFETY: for UPDATE, tg_trigtuple is the local row (OLD) and tg_newtuple the replicated one.
    let (local, remote) = unsafe {
        (
            Row::deform(data.tg_trigtuple, &tupdesc),
            Row::deform(data.tg_newtuple, &tupdesc),
        )
    };
    if key_changed(&shape, &local, &remote) {
        // Only a node that does not refuse key updates (not a CRDT table there, or an older
        // version) sends one. Applying it would move a row the other nodes keep: skipped, loudly.
        pgrx::warning!(
            "crdt: skipped a replicated change of the primary key of a row of {}: CRDT tables do not \
             change keys in place; delete the row and insert it with the new key instead",
            shape.qualified_name
        );
        return Ok(None);
    }
    match merge_rows(&shape, &local, &remote, relid)? {
        None => {
            stats::count(relid, Event::EchoSkipped, 1);
            Ok(None)
        }
        // The replicated row as it came (the common case of a row written on one node only):
        // no tuple to form.
        Some(merged) if merged.same_row(&remote, &shape) => Ok(trigger_tuple(tupdesc, data.tg_newtuple)),
        Some(mut merged) => {
            let tuple = merged.form(&tupdesc);
            Ok(trigger_tuple(tupdesc, tuple))
        }
    }
}

/// What became of a replicated INSERT.
pub(super) enum ReplicatedInsert {
    /// The key existed here: the row was merged into the existing one.
    Merged,
    /// The key was deleted here by a delete the row had not seen: it stays deleted.
    Deleted,
    /// A new row: insert it.
    New,
}

/// A replicated INSERT of a key that exists locally is merged into the existing row instead of
/// failing with a unique violation (which would stop the subscription for good). A key that
/// does not exist here but has a tombstone newer than the newest delete the row had seen stays
/// deleted: the INSERT is an echo of a row deleted since, or concurrent with the delete, and a
/// delete wins over every write its node had not seen (docs/design.md, "Deletes and re-inserts").
///
/// The key lock is taken and the index probed first (see [`find_key`]), so a
/// concurrent insert of the same key — a local one, or the same row arriving from another node
/// through another apply worker — has committed and is seen. The existing row is updated with
/// the incoming values through SQL, so the update takes the ordinary path: this same trigger
/// merges it as a replicated UPDATE.
pub(super) fn merge_replicated_insert(
    trigger: &PgTrigger<'_>,
    tupdesc: &PgTupleDesc<'_>,
    shape: &TableShape,
    incoming: pg_sys::HeapTuple,
) -> Result<ReplicatedInsert, ErrorReport> {
    // SAFETY: a valid tuple of this relation.
    let row = unsafe { Row::deform(incoming, tupdesc) };
    let relation = trigger.trigger_data().tg_relation;
    let relid = relation_id(trigger);
    let newest_tombstone = loop {
        if let KeyFound::Free(tombstone) = find_key(relation, relid, shape, &row, false) {
            break tombstone;
        }
        // SAFETY: a valid tuple of this relation.
        let (composite, rowtype) = unsafe { row_composite(trigger, tupdesc, incoming) };
        // SAFETY: `composite` is a datum of type `rowtype`, alive until the trigger returns.
        let argument = || unsafe { DatumWithOid::new(RawDatum(composite), rowtype) };
        // Locked first: the merge trigger may skip the UPDATE (nothing new), which then counts
        // no row, as a row deleted since would not either.
        let locked = Spi::connect_mut(|client| {
            let locked = !client.update(&shape.lock_existing, None, &[argument()])?.is_empty();
            if locked {
                flags::while_merging_existing_row(|| client.update(&shape.update_existing, None, &[argument()]))?;
            }
            Ok::<_, pgrx::spi::Error>(locked)
        })
        .map_err(spi_failed)?;
        if locked {
            return Ok(ReplicatedInsert::Merged);
        }
        // Deleted since it was found: look again.
    };
    // A new row: its clock decides whether a tombstone here wins over it.
    let clock = row.clock(shape)?;
    if let Some(clock) = &clock {
        warn_if_far_ahead(clock.max_hlc(), relid, || shape.qualified_name.clone());
    }
    if let Some(deleted) = newest_tombstone {
        // A row without a clock has seen no delete.
        // A tombstone every node has settled decides nothing any more: whatever arrives now was
        // written knowing the delete (crdt_core::stability).
        if clock.as_ref().is_none_or(|clock| clock.is_deleted_by(deleted))
            && tombstone_decides(deleted, crate::collection::settled_here()?)
        {
            release_key_lock();
            if conflicts::journaling() {
                if let Some(key) = row.key_values(shape).map(|values| shape.key_json.build(&values)) {
                    conflicts::record(&Conflict {
                        table: &shape.qualified_name,
                        key,
                        kind: "insert_deleted",
                        columns: Vec::new(),
                        local: Some(deleted),
                        remote: clock.as_ref().and_then(|clock| clock.row_stamp()),
                    });
                }
            }
            return Ok(ReplicatedInsert::Deleted);
        }
    }
    Ok(ReplicatedInsert::New)
}

/// The merge of a replicated row into the local one, or `None` if the local row already is it
/// (then nothing is written, no WAL, and the change is not echoed back).
pub(super) fn merge_rows(
    shape: &TableShape,
    local: &Row,
    remote: &Row,
    relid: pg_sys::Oid,
) -> Result<Option<Row>, ErrorReport> {
    let Some(remote_stamps) = remote.clock_bytes(shape) else {
        // A row without stamps was not written through crdt: nothing in it can be newer.
        return Ok(None);
    };
    // What was decided, column by column, for crdt.stats and the conflict journal.
    let mut decisions = Decisions::new();
    let mut merged = local.clone();
    let mut changed = false;
    let mut incarnation = Incarnation::Same;
    // Identical clocks (the remote change touched only counters or docs, or it is an echo):
    // one incarnation, no stamp moves, so every stamped column keeps its local value; nothing
    // to decode.
    if local.clock_bytes(shape) != Some(remote_stamps) {
        let mut local_clock = local.clock(shape)?.unwrap_or_default();
        let remote_clock = RowClock::decode_stored(remote_stamps)?;
        warn_if_far_ahead(remote_clock.max_hlc(), relid, || shape.qualified_name.clone());
        incarnation = local_clock.incarnation_against_settled(&remote_clock, crate::collection::settled_here)?;
        decisions.newest_stamps(&local_clock, &remote_clock);
        // Key columns are equal in both rows (the row was found by its key) and never stamped.
        let registers: Vec<&Column> = shape
            .columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Register)
            .collect();
        match incarnation {
            Incarnation::LocalNewer => {
                decisions.differing(&registers, local, remote, |_| Decided::Local);
                decisions.report(shape, local, relid, incarnation);
                return Ok(None);
            }
            // Changed whatever the merge gives: the older incarnation's clock is gone.
            Incarnation::RemoteNewer => {
                local_clock = crdt_core::RowClock::new();
                changed = true;
            }
            Incarnation::Same => {}
        }
        let named: Vec<(&str, u32)> = registers
            .iter()
            .map(|column| (column.name.as_str(), remote.fingerprint(column)))
            .collect();
        let mut clock = local_clock.clone();
        let choices = clock.merge_replicated(&remote_clock, &named);
        // A newer incarnation's row replaces the local one: every value as it came, also where
        // its clock has no stamp to adopt (a column it never wrote).
        let takes_remote =
            |index: usize| choices[index] == ColumnChoice::Remote || incarnation == Incarnation::RemoteNewer;
        decisions.differing(&registers, local, remote, |index| {
            if takes_remote(index) {
                Decided::Remote
            } else {
                Decided::Local
            }
        });
        for (index, column) in registers.iter().enumerate() {
            if takes_remote(index) {
                merged.take(remote, column);
            }
        }
        if clock != local_clock {
            merged.set_clock(shape, &clock);
            changed = true;
        }
    }
    for column in shape.columns.iter().filter(|c| c.kind.merges_itself()) {
        let value = match incarnation {
            Incarnation::RemoteNewer => MergedValue::Theirs,
            _ => merge_crdt_value(local, remote, column)?,
        };
        let decided = match value {
            MergedValue::Ours => None,
            MergedValue::Theirs => Some(Decided::Remote),
            MergedValue::New(_) => Some(Decided::Merged),
        };
        if merged.set_merged(remote, column, value) {
            changed = true;
            if let Some(decided) = decided {
                decisions.merged_value(column, decided);
            }
        }
    }
    decisions.report(shape, local, relid, incarnation);
    Ok(changed.then_some(merged))
}

/// The columns a merge decided, kept only while merges are counted or conflicts journaled.
struct Decisions<'a> {
    observed: bool,
    columns: Vec<(&'a Column, Decided)>,
    /// The newest stamp of each side, taken only for the journal; `None` while the two clocks
    /// are identical.
    stamps: Option<(Option<Stamp>, Option<Stamp>)>,
}

impl<'a> Decisions<'a> {
    fn new() -> Self {
        Decisions {
            observed: stats::counting() || conflicts::journaling(),
            columns: Vec::new(),
            stamps: None,
        }
    }

    /// Keeps the newest stamp of each clock, if conflicts are journaled.
    fn newest_stamps(&mut self, local: &crdt_core::RowClock, remote: &crdt_core::RowClock) {
        if conflicts::journaling() {
            self.stamps = Some((local.row_stamp(), remote.row_stamp()));
        }
    }

    /// Records, for each of `registers` whose values differ between the two rows, the side
    /// `decided` gives for its index.
    fn differing(&mut self, registers: &[&'a Column], local: &Row, remote: &Row, decided: impl Fn(usize) -> Decided) {
        if !self.observed {
            return;
        }
        for (index, column) in registers.iter().enumerate() {
            // An unchanged TOASTed value compares by its TOAST pointer, without being fetched.
            let same =
                (column.typlen == -1 && local.same_stored_varlena(remote, column)) || local.same_value(remote, column);
            if !same {
                self.columns.push((column, decided(index)));
            }
        }
    }

    /// Records a counter or doc the merge changed.
    fn merged_value(&mut self, column: &'a Column, decided: Decided) {
        if self.observed {
            self.columns.push((column, decided));
        }
    }

    /// Counts the decisions, and journals the merge if it took something from both sides or
    /// dropped one side's row (an older incarnation).
    fn report(self, shape: &TableShape, local: &Row, relid: pg_sys::Oid, incarnation: Incarnation) {
        if !self.observed {
            return;
        }
        for (column, decided) in &self.columns {
            let event = match (column.kind, decided) {
                (ColumnKind::Counter, _) => Event::CounterMerge,
                (ColumnKind::Doc, _) => Event::DocMerge,
                (_, Decided::Remote) => Event::RemoteWin,
                _ => Event::LocalWin,
            };
            stats::count(relid, event, 1);
        }
        let from = |side: fn(&Decided) -> bool| self.columns.iter().any(|(_, decided)| side(decided));
        let local_kept = from(|decided| matches!(decided, Decided::Local | Decided::Merged));
        let remote_taken = from(|decided| matches!(decided, Decided::Remote | Decided::Merged));
        let both_sides = local_kept && remote_taken;
        let row_dropped = incarnation != Incarnation::Same && !self.columns.is_empty();
        if !conflicts::journaling() || !(both_sides || row_dropped) {
            return;
        }
        let Some(key) = local.key_values(shape).map(|values| shape.key_json.build(&values)) else {
            return;
        };
        let (local_stamp, remote_stamp) = self.stamps.unwrap_or_else(|| {
            let stamp = local.clock(shape).ok().flatten().and_then(|clock| clock.row_stamp());
            (stamp, stamp)
        });
        conflicts::record(&Conflict {
            table: &shape.qualified_name,
            key,
            // The UPDATE a merged INSERT makes is that INSERT.
            kind: if flags::merging_existing_row() {
                "insert_exists"
            } else {
                "update_origin_differs"
            },
            columns: self
                .columns
                .iter()
                .map(|(column, decided)| (column.name.as_str(), *decided))
                .collect(),
            local: local_stamp,
            remote: remote_stamp,
        });
    }
}
