//! Per-backend caches of catalog facts (type OIDs, the shape of CRDT tables), so the triggers
//! look nothing up per row.
//!
//! Every cached fact carries the generation it was read in. PostgreSQL's invalidation
//! callbacks bump the generation whenever a relation or a type changes (ALTER TABLE, DROP and
//! CREATE EXTENSION, ...), in this backend or any other; a fact from an older generation is
//! read again. Relation invalidations are rare on the per-row path (plain DML sends none), so
//! starting over on any of them costs little and can't miss one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::pg_sys;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// The current generation: facts read in an older one must be read again.
pub(crate) fn generation() -> u64 {
    GENERATION.get()
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn relation_changed(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    GENERATION.set(GENERATION.get().wrapping_add(1));
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn type_changed(_arg: pg_sys::Datum, _cache_id: std::ffi::c_int, _hash: u32) {
    GENERATION.set(GENERATION.get().wrapping_add(1));
}

/// Registers the invalidation callbacks; once per backend, from `_PG_init`.
pub(crate) fn init() {
    // SAFETY: called once when the library is loaded; the callbacks only touch a counter.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(relation_changed), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::TYPEOID as std::ffi::c_int,
            Some(type_changed),
            pg_sys::Datum::from(0),
        );
    }
}

/// A value computed from the catalogs, kept until the next invalidation.
pub(crate) struct Cached<T: Copy>(Cell<Option<(u64, T)>>);

impl<T: Copy> Cached<T> {
    pub(crate) const fn new() -> Self {
        Cached(Cell::new(None))
    }

    /// The cached value, or `read()` (cached) when there is none from this generation.
    pub(crate) fn get_or(&self, read: impl FnOnce() -> T) -> T {
        let now = generation();
        match self.0.get() {
            Some((seen, value)) if seen == now => value,
            _ => {
                let value = read();
                self.0.set(Some((now, value)));
                value
            }
        }
    }
}

/// Facts per relation (or any object with an OID), kept until the next invalidation.
pub(crate) struct CachedByOid<T>(RefCell<HashMap<pg_sys::Oid, (u64, Rc<T>)>>);

impl<T> CachedByOid<T> {
    pub(crate) fn new() -> Self {
        CachedByOid(RefCell::new(HashMap::new()))
    }

    /// The facts of `oid`, or `read()` (cached on success) when there are none from this
    /// generation.
    pub(crate) fn get_or_try<E>(&self, oid: pg_sys::Oid, read: impl FnOnce() -> Result<T, E>) -> Result<Rc<T>, E> {
        let now = generation();
        if let Some((seen, facts)) = self.0.borrow().get(&oid) {
            if *seen == now {
                return Ok(Rc::clone(facts));
            }
        }
        let facts = Rc::new(read()?);
        let mut map = self.0.borrow_mut();
        map.retain(|_, (seen, _)| *seen == now);
        map.insert(oid, (now, Rc::clone(&facts)));
        Ok(facts)
    }
}
