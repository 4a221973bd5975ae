//! The pure CRDT core of the `crdt` PostgreSQL extension (docs/design.md, "Clocks" and
//! "Merge rules").
//!
//! Everything that decides how replicas converge lives here, with no PostgreSQL dependency, so
//! it can be unit-tested, property-tested, fuzzed and benchmarked on its own; the extension
//! crate only converts datums and calls it.
//!
//! - [`node`]: node ids (UUIDs), derived deterministically per database.
//! - [`hlc`]: hybrid logical clocks and `(hlc, node)` stamps.
//! - [`codec`]: the byte-level conventions of every binary form (version byte, canonical
//!   varints, a bounds-checked reader).
//! - [`counter`]: the PN counter, owned and read in place, in binary and text forms.
//! - [`doc`]: the record of properties merged per property (`crdt.doc`), owned and read in
//!   place, in binary and text forms.
//! - [`decimal`]: exact decimals for the doc's counter properties.
//! - [`json`]: arbitrary JSON values as canonical text.
//! - [`text`]: the strict JSON reading behind every text form.
//! - [`rate_limit`]: windows, sliding counts and shares of distributed rate limiting.
//! - [`stability`]: when a tombstone may be collected (causal stability from heartbeats).
//! - [`stored`]: the binary and text forms every SQL type stores and shows.

#![warn(missing_docs)]

pub mod amount;
pub mod codec;
pub mod counter;
pub mod decimal;
pub mod doc;
#[doc(hidden)]
#[cfg(feature = "fuzz-checks")]
pub mod fuzz_checks;
pub mod hlc;
pub mod json;
pub mod local_write;
pub mod node;
pub mod rate_limit;
pub mod row_clock;
pub mod stability;
pub mod stored;
pub mod text;

pub use amount::{parse_amount, AmountError};
pub use codec::{DecodeError, Reader, FORMAT_VERSION};
pub use counter::{
    add_encoded, merge_encoded, AddEncodedError, CounterEntries, CounterEntry, CounterError, CounterView, PnCounter,
};
pub use decimal::{Decimal, DecimalError};
pub use doc::{CounterProperty, Doc, DocError, DocView, NodeSums, Property, StampInfo, StampKind};
pub use hlc::{ahead_of_wall_ms, hlc_from_parts, hlc_logical, hlc_wall_ms, ClockError, HybridClock, Stamp};
pub use local_write::{
    may_write_merged_column, merge_nullable, merges_written_doc, stamps_column, ColumnRole, NullableMerge, WritePolicy,
};
pub use node::{NodeId, NodeIdParseError, NODE_ID_NAMESPACE};
pub use row_clock::{delete_wins, value_fingerprint, ColumnChoice, ColumnStamp, Incarnation, RowClock, SEEN_DELETE};
pub use stability::{
    collectable_through, holding_collection, next_covers, tombstone_decides, unsettled_seen_delete, Heartbeat, Holding,
    MeshView,
};
pub use stored::StoredForm;
pub use text::TextError;
