//! Aggregates over CRDT states.
//!
//! `crdt.merge_agg` folds any number of replicas' states into one with the type's own merge;
//! the combine function is that same merge, so the aggregate runs in parallel plans.
//! (`sum(counter)` needs no aggregate of ours: a counter casts implicitly to its bigint value.)

use pgrx::prelude::*;

extension_sql!(
    r#"
CREATE AGGREGATE merge_agg(counter) (
    SFUNC = merge,
    STYPE = counter,
    COMBINEFUNC = merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE merge_agg(counter) IS 'Merges counter states from any number of replicas.';
"#,
    name = "counter_merge_agg",
    requires = [crate::types::counter::merge_counters]
);
