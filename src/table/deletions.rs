//! `crdt.deletions`, the tombstones of deleted rows (docs/deletes.md): where it is, reading the
//! tombstones of one key, and acting as its owner.
//!
//! Reads go straight to its primary key index (`key_hash, table_name, key, hlc, node`) with a
//! dirty probe (`index_probe`): a tombstone a running transaction is writing is waited for,
//! never missed, and no query is planned per row. `key_hash` comes first so that the index
//! compares integers, and text and `jsonb` only among tombstones of one key (or a collision).

use crdt_core::{NodeId, Stamp};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, FromDatum, IntoDatum};

use super::index_probe::{self, KeyComparison};
use super::roles;
use crate::catalog_cache::Cached;

/// Where `crdt.deletions` is, and who owns it.
#[derive(Clone, Copy)]
struct Deletions {
    relid: pg_sys::Oid,
    index: pg_sys::Oid,
    owner: pg_sys::Oid,
    /// How its index compares `key_hash`, `table_name` and `key`.
    comparisons: [KeyComparison; 3],
}

thread_local! {
    static DELETIONS: Cached<Option<Deletions>> = const { Cached::new() };
}

/// Attribute numbers of `hlc` and `node` in `crdt.deletions`.
const HLC_ATTRIBUTE: i32 = 3;
const NODE_ATTRIBUTE: i32 = 4;

