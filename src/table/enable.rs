//! `crdt.enable` / `crdt.disable`: making an ordinary table mergeable
//! (docs/design.md, "The triggers of a CRDT table").
//!
//! Enabling adds the `crdt_clock` column and five triggers: stamping and merging (BEFORE
//! INSERT OR UPDATE, per row), recording tombstones (AFTER DELETE, per statement), skipping
//! replicated deletes (BEFORE DELETE, the tombstone decides) and refusing TRUNCATE (which would
//! record none). All are named `zz_crdt_*` on purpose: PostgreSQL
//! fires triggers in name order, and stamping must see the row as the user's own BEFORE
//! triggers (`updated_at = now()` and the like) left it.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_qualified_identifier};
use pgrx::{PgRelation, PgSqlErrorCode};

use crate::error::{no_primary_key, spi_failed};

/// The column holding each row's stamps.
pub const CLOCK_COLUMN: &str = "crdt_clock";
/// A trigger `crdt.enable` installs.
struct TableTrigger {
    name: &'static str,
    /// `BEFORE INSERT OR UPDATE ... FOR EACH ROW`, ...
    fires: &'static str,
    /// The trigger function, schema-qualified.
    function: &'static str,
    /// `ENABLE REPLICA`: fires in apply workers (and `session_replication_role = replica`)
    /// instead of ordinary sessions.
    replica: bool,
    /// Needs the delete objects of 0.2.0 (`crdt.deletions` and the delete trigger functions).
    for_deletes: bool,
}

/// The triggers of a CRDT table, in the order `crdt.enable` installs them.
const TABLE_TRIGGERS: [TableTrigger; 5] = [
    // Stamps local writes.
    TableTrigger {
        name: "zz_crdt_stamp",
        fires: "BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW",
        function: "crdt.stamp_local_write()",
        replica: false,
        for_deletes: false,
    },
    // Merges replicated rows.
    TableTrigger {
        name: "zz_crdt_merge",
        fires: "BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW",
        function: "crdt.merge_replicated_row()",
        replica: true,
        for_deletes: false,
    },
    // Records the tombstones of each local DELETE statement's rows in `crdt.deletions`, in one
    // INSERT from the statement's transition table.
    TableTrigger {
        name: "zz_crdt_delete",
        fires: "AFTER DELETE ON {table} REFERENCING OLD TABLE AS crdt_deleted_rows FOR EACH STATEMENT",
        function: "crdt.record_local_deletes()",
        replica: false,
        for_deletes: true,
    },
    // Skips replicated deletes: the tombstone decides.
    TableTrigger {
        name: "zz_crdt_replicated_delete",
        fires: "BEFORE DELETE ON {table} FOR EACH ROW",
        function: "crdt.skip_replicated_delete()",
        replica: true,
        for_deletes: true,
    },
    // Refuses TRUNCATE, which would write no tombstones.
    TableTrigger {
        name: "zz_crdt_truncate",
        fires: "BEFORE TRUNCATE ON {table} FOR EACH STATEMENT",
        function: "crdt.refuse_truncate()",
        replica: false,
        for_deletes: true,
    },
];

pub(crate) struct TableFacts {
    /// `schema.table`, quoted where needed.
    pub(crate) qualified_name: String,
    relkind: String,
    owned_by_caller: bool,
    has_primary_key: bool,
    replica_identity: String,
}

pub(crate) fn table_facts(relid: pg_sys::Oid) -> Result<TableFacts, ErrorReport> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text,
                    pg_catalog.pg_has_role(c.relowner, 'USAGE'),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                            WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid
                              AND k.contype OPERATOR(pg_catalog.=) 'p'),
                    c.relreplident::text
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
             WHERE c.oid OPERATOR(pg_catalog.=) $1",
            Some(1),
            &[relid.into()],
        )?;
        let row = rows.first();
        let schema: String = row.get(1)?.unwrap_or_default();
        let name: String = row.get(2)?.unwrap_or_default();
        Ok::<_, pgrx::spi::Error>(TableFacts {
            qualified_name: quote_qualified_identifier(schema, name),
            relkind: row.get(3)?.unwrap_or_default(),
            owned_by_caller: row.get(4)?.unwrap_or(false),
            has_primary_key: row.get(5)?.unwrap_or(false),
            replica_identity: row.get(6)?.unwrap_or_default(),
        })
    })
    .map_err(spi_failed)
}

fn trigger_exists(relid: pg_sys::Oid, name: &str) -> Result<bool, ErrorReport> {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                        WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgname OPERATOR(pg_catalog.=) $2)",
        &[relid.into(), name.into()],
    )
    .map(|exists| exists.unwrap_or(false))
    .map_err(spi_failed)
}

fn run(sql: &str) -> Result<(), ErrorReport> {
    Spi::run(sql).map_err(spi_failed)
}

/// Checks what `enable` and `disable` require of any table: an ordinary table the caller owns.
fn checked_table(table: &PgRelation) -> Result<TableFacts, ErrorReport> {
    let facts = table_facts(table.oid())?;
    if facts.relkind != "r" {
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{} is not an ordinary table", facts.qualified_name),
            "crdt",
        ));
    }
    if !facts.owned_by_caller {
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {}", facts.qualified_name),
            "crdt",
        ));
    }
    Ok(facts)
}

