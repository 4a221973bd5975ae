//! The shape of a CRDT table as its triggers see it: which columns merge how, where the clock
//! and the primary key are, and the statements the triggers run on it, prepared once per table
//! (and again after it, a type, a schema or an operator changes), not per row.

use std::ffi::CStr;
use std::rc::Rc;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal, quote_qualified_identifier, OwnedPreparedStatement};
use pgrx::{PgOid, PgTupleDesc};

use super::enable::CLOCK_COLUMN;
use super::index_probe::{self, KeyComparison};
use super::key_json::KeyJsonBuilder;
use crate::catalog_cache::CachedByOid;
use crate::error::{no_primary_key, spi_failed};
use crate::types::counter::Counter;
use crate::types::doc::Doc;
use crate::types::row_clock::RowClock;

/// How a column merges.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// A column of the primary key: the same in every copy of the row, never stamped
    /// (`crdt_core::ColumnRole::PrimaryKey`).
    Key,
    /// Last writer wins, by the column's stamp in the row clock.
    Register,
    /// `crdt.counter`: merged by its own merge, not stamped.
    Counter,
    /// `crdt.doc`: merged by its own merge, not stamped.
    Doc,
}

impl ColumnKind {
    /// Whether the column's type merges it (a counter or a doc), rather than its stamp.
    pub(crate) fn merges_itself(self) -> bool {
        matches!(self, ColumnKind::Counter | ColumnKind::Doc)
    }
}

pub(crate) struct Column {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) kind: ColumnKind,
    pub(crate) typlen: i16,
    pub(crate) byval: bool,
}

/// The columns of a CRDT table as the triggers see them.
pub(crate) struct TableShape {
    pub(crate) columns: Vec<Column>,
    pub(crate) clock_index: usize,
    /// Descriptor indexes of the primary key's columns, in the key's order (none if the key
    /// was dropped).
    pub(crate) key_indexes: Vec<usize>,
    /// The primary key's index, and how it compares each of its columns.
    pub(crate) key_index: pg_sys::Oid,
    pub(crate) key_comparisons: Vec<KeyComparison>,
    /// `schema.table`, quoted where needed: the table's name in `crdt.deletions`, the same on
    /// every node.
    pub(crate) qualified_name: String,
    /// Locks the row whose key is that of `$1` (a row of this table).
    pub(crate) lock_existing: OwnedPreparedStatement,
    /// Updates the row whose key is that of `$1` (a row of this table) with the values of `$1`.
    pub(crate) update_existing: OwnedPreparedStatement,
    /// Builds a row's key as `crdt.deletions` names it: a `jsonb` object of the key's columns,
    /// by name.
    pub(crate) key_json: KeyJsonBuilder,
    /// The row of this table whose key is the `jsonb` object `$1`, as a composite.
    pub(crate) row_of_key_json: OwnedPreparedStatement,
    /// Deletes the row at `$1` (a tid).
    pub(crate) delete_at: OwnedPreparedStatement,
    /// How each key column is read from the text of a JSON scalar, in the key's order; `None`
    /// for a column of a JSON, array or composite type, which is not.
    pub(crate) key_inputs: Vec<Option<KeyInput>>,
    /// Records the tombstones of the rows in the transition table `crdt_deleted_rows`, named
    /// `$1`, stamped `$2` (hlc, text) and `$3` (node). Run once per DELETE statement.
    pub(crate) record_deletions_sql: String,
}

/// A key column's input function, and the column's name in a key's `jsonb` object.
pub(crate) struct KeyInput {
    pub(crate) name: std::ffi::CString,
    pub(crate) function: pg_sys::Oid,
    pub(crate) io_param: pg_sys::Oid,
    pub(crate) typmod: i32,
}

/// The transition table of a DELETE statement that the delete trigger reads.
pub(crate) const DELETED_ROWS: &str = "crdt_deleted_rows";

thread_local! {
    static TABLE_SHAPES: CachedByOid<TableShape> = CachedByOid::new();
}

/// The shape of CRDT table `relation` (open), named (quoted and schema-qualified) by `name` when
/// it has to be read.
pub(crate) fn table_shape(
    relation: pg_sys::Relation,
    name: impl FnOnce() -> String,
) -> Result<Rc<TableShape>, ErrorReport> {
    // SAFETY: an open relation.
    let relid = unsafe { (*relation).rd_id };
    TABLE_SHAPES.with(|shapes| shapes.get_or_try(relid, || read_table_shape(name(), relation)))
}

/// `relation`'s name, schema-qualified and quoted.
pub(crate) fn relation_name(relation: pg_sys::Relation) -> String {
    // SAFETY: an open relation: its name and namespace are valid.
    unsafe {
        let namespace = pg_sys::get_namespace_name((*(*relation).rd_rel).relnamespace);
        let schema = if namespace.is_null() {
            ""
        } else {
            CStr::from_ptr(namespace).to_str().unwrap_or_default()
        };
        let name = CStr::from_ptr((*(*relation).rd_rel).relname.data.as_ptr())
            .to_str()
            .unwrap_or_default();
        quote_qualified_identifier(schema, name)
    }
}

