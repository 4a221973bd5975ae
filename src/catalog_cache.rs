//! Per-backend caches of catalog facts (type OIDs, the shape of CRDT tables), so the triggers
//! look nothing up per row.
//!
//! PostgreSQL's invalidation callbacks count every change to a relation, a type or a schema
//! (ALTER TABLE, DROP and CREATE EXTENSION, ALTER SCHEMA ... RENAME, ...), in this backend or
//! any other, and a cached fact remembers the count it was read at. A [`Cached`] value is read
//! again after any change. Facts per relation ([`CachedByOid`]) are read again after a change
//! of their own relation or of everything: a relation's invalidation is frequent on a busy
//! server (every VACUUM and ANALYZE sends one for its table), and reading a CRDT table's shape
//! again takes SPI queries.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use pgrx::pg_sys;

/// Hashes an OID with one multiplication: the maps here are looked up per row, and an OID
/// chosen by PostgreSQL is no attack surface for the default hasher's protection.
#[derive(Default)]
struct OidHasher(u64);

impl Hasher for OidHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u32(u32::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(value)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type OidMap<V> = HashMap<pg_sys::Oid, V, BuildHasherDefault<OidHasher>>;

thread_local! {
    /// Invalidations seen by this backend, all kinds.
    static EVENTS: Cell<u64> = const { Cell::new(0) };
    /// The event since which every fact must be read again (a type or a schema changed, or
    /// PostgreSQL invalidated every relation).
    static EVERYTHING_SINCE: Cell<u64> = const { Cell::new(0) };
    /// Per relation invalidated one by one, the event since which its facts must be read again.
    static RELATION_SINCE: RefCell<OidMap<u64>> = RefCell::new(OidMap::default());
}

/// Relations remembered one by one; past this many, one change of everything stands for them.
const RELATIONS_KEPT: usize = 1024;

/// Counts an invalidation; its event number.
fn next_event() -> u64 {
    let event = EVENTS.get().wrapping_add(1);
    EVENTS.set(event);
    event
}

fn everything_changed() {
    EVERYTHING_SINCE.set(next_event());
    RELATION_SINCE.with_borrow_mut(OidMap::clear);
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn relation_changed(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid {
        return everything_changed();
    }
    let event = next_event();
    let overflowed = RELATION_SINCE.with_borrow_mut(|since| {
        since.insert(relid, event);
        since.len() > RELATIONS_KEPT
    });
    if overflowed {
        everything_changed();
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn catalog_changed(_arg: pg_sys::Datum, _cache_id: std::ffi::c_int, _hash: u32) {
    everything_changed();
}

/// Registers the invalidation callbacks; once per backend, from `_PG_init`.
pub(crate) fn init() {
    // SAFETY: called once when the library is loaded; the callbacks only touch counters.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(relation_changed), pg_sys::Datum::from(0));
        // Types: DROP and CREATE EXTENSION give the extension's types new OIDs. Schemas and
        // operators: a table's shape holds its schema-qualified name and its key's equality
        // operators, named with their schemas.
        for cache in [
            pg_sys::SysCacheIdentifier::TYPEOID,
            pg_sys::SysCacheIdentifier::NAMESPACEOID,
            pg_sys::SysCacheIdentifier::OPEROID,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(
                cache as std::ffi::c_int,
                Some(catalog_changed),
                pg_sys::Datum::from(0),
            );
        }
    }
}

/// A value computed from the catalogs, kept until the next invalidation of any kind.
pub(crate) struct Cached<T: Copy>(Cell<Option<(u64, T)>>);

impl<T: Copy> Cached<T> {
    pub(crate) const fn new() -> Self {
        Cached(Cell::new(None))
    }

    /// The cached value, or `read()` (cached) when it was read before the last invalidation.
    pub(crate) fn get_or(&self, read: impl FnOnce() -> T) -> T {
        let now = EVENTS.get();
        match self.0.get() {
            Some((read_at, value)) if read_at == now => value,
            _ => {
                let value = read();
                self.0.set(Some((now, value)));
                value
            }
        }
    }
}

/// Facts per relation, kept until that relation (or everything) is invalidated.
pub(crate) struct CachedByOid<T>(RefCell<OidMap<(u64, Rc<T>)>>);

impl<T> CachedByOid<T> {
    pub(crate) fn new() -> Self {
        CachedByOid(RefCell::new(OidMap::default()))
    }

    /// Whether facts of `relid` read at event `read_at` still hold.
    fn still_valid(relid: pg_sys::Oid, read_at: u64) -> bool {
        read_at >= EVERYTHING_SINCE.get()
            && RELATION_SINCE.with_borrow(|since| since.get(&relid).is_none_or(|&changed| read_at >= changed))
    }

    /// The facts of relation `relid`, or `read()` (cached on success) when they were read
    /// before its last invalidation.
    pub(crate) fn get_or_try<E>(&self, relid: pg_sys::Oid, read: impl FnOnce() -> Result<T, E>) -> Result<Rc<T>, E> {
        if let Some((read_at, facts)) = self.0.borrow().get(&relid) {
            if Self::still_valid(relid, *read_at) {
                return Ok(Rc::clone(facts));
            }
        }
        // Counted before reading: an invalidation while `read` runs leaves these facts stale.
        let now = EVENTS.get();
        let facts = Rc::new(read()?);
        let mut map = self.0.borrow_mut();
        map.retain(|&other, (read_at, _)| Self::still_valid(other, *read_at));
        map.insert(relid, (now, Rc::clone(&facts)));
        Ok(facts)
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use std::cell::Cell;

    use pgrx::prelude::*;

    use super::CachedByOid;

    /// Caches the facts of `relid` in `cache`, counting the reads in `reads`.
    fn facts(cache: &CachedByOid<pg_sys::Oid>, reads: &Cell<u32>, relid: pg_sys::Oid) {
        let read = || {
            reads.set(reads.get() + 1);
            Ok::<_, ()>(relid)
        };
        assert_eq!(*cache.get_or_try(relid, read).unwrap(), relid);
    }

    /// Runs `sql`, then lets this backend see its own invalidations, as the next command would.
    fn run_and_see(sql: &str) {
        Spi::run(sql).unwrap();
        // SAFETY: inside a transaction.
        unsafe { pg_sys::CommandCounterIncrement() };
    }

    /// A change of one relation reads that relation's facts again and keeps the others'; a
    /// schema's change reads everything again.
    #[pg_test]
    fn a_relation_change_reads_only_its_own_facts_again() {
        Spi::run("CREATE TABLE cache_a (id int); CREATE TABLE cache_b (id int)").unwrap();
        let oid = |name: &str| {
            Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{name}'::regclass::oid"))
                .unwrap()
                .unwrap()
        };
        let (a, b) = (oid("cache_a"), oid("cache_b"));
        let (cache, reads) = (CachedByOid::new(), Cell::new(0));
        for relid in [a, b, a, b] {
            facts(&cache, &reads, relid);
        }
        assert_eq!(reads.get(), 2, "each read once");
        run_and_see("ALTER TABLE cache_b ADD COLUMN x int");
        for relid in [a, b, a, b] {
            facts(&cache, &reads, relid);
        }
        assert_eq!(reads.get(), 3, "cache_b read again, cache_a not");
        run_and_see("CREATE SCHEMA cache_schema; ALTER SCHEMA cache_schema RENAME TO cache_schema_renamed");
        for relid in [a, b] {
            facts(&cache, &reads, relid);
        }
        assert_eq!(reads.get(), 5, "both read again after a schema changed");
    }
}