/// `crdt.deletions`, or `None` while the extension's SQL objects are those of 0.1.0 (the library
/// of a newer version runs with them until `ALTER EXTENSION crdt UPDATE`).
fn deletions() -> Option<Deletions> {
    DELETIONS.with(|cached| {
        cached.get_or(|| {
            // From the caches, not by a query: this runs on a session's first write.
            // SAFETY: catalog lookups; the table is opened (a lock any probe of it takes too)
            // and closed, with the lock kept to the end of the transaction; so is its index.
            let (relid, owner, index, comparisons) = unsafe {
                let schema = pg_sys::get_namespace_oid(c"crdt".as_ptr(), true);
                let relid = pg_sys::get_relname_relid(c"deletions".as_ptr(), schema);
                if relid == pg_sys::InvalidOid {
                    return None;
                }
                let relation = pg_sys::try_relation_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
                if relation.is_null() {
                    return None;
                }
                let owner = (*(*relation).rd_rel).relowner;
                let index = index_probe::primary_key_index(relation);
                pg_sys::relation_close(relation, pg_sys::NoLock as pg_sys::LOCKMODE);
                let index = index?;
                let index_relation = pg_sys::index_open(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
                let comparisons = index_probe::key_comparisons(index_relation, 3);
                pg_sys::index_close(index_relation, pg_sys::NoLock as pg_sys::LOCKMODE);
                (relid, owner, index, comparisons)
            };
            Some(Deletions {
                relid,
                index,
                owner,
                comparisons: [comparisons[0], comparisons[1], comparisons[2]],
            })
        })
    })
}

/// The relation id of `crdt.deletions`, if it exists.
pub(crate) fn relation_id() -> Option<pg_sys::Oid> {
    deletions().map(|deletions| deletions.relid)
}

/// Runs `probe` on `crdt.deletions` and its index, open for reading.
fn with_deletions<T>(deletions: &Deletions, probe: impl FnOnce(pg_sys::Relation, pg_sys::Relation) -> T) -> T {
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    // SAFETY: both exist (read from the catalog, invalidated on change); closed below with their
    // locks kept to the end of the transaction.
    unsafe {
        let heap = pg_sys::table_open(deletions.relid, lock);
        let index = pg_sys::index_open(deletions.index, lock);
        let result = probe(heap, index);
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
        result
    }
}

/// `key_hash` of a tombstone of `key` (a `jsonb` datum) in the table named `name` (a `text`
/// datum), as the SQL function `crdt.tombstone_key_hash` (below) computes it:
/// `jsonb_hash_extended(key, hashtext(table_name COLLATE "C"))`.
pub(crate) fn key_hash(name: pg_sys::Datum, key: pg_sys::Datum) -> i64 {
    // SAFETY: a text and a jsonb datum, as the two built-in functions take; neither is NULL.
    unsafe {
        let name_hash =
            pg_sys::OidFunctionCall1Coll(pg_sys::Oid::from(pg_sys::F_HASHTEXT), pg_sys::C_COLLATION_OID, name);
        // The SQL casts hashtext's int4 to the int8 seed: sign-extended.
        let seed = i64::from(name_hash.value() as i32);
        pg_sys::OidFunctionCall2Coll(
            pg_sys::Oid::from(pg_sys::F_JSONB_HASH_EXTENDED),
            pg_sys::InvalidOid,
            key,
            pg_sys::Datum::from(seed),
        )
        .value() as i64
    }
}

/// The stamps of every tombstone of `key` (a `jsonb` datum, as in `crdt.deletions`) in `table`,
/// after every transaction still writing one has ended.
pub(crate) fn stamps_of_key(table: &str, key: pg_sys::Datum) -> Vec<Stamp> {
    match table.into_datum() {
        Some(name) => stamps_of_hashed_key(name, key, key_hash(name, key)),
        None => Vec::new(),
    }
}

/// [`stamps_of_key`] for a caller that holds the table's name as a `text` datum and has computed
/// the key's [`key_hash`] already.
pub(crate) fn stamps_of_hashed_key(name: pg_sys::Datum, key: pg_sys::Datum, key_hash: i64) -> Vec<Stamp> {
    let Some(deletions) = deletions() else {
        return Vec::new();
    };
    let hash = pg_sys::Datum::from(key_hash);
    // SAFETY: int8, text and jsonb datums for the index's first three columns; the slot holds
    // a tuple of crdt.deletions, whose hlc and node are NOT NULL.
    with_deletions(&deletions, |heap, index| unsafe {
        index_probe::committed_matches(heap, index, &deletions.comparisons, &[hash, name, key], |slot| {
            let mut is_null = false;
            let hlc = pg_sys::slot_getattr(slot, HLC_ATTRIBUTE, &mut is_null);
            let hlc = AnyNumeric::from_datum(hlc, is_null).and_then(|hlc| hlc.to_string().parse::<u64>().ok());
            let node = pg_sys::slot_getattr(slot, NODE_ATTRIBUTE, &mut is_null);
            let node = (!is_null).then(|| std::slice::from_raw_parts(node.cast_mut_ptr::<u8>(), 16));
            match (hlc, node.and_then(|node| <[u8; 16]>::try_from(node).ok())) {
                (Some(hlc), Some(node)) => Some(Stamp::new(hlc, NodeId::from_bytes(node))),
                _ => None,
            }
        })
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Runs `work` — writes of `crdt.deletions` — as the owner of `crdt.deletions`.
///
/// Why not a grant: whoever can insert into `crdt.deletions` can delete any row of any CRDT
/// table on every node the tombstone replicates to. So nobody but its owner has any privilege
/// on it, and the triggers — which run as whoever writes the CRDT table — switch to the owner
/// for exactly their own statements on it, the way PostgreSQL's foreign-key triggers switch to
/// the table owner ([`roles::as_role`]). No SQL-callable function gets the owner's rights.
///
/// `None` without running `work` if there is no `crdt.deletions`.
pub(crate) fn as_owner<T>(work: impl FnOnce() -> Result<T, ErrorReport>) -> Result<Option<T>, ErrorReport> {
    match deletions() {
        Some(deletions) => roles::as_role(deletions.owner, work).map(Some),
        None => Ok(None),
    }
}

/// Columns of `crdt.deletions`, in order.
pub(super) const DELETION_TABLE: usize = 0;
pub(super) const DELETION_KEY: usize = 1;
pub(super) const DELETION_HLC: usize = 2;
pub(super) const DELETION_NODE: usize = 3;
pub(super) const DELETION_KEY_HASH: usize = 4;

extension_sql!(
    r#"-- The hash that leads the key of crdt.deletions (src/table/deletions.rs computes it the same way).
CREATE FUNCTION tombstone_key_hash(table_name text, key jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.jsonb_hash_extended(key, pg_catalog.hashtext(table_name COLLATE pg_catalog."C"));
COMMENT ON FUNCTION tombstone_key_hash(text, jsonb) IS
    'The key_hash of a tombstone in crdt.deletions: a hash of its table_name and key.';
-- Tombstones: one row per delete of a row of a CRDT table (docs/design.md, "A DELETE").
-- A local DELETE writes one (trigger zz_crdt_delete); replicated, it decides whether the row
-- goes on the subscriber (trigger zz_crdt_apply_deletion below). Publications of CRDT tables
-- must include this table. Kept for good (no garbage collection yet).
CREATE TABLE deletions (
    -- the table, schema-qualified and quoted as quote_ident does: the same on every node
    table_name text NOT NULL,
    -- the primary key's columns, as a jsonb object by column name
    key jsonb NOT NULL,
    -- the delete's stamp: hybrid logical clock (an unsigned 64-bit number) and node
    hlc numeric(20, 0) NOT NULL CHECK (hlc >= 0 AND hlc <= 18446744073709551615),
    node uuid NOT NULL,
    -- a hash of table_name and key, the primary key's first column: looking a key up and adding
    -- a tombstone compare integers, and text and jsonb only on equal hashes
    key_hash bigint NOT NULL,
    CONSTRAINT deletions_key_hash_check CHECK (key_hash = tombstone_key_hash(table_name, key)),
    PRIMARY KEY (key_hash, table_name, key, hlc, node)
);
COMMENT ON TABLE deletions IS 'Tombstones of rows deleted from CRDT tables; publish it with them.';
-- Nobody but its owner has privileges on it: whoever can insert into it can delete rows of
-- every CRDT table on the nodes it replicates to. The triggers write it as its owner.
REVOKE ALL ON deletions FROM PUBLIC;
-- pg_dump keeps the tombstones.
SELECT pg_catalog.pg_extension_config_dump('deletions', '');
CREATE TRIGGER zz_crdt_apply_deletion BEFORE INSERT ON deletions
    FOR EACH ROW EXECUTE FUNCTION apply_replicated_deletion();
ALTER TABLE deletions ENABLE REPLICA TRIGGER zz_crdt_apply_deletion;"#,
    name = "deletions",
    requires = [table::tombstone::apply_replicated_deletion]
);