/// Makes `table` mergeable: adds the `crdt_clock` column, the stamping trigger, the merge
/// trigger (`ENABLE REPLICA`), the two delete triggers and the TRUNCATE trigger, and stamps
/// existing rows as of now.
/// Calling it again is harmless (and adds what an older version did not install).
#[pg_extern(volatile, strict, parallel_unsafe)]
fn enable(table: PgRelation) -> Result<(), ErrorReport> {
    let facts = checked_table(&table)?;
    let name = &facts.qualified_name;
    if !facts.has_primary_key {
        return Err(no_primary_key(name));
    }
    if facts.replica_identity != "d" && facts.replica_identity != "i" {
        return Err(ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("table {name} must use REPLICA IDENTITY DEFAULT"),
            "crdt",
        )
        .set_detail(
            "With REPLICA IDENTITY FULL a replicated update only finds rows that are identical on \
             both nodes; after concurrent writes they are not, and PostgreSQL skips the update.",
        )
        .set_hint(format!("ALTER TABLE {name} REPLICA IDENTITY DEFAULT;")));
    }
    let relid = table.oid();
    drop(table);

    // NULL: no such column; '': ours already; anything else: someone else's column.
    let clock_type = Spi::get_one_with_args::<String>(
        "SELECT (SELECT CASE WHEN atttypid OPERATOR(pg_catalog.=) 'crdt.row_clock'::pg_catalog.regtype THEN ''
                             ELSE pg_catalog.format_type(atttypid, atttypmod) END
                 FROM pg_catalog.pg_attribute
                 WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attname OPERATOR(pg_catalog.=) $2
                   AND NOT attisdropped)",
        &[relid.into(), CLOCK_COLUMN.into()],
    )
    .map_err(spi_failed)?;
    match clock_type.as_deref() {
        None => run(&format!("ALTER TABLE {name} ADD COLUMN {CLOCK_COLUMN} crdt.row_clock"))?,
        Some("") => {}
        Some(other) => {
            return Err(ErrorReport::new(
                PgSqlErrorCode::ERRCODE_DUPLICATE_COLUMN,
                format!("table {name} already has a column {CLOCK_COLUMN} of type {other}"),
                "crdt",
            )
            .set_hint(format!(
                "crdt.enable adds {CLOCK_COLUMN} crdt.row_clock; rename the existing column."
            )))
        }
    }
    // The delete triggers (since 0.2.0; enabling a table again adds them to tables enabled
    // before) are not installed while the extension's SQL objects are still those of 0.1.0
    // (this library is loaded by every version): run enable again after ALTER EXTENSION crdt
    // UPDATE.
    let has_tombstones = Spi::get_one::<bool>(
        "SELECT pg_catalog.to_regclass('crdt.deletions') IS NOT NULL
            AND pg_catalog.to_regprocedure('crdt.record_local_deletes()') IS NOT NULL
            AND pg_catalog.to_regprocedure('crdt.skip_replicated_delete()') IS NOT NULL
            AND pg_catalog.to_regprocedure('crdt.refuse_truncate()') IS NOT NULL",
    )
    .map_err(spi_failed)?
    .unwrap_or(false);
    for trigger in &TABLE_TRIGGERS {
        if (trigger.for_deletes && !has_tombstones) || trigger_exists(relid, trigger.name)? {
            continue;
        }
        let TableTrigger {
            name: trigger_name,
            fires,
            function,
            ..
        } = trigger;
        let fires = fires.replace("{table}", name);
        run(&format!(
            "CREATE TRIGGER {trigger_name} {fires} EXECUTE FUNCTION {function}"
        ))?;
        if trigger.replica {
            run(&format!("ALTER TABLE {name} ENABLE REPLICA TRIGGER {trigger_name}"))?;
        }
    }
    // Rows that predate enable get every column but the key stamped now, by the stamping
    // trigger itself.
    run(&format!(
        "UPDATE {name} SET {CLOCK_COLUMN} = NULL WHERE {CLOCK_COLUMN} IS NULL"
    ))?;
    Ok(())
}

/// Makes `table` ordinary again: drops the triggers and the `crdt_clock` column. Values stay.
#[pg_extern(volatile, strict, parallel_unsafe)]
fn disable(table: PgRelation) -> Result<(), ErrorReport> {
    let facts = checked_table(&table)?;
    let name = &facts.qualified_name;
    drop(table);
    for trigger in TABLE_TRIGGERS.iter().map(|trigger| trigger.name) {
        run(&format!(
            "DROP TRIGGER IF EXISTS {} ON {name}",
            quote_identifier(trigger)
        ))?;
    }
    run(&format!("ALTER TABLE {name} DROP COLUMN IF EXISTS {CLOCK_COLUMN}"))
}

extension_sql!(
    "-- Types and functions of crdt are for every role; what a role may do to a table is still\n\
     -- decided by the table's own privileges (enable/disable require ownership).\n\
     GRANT USAGE ON SCHEMA crdt TO PUBLIC;",
    name = "schema_usage",
    finalize
);
