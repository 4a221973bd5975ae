//! `crdt.doc`: a JSON record merged per property (docs/design.md, "Doc") — PATCH, PUT and `addTo`
//! counters inside a record, as HarperDB does them.
//!
//! The datum is the core's compact encoding; `->`/`->>` read one property in place. JSON
//! crosses the SQL boundary as text through PostgreSQL's own jsonb I/O ([`JsonbText`]).

use crdt_core::decimal::{Decimal, DecimalError};
use crdt_core::{Doc as DocState, DocError, DocView, StampKind};
use crdt_macros::SqlType;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, PgSqlErrorCode};

use crate::clock::{local_node_id, node_uuid, stamp_after};
use crate::error::{corrupt_datum, invalid_representation, out_of_range};
use crate::types::jsonb_text::JsonbText;

const TYPE_NAME: &str = "crdt.doc";

/// A JSON record whose properties merge one by one: the later write of a property wins,
/// `crdt.put` replaces the whole record, and `crdt.add` keeps additive counters.
#[derive(SqlType)]
#[sql_type(name = "doc", state = DocState, merge(by = crdt_core::doc::merge_encoded, function = merge_docs))]
pub struct Doc {
    encoded: Vec<u8>,
}

impl Doc {
    fn view(&self) -> Result<DocView<'_>, ErrorReport> {
        DocView::parse(&self.encoded).map_err(|err| corrupt_datum(TYPE_NAME, err))
    }
}

/// Maps a refused operation to its SQLSTATE: wrong kind of input `22023`, too large `22003`,
/// malformed JSON `22P02`.
fn refused(err: DocError) -> ErrorReport {
    match err {
        DocError::Overflow { .. } => out_of_range(format!("{TYPE_NAME}: {err}")),
        DocError::Text(_) => invalid_representation("jsonb", err),
        DocError::NotAnObject { .. } | DocError::NotANumber { .. } | DocError::InvalidKey { .. } => {
            invalid_parameter(err.to_string())
        }
    }
}

fn invalid_parameter(message: String) -> ErrorReport {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, "crdt")
}

/// A NULL where a value is required: changing a record by "nothing" is a mistake, not a no-op.
fn required<T>(value: Option<T>, what: &str) -> Result<T, ErrorReport> {
    value.ok_or_else(|| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
            "crdt",
        )
    })
}

/// The state to write on: a NULL document counts as an empty record, so
/// `crdt.patch(NULL, ...)` starts one.
fn state_or_empty(doc: Option<Doc>) -> Result<DocState, ErrorReport> {
    doc.map_or_else(|| Ok(DocState::new()), |doc| Doc::decode_stored(&doc.encoded))
}

/// Applies one stamped write: the stamp is newer than every stamp the record holds.
fn write_stamped(
    doc: Option<Doc>,
    write: impl FnOnce(&mut DocState, crdt_core::Stamp) -> Result<(), DocError>,
) -> Result<Doc, ErrorReport> {
    let mut state = state_or_empty(doc)?;
    let stamp = stamp_after(state.max_hlc())?;
    write(&mut state, stamp).map_err(refused)?;
    Ok(Doc::from_stored(state.encode()))
}

/// PATCH (RFC 7386 at the top level): each key given is set, stamped now; `null` removes it;
/// keys not given are untouched.
#[pg_extern(volatile, parallel_safe)]
fn patch(doc: Option<Doc>, changes: Option<JsonbText>) -> Result<Doc, ErrorReport> {
    let changes = required(changes, "the patch")?;
    write_stamped(doc, |state, stamp| state.patch(&changes.0, stamp))
}

/// PUT: replaces the whole record. Every property written before it, on any node, is gone
/// after merging; properties written after it survive.
#[pg_extern(volatile, parallel_safe)]
fn put(doc: Option<Doc>, record: Option<JsonbText>) -> Result<Doc, ErrorReport> {
    let record = required(record, "the record")?;
    write_stamped(doc, |state, stamp| state.put(&record.0, stamp))
}

/// Removes one property (a tombstone stamped now, so the removal replicates).
#[pg_extern(volatile, parallel_safe)]
fn remove(doc: Option<Doc>, key: Option<&str>) -> Result<Doc, ErrorReport> {
    let key = required(key, "the property name")?;
    write_stamped(doc, |state, stamp| state.remove(key, stamp))
}

/// `addTo`: adds `amount` to a numeric property in this node's slot; concurrent additions on
/// other nodes all count, and a later set of the property wins over additions it had not seen.
#[pg_extern(stable, parallel_safe)]
fn add(doc: Option<Doc>, key: Option<&str>, amount: Option<AnyNumeric>) -> Result<Doc, ErrorReport> {
    let key = required(key, "the property name")?;
    let amount = required(amount, "the amount")?;
    let amount: Decimal = amount.to_string().parse().map_err(|err| match err {
        DecimalError::OutOfRange => out_of_range(format!("{TYPE_NAME}: amount {amount} is out of range")),
        DecimalError::Invalid => invalid_parameter(format!("amount must be a finite number, got {amount}")),
    })?;
    let mut state = state_or_empty(doc)?;
    state.add(key, &amount, local_node_id()).map_err(refused)?;
    Ok(Doc::from_stored(state.encode()))
}

