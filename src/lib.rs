//! `crdt`: conflict-free replicated columns for PostgreSQL.
//!
//! This crate only binds SQL to the pure core in `crdt_core`; nothing about merging is decided
//! here. One module per SQL feature.

// pgrx's ErrorReport (208 bytes) is the error of every fallible function here, by design: it
// carries the SQLSTATE, message, detail and hint to PostgreSQL, and errors are the cold path.
#![allow(clippy::result_large_err)]

mod catalog_cache;
mod clock;
mod collection;
mod digest;
mod error;
mod gucs;
mod no_raise;
mod rate_limit;
mod stats;
mod status;
mod table;
mod types;

pgrx::pg_module_magic!();

/// Registers the `crdt.*` settings when the library is loaded.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    table::conflicts::init();
    rate_limit::init();
    catalog_cache::init();
    table::key_lock::init();
    stats::init();
}

/// Hooks `cargo pgrx test` needs: no extra setup, no extra server settings.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
