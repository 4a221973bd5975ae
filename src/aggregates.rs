//! Aggregates over CRDT columns.
//!
//! `crdt.merge_agg` (counters and docs) folds any number of replicas' states into one with the
//! type's own merge;
//! its combine function is that same merge, so it runs in parallel plans. `crdt.sum` adds
//! counters' values, exactly, in `numeric` (merged values may exceed bigint).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

use crate::types::counter::Counter;

/// State transition of `crdt.sum(counter)`: adds the counter's value; NULL counters are skipped,
/// so the sum of no rows (or of only NULLs) is NULL, as for PostgreSQL's own `sum`.
#[pg_extern(immutable, parallel_safe)]
fn counter_sum_step(total: Option<AnyNumeric>, counter: Option<Counter>) -> Result<Option<AnyNumeric>, ErrorReport> {
    let Some(counter) = counter else { return Ok(total) };
    let value = counter.view()?.value();
    Ok(Some(match total {
        Some(total) => total + value,
        None => AnyNumeric::from(value),
    }))
}

extension_sql!(
    r#"
CREATE AGGREGATE merge_agg(counter) (
    SFUNC = merge,
    STYPE = counter,
    COMBINEFUNC = merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE merge_agg(counter) IS 'Merges counter states from any number of replicas.';

CREATE AGGREGATE merge_agg(doc) (
    SFUNC = merge,
    STYPE = doc,
    COMBINEFUNC = merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE merge_agg(doc) IS 'Merges document states from any number of replicas.';

CREATE AGGREGATE sum(counter) (
    SFUNC = counter_sum_step,
    STYPE = numeric,
    COMBINEFUNC = pg_catalog.numeric_add,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE sum(counter) IS 'Sum of the counters'' values, as numeric.';
"#,
    name = "counter_aggregates",
    requires = [merge_counters, merge_docs, counter_sum_step]
);