/// The record as a plain `jsonb` object (counters as their current values).
#[pg_extern(immutable, strict, parallel_safe)]
fn to_jsonb(doc: Doc) -> Result<JsonbText, ErrorReport> {
    Ok(JsonbText(doc.view()?.to_json()))
}

/// Cast `jsonb → doc`: every key of the object is set, stamped now (a `null` value removes).
#[pg_extern(volatile, strict, parallel_safe)]
fn doc_from_jsonb(record: JsonbText) -> Result<Doc, ErrorReport> {
    write_stamped(None, |state, stamp| state.patch(&record.0, stamp))
}

/// `doc -> key`: one property as `jsonb` (NULL if absent), read without decoding the record.
#[pg_operator(immutable, strict, parallel_safe)]
#[opname(->)]
fn doc_get(doc: Doc, key: &str) -> Result<Option<JsonbText>, ErrorReport> {
    Ok(doc.view()?.get(key).map(|json| JsonbText(json.into_owned())))
}

/// `doc ->> key`: one property as `text` (strings unescaped), read without decoding the record.
#[pg_operator(immutable, strict, parallel_safe)]
#[opname(->>)]
fn doc_get_text(doc: Doc, key: &str) -> Result<Option<String>, ErrorReport> {
    Ok(doc.view()?.get_text(key).map(|text| text.into_owned()))
}

/// For debugging: each property's stamp — when (wall-clock part of the HLC) and on which node
/// it was written — plus a row for the record's replace watermark (`key` NULL) if any.
#[pg_extern(immutable, strict, parallel_safe)]
// pgrx reads the result columns' names from this signature: it can't be a type alias.
#[allow(clippy::type_complexity)]
fn stamps(
    doc: Doc,
) -> Result<
    TableIterator<
        'static,
        (
            name!(key, Option<String>),
            name!(kind, String),
            name!(written_at, Option<TimestampWithTimeZone>),
            name!(hlc, i64),
            name!(node, pgrx::Uuid),
        ),
    >,
    ErrorReport,
> {
    let view = doc.view()?;
    let rows: Vec<_> = view
        .metadata()
        .map(|info| {
            let kind = match info.kind {
                StampKind::Replaced => "replaced",
                StampKind::Value => "value",
                StampKind::Counter => "counter",
                StampKind::Tombstone => "removed",
            };
            let millis = crdt_core::hlc_wall_ms(info.stamp.hlc) as f64;
            (
                info.key.map(str::to_owned),
                kind.to_owned(),
                to_timestamp(millis / 1000.0),
                info.stamp.hlc as i64,
                node_uuid(info.stamp.node),
            )
        })
        .collect();
    Ok(TableIterator::new(rows))
}

/// Unix seconds to `timestamptz` (PostgreSQL's `to_timestamp`); NULL for the zero stamp.
fn to_timestamp(seconds: f64) -> Option<TimestampWithTimeZone> {
    if seconds <= 0.0 {
        return None;
    }
    // SAFETY: float8_timestamptz takes a float8 datum and returns a timestamptz datum.
    unsafe { pgrx::direct_function_call::<TimestampWithTimeZone>(pg_sys::float8_timestamptz, &[seconds.into_datum()]) }
}

extension_sql!(
    r#"
CREATE CAST (jsonb AS doc) WITH FUNCTION doc_from_jsonb(jsonb) AS ASSIGNMENT;
CREATE CAST (doc AS jsonb) WITH FUNCTION to_jsonb(doc);
"#,
    name = "doc_casts",
    requires = ["doc_type", doc_from_jsonb, to_jsonb]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn json_of(sql: &str) -> String {
        Spi::get_one::<String>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn inventory_case_converges_in_both_orders() {
        Spi::run("SET crdt.node_id = 'aaaaaaaa-0000-4000-8000-000000000001'").unwrap();
        Spi::run("CREATE TEMP TABLE r (node text, d crdt.doc)").unwrap();
        Spi::run(r#"INSERT INTO r VALUES ('start', '{"name": "x", "inventoryCount": 5}'::jsonb)"#).unwrap();
        Spi::run(
            r#"INSERT INTO r SELECT 'a', crdt.add(crdt.patch(d, '{"name": "y"}'), 'inventoryCount', 5)
               FROM r WHERE node = 'start'"#,
        )
        .unwrap();
        Spi::run("SET crdt.node_id = 'bbbbbbbb-0000-4000-8000-000000000002'").unwrap();
        Spi::run("INSERT INTO r SELECT 'b', crdt.add(d, 'inventoryCount', -1) FROM r WHERE node = 'start'").unwrap();
        let ab = json_of("SELECT crdt.merge(a.d, b.d)::text FROM r a, r b WHERE a.node = 'a' AND b.node = 'b'");
        let ba = json_of("SELECT crdt.merge(b.d, a.d)::text FROM r a, r b WHERE a.node = 'a' AND b.node = 'b'");
        assert_eq!(ab, ba);
        assert!(
            ab.starts_with(r#"{"value": {"inventoryCount": 9, "name": "y"}"#),
            "{ab}"
        );
    }

    #[pg_test(error = "expected a JSON object, got an array")]
    fn patch_needs_an_object() {
        Spi::run("SELECT crdt.patch(NULL, '[1]')").unwrap();
    }
}