fn read_table_shape(table: String, relation: pg_sys::Relation) -> Result<TableShape, ErrorReport> {
    // SAFETY: an open relation.
    let (rowtype, tupdesc) = unsafe {
        (
            (*(*relation).rd_rel).reltype,
            PgTupleDesc::from_pg_unchecked((*relation).rd_att),
        )
    };
    let (counter_oid, doc_oid, clock_oid) = (Counter::type_oid(), Doc::type_oid(), RowClock::type_oid());
    let mut columns = Vec::new();
    let mut clock_index = None;
    for (index, attribute) in tupdesc.iter().enumerate() {
        // Generated columns are recomputed on every node; they are not written, so not stamped.
        if attribute.attisdropped || attribute.attgenerated != 0 {
            continue;
        }
        // SAFETY: attname is a NUL-terminated NameData.
        let name = unsafe { CStr::from_ptr(attribute.attname.data.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        if name == CLOCK_COLUMN && attribute.atttypid == clock_oid {
            clock_index = Some(index);
            continue;
        }
        let kind = match attribute.atttypid {
            oid if oid == counter_oid => ColumnKind::Counter,
            oid if oid == doc_oid => ColumnKind::Doc,
            _ => ColumnKind::Register,
        };
        columns.push(Column {
            index,
            name,
            kind,
            typlen: attribute.attlen,
            byval: attribute.attbyval,
        });
    }
    let clock_index = clock_index.ok_or_else(|| {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("a CRDT table needs its {CLOCK_COLUMN} column of type crdt.row_clock"),
            "crdt",
        )
        .set_hint("Run SELECT crdt.enable('your_table') again.")
    })?;
    let Some((key_index, key, key_comparisons)) = primary_key(relation).filter(|(_, key, _)| !key.is_empty()) else {
        // Only possible if the key was dropped after crdt.enable.
        return Err(no_primary_key(&table));
    };
    let key_indexes: Vec<usize> = key
        .iter()
        .map(|column| usize::try_from(column.attnum - 1).unwrap_or(usize::MAX))
        .collect();
    for column in columns.iter_mut().filter(|column| key_indexes.contains(&column.index)) {
        if column.kind == ColumnKind::Register {
            column.kind = ColumnKind::Key;
        }
    }
    // Each key column is compared with its index's own equality operator, named with its
    // schema: nothing here depends on the search_path.
    let key_match_with = |row: &str| {
        key.iter()
            .map(|column| {
                format!(
                    "t.{name} OPERATOR({op}) ({row}).{name}",
                    name = column.name,
                    op = column.equality
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let row_of_key_json = format!("pg_catalog.jsonb_populate_record(NULL::{table}, $1)");
    // Each key column's name (unquoted), type, typmod and collation, in the key's order.
    let key_types: Vec<(String, pg_sys::Oid, i32, pg_sys::Oid)> = key
        .iter()
        .zip(&key_indexes)
        .filter_map(|(column, &index)| {
            let attribute = tupdesc.get(index)?;
            Some((
                column.raw_name.clone(),
                attribute.atttypid,
                attribute.atttypmod,
                attribute.attcollation,
            ))
        })
        .collect();
    let key_inputs = key_types
        .iter()
        .map(|(name, type_oid, typmod, _)| key_input(name, *type_oid, *typmod))
        .collect();
    // The key as a jsonb object of its columns, by name: the same on every node for one key,
    // and what jsonb_populate_record turns back into the key's values.
    let key_json_of = |row: &str| {
        format!(
            "pg_catalog.jsonb_build_object({})",
            key.iter()
                .map(|column| format!(
                    "{}::pg_catalog.text, ({row}).{}",
                    quote_literal(&column.raw_name),
                    column.name
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let assignments = columns
        .iter()
        .map(|column| quote_identifier(&column.name))
        .filter(|name| !key.iter().any(|k| &k.name == name))
        .chain(std::iter::once(CLOCK_COLUMN.to_owned()))
        .map(|name| format!("{name} = ($1).{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let row_argument = [PgOid::from(rowtype)];
    let json_argument = [PgOid::from(pg_sys::JSONBOID)];
    let prepare = |sql: String, arguments: &[PgOid]| {
        Spi::connect(|client| {
            client
                .prepare_mut(sql.as_str(), arguments)
                .map(|statement| statement.keep())
        })
        .map_err(spi_failed)
    };
    Ok(TableShape {
        columns,
        clock_index,
        key_indexes,
        key_index,
        key_comparisons,
        lock_existing: prepare(
            format!("SELECT true FROM {table} t WHERE {} FOR UPDATE", key_match_with("$1")),
            &row_argument,
        )?,
        update_existing: prepare(
            format!("UPDATE {table} t SET {assignments} WHERE {}", key_match_with("$1")),
            &row_argument,
        )?,
        key_json: KeyJsonBuilder::new(&key_types).ok_or_else(|| no_primary_key(&table))?,
        row_of_key_json: prepare(format!("SELECT {row_of_key_json}"), &json_argument)?,
        delete_at: prepare(
            format!("DELETE FROM {table} t WHERE t.ctid OPERATOR(pg_catalog.=) $1"),
            &[PgOid::from(pg_sys::TIDOID)],
        )?,
        key_inputs,
        // OFFSET 0 keeps the subquery: each key is built once, for the row and its hash.
        record_deletions_sql: format!(
            "INSERT INTO crdt.deletions (table_name, key, hlc, node, key_hash) \
             SELECT $1, k.key, $2::pg_catalog.numeric, $3, \
                    crdt.tombstone_key_hash($1, k.key) \
             FROM (SELECT {} AS key FROM {DELETED_ROWS} o OFFSET 0) k",
            key_json_of("o")
        ),
        qualified_name: table,
    })
}

/// How a key column of type `type_oid` is read from a JSON scalar's text, as
/// `jsonb_populate_record` reads it: with the type's input function, unless it is a JSON, array
/// or composite type (or a domain over one), which it reads otherwise.
fn key_input(name: &str, type_oid: pg_sys::Oid, typmod: i32) -> Option<KeyInput> {
    // SAFETY: a type that exists (a column's); lookups that raise nothing for it.
    unsafe {
        let base = pg_sys::getBaseType(type_oid);
        let simple = base != pg_sys::JSONOID
            && base != pg_sys::JSONBOID
            && pg_sys::get_element_type(base) == pg_sys::InvalidOid
            && pg_sys::get_typtype(base) as u8 != pg_sys::TYPTYPE_COMPOSITE;
        if !simple {
            return None;
        }
        let (mut function, mut io_param) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        pg_sys::getTypeInputInfo(type_oid, &mut function, &mut io_param);
        Some(KeyInput {
            name: std::ffi::CString::new(name).ok()?,
            function,
            io_param,
            typmod,
        })
    }
}

/// A primary key column: its name (quoted) and number, and the schema-qualified equality
/// operator of its index.
struct KeyColumn {
    name: String,
    /// The name as it is (unquoted): the key's field name in `crdt.deletions`.
    raw_name: String,
    attnum: i16,
    equality: String,
}

/// The primary key of `relation` (open): its index, its columns in the key's order, and how the
/// index compares each. Read from the relation and system caches, not by a query: this runs on
/// a session's first write to each CRDT table, where a catalog join cost about ten million
/// instructions to plan. `None` if the table has no primary key.
fn primary_key(relation: pg_sys::Relation) -> Option<(pg_sys::Oid, Vec<KeyColumn>, Vec<KeyComparison>)> {
    // SAFETY: an open relation; the key's index is opened (locked as any write to the table
    // locks it) and closed with the lock kept to the end of the transaction.
    unsafe {
        let key_index = index_probe::primary_key_index(relation)?;
        let index = pg_sys::index_open(key_index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let form = (*index).rd_index;
        let count = usize::try_from((*form).indnkeyatts).unwrap_or(0);
        let attnums = (*form).indkey.values.as_slice(count);
        let tupdesc = PgTupleDesc::from_pg_unchecked((*relation).rd_att);
        let columns = attnums
            .iter()
            .enumerate()
            .map(|(position, &attnum)| {
                let raw_name = usize::try_from(attnum - 1)
                    .ok()
                    .and_then(|index| tupdesc.get(index))
                    .map(|attribute| {
                        CStr::from_ptr(attribute.attname.data.as_ptr())
                            .to_string_lossy()
                            .into_owned()
                    })
                    .unwrap_or_default();
                let operator = pg_sys::get_opfamily_member(
                    *(*index).rd_opfamily.add(position),
                    *(*index).rd_opcintype.add(position),
                    *(*index).rd_opcintype.add(position),
                    pg_sys::BTEqualStrategyNumber as i16,
                );
                KeyColumn {
                    name: quote_identifier(&raw_name),
                    raw_name,
                    attnum,
                    equality: operator_name(operator),
                }
            })
            .collect();
        let comparisons = index_probe::key_comparisons(index, count);
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        Some((key_index, columns, comparisons))
    }
}

/// `schema.name` of operator `operator`, for `OPERATOR(...)`: the schema quoted as an
/// identifier, the name as it is (an operator's name is not an identifier).
fn operator_name(operator: pg_sys::Oid) -> String {
    // SAFETY: a syscache lookup, released after its fields are copied.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::OPEROID as i32,
            pg_sys::Datum::from(operator),
        );
        if tuple.is_null() {
            return String::new();
        }
        let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_operator>(tuple);
        let name = CStr::from_ptr((*form).oprname.data.as_ptr())
            .to_string_lossy()
            .into_owned();
        let schema = pg_sys::get_namespace_name((*form).oprnamespace);
        pg_sys::ReleaseSysCache(tuple);
        let schema = if schema.is_null() {
            String::new()
        } else {
            CStr::from_ptr(schema).to_string_lossy().into_owned()
        };
        format!("{}.{name}", quote_identifier(schema))
    }
}
