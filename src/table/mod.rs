//! CRDT tables: ordinary tables made mergeable by `crdt.enable`, and the triggers that stamp
//! their local writes, merge replicated ones and carry deletes as tombstones.
//!
//! Where each part lives:
//!
//! - `enable`: `crdt.enable` / `crdt.disable`, and the triggers they install.
//! - `shape`: a CRDT table as its triggers see it (cached per backend), and the statements
//!   they run on it.
//! - `row`: a row's values, deformed, compared and merged column by column; trigger plumbing.
//! - `stamp`: a local INSERT or UPDATE (`zz_crdt_stamp`).
//! - `merge`: a replicated INSERT or UPDATE (`zz_crdt_merge`), and `crdt.merge_row`.
//! - `deletes`: a local DELETE (`zz_crdt_delete`); replicated DELETEs skipped; TRUNCATE refused.
//! - `deletions`: `crdt.deletions`, the tombstones: its DDL, its columns, lookups, and writes as
//!   its owner.
//! - `tombstone`: a replicated tombstone applied (`zz_crdt_apply_deletion`).
//! - `key_probe`, `key_lock`, `index_probe`, `key_json`: how writers of one key never miss each
//!   other, without a lock per row (docs/deletes.md).
//! - `roles`: who the triggers' statements run as (docs/majors.md).
//! - `flags`: the three facts one trigger tells another.
//! - `conflicts`: the conflict journal, `crdt.conflicts` (docs/stats.md).
//!
//! Every merge decision is the core's (`RowClock`, `PnCounter`, the doc merge, `delete_wins`);
//! these modules move datums in and out. Everything reached from the triggers is
//! schema-qualified or catalog-driven: apply workers run with an empty `search_path`.

pub(crate) mod conflicts;
mod deletes;
mod deletions;
pub(crate) mod enable;
mod flags;
mod index_probe;
mod key_json;
pub(crate) mod key_lock;
mod key_probe;
mod merge;
mod roles;
mod row;
mod shape;
mod stamp;
mod tombstone;

/// Runs `work` (a DELETE of rows of a CRDT table that every node removes on its own, such as
/// `crdt.rate_limit_vacuum`'s expired windows) so that it records no tombstones.
pub(crate) fn without_tombstones<T>(work: impl FnOnce() -> T) -> T {
    flags::while_deleting_for_tombstone(work)
}
