//! Upgrades: for every released version whose install script is kept in `sql/crdt--<old>.sql`,
//! `CREATE EXTENSION crdt VERSION '<old>'`, data written with it, `ALTER EXTENSION crdt UPDATE`,
//! and then:
//! - the extension's objects are exactly those of a fresh `CREATE EXTENSION crdt` (every member,
//!   every function attribute and C symbol, types, operators, casts, aggregates, grants,
//!   comments: `sql/extension_objects.sql`); a difference names the objects, so whoever changed
//!   the SQL surface knows what to add to `sql/crdt--<old>--<new>.sql`;
//! - data written before the upgrade reads the same after it (values, text forms, stamps, row
//!   clocks), merges with values written after it, and the triggers `crdt.enable` installed
//!   before the upgrade still stamp local writes and merge replicated rows;
//! - a fresh install of the new version reads the old rows identically and converges with the
//!   upgraded database on concurrent writes;
//! - updating again is a no-op.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crdt_replication_tests::*;

const EXTENSION_OBJECTS: &str = include_str!("../sql/extension_objects.sql");

const FRESH: &str = "fresh";

const NODE_C: &str = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";
const NODE_D: &str = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";

/// Written with the old version (only what 0.1.0 already had): a CRDT table with plain,
/// counter and doc columns — a row that predates `crdt.enable`, rows inserted after it,
/// counters credited on two nodes, docs written with patch, put, add and remove — and a plain
/// table holding standalone values of every type.
const OLD_DATA: &str = r#"
SET crdt.node_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
CREATE TABLE product (id int PRIMARY KEY, name text, price numeric,
                      inventory crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
INSERT INTO product VALUES (1, 'widget', 9.50, 5, crdt.patch(NULL, '{"color": "red", "size": 3}'));
SELECT crdt.enable('product');
INSERT INTO product (id, name, price, attrs)
VALUES (2, 'gadget', 1, crdt.put(NULL, '{"color": "blue", "tags": ["a", "b"]}')),
       (3, 'gizmo', NULL, NULL);
UPDATE product SET inventory = inventory OPERATOR(crdt.+) 5, attrs = crdt.add(attrs, 'sold', 2)
WHERE id = 1;
SET crdt.node_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
UPDATE product SET inventory = inventory OPERATOR(crdt.-) 1,
                   attrs = crdt.remove(crdt.add(attrs, 'sold', 1), 'size')
WHERE id = 1;
UPDATE product SET name = 'gadget v2', inventory = 7 WHERE id = 2;

CREATE TABLE vals (k text PRIMARY KEY, c crdt.counter, d crdt.doc, rc crdt.row_clock);
INSERT INTO vals SELECT 'product ' || id, inventory, attrs, crdt_clock FROM product;
INSERT INTO vals VALUES
    ('merged', crdt.merge((SELECT inventory FROM product WHERE id = 1), 3::crdt.counter),
     crdt.merge(crdt.put(NULL, '{"a": 1, "b": 2}'), crdt.patch(NULL, '{"b": null, "c": 1.50}')),
     NULL),
    ('cast', 10::bigint, '{"x": "ü", "n": 12345678901234567890}'::jsonb, NULL),
    ('aggregated', (SELECT crdt.merge_agg(inventory) FROM product),
     (SELECT crdt.merge_agg(attrs) FROM product), NULL);
"#;

/// What must read the same before and after the upgrade, and (`ROWS`) on a fresh install that
/// received the rows.
const ROWS: &str = "SELECT id, name, price, inventory::text, attrs::text, crdt_clock::text \
                    FROM product ORDER BY id";
const READS: &[&str] = &[
    ROWS,
    "SELECT id, inventory::bigint, crdt.value(inventory), attrs::jsonb, crdt.to_jsonb(attrs),
            attrs OPERATOR(crdt.->) 'color', attrs OPERATOR(crdt.->>) 'color',
            inventory OPERATOR(crdt.=) 9::bigint, 9::bigint OPERATOR(crdt.<) inventory
     FROM product ORDER BY id",
    "SELECT p.id, s.key, s.kind, s.written_at, s.hlc, s.node
     FROM product p, crdt.stamps(p.attrs) s ORDER BY 1, 2 NULLS FIRST, 3",
    "SELECT k, c::text, d::text, rc::text, d::jsonb FROM vals ORDER BY k",
    "SELECT crdt.merge_agg(inventory)::text, crdt.sum(inventory), crdt.merge_agg(attrs)::text
     FROM product",
    "SELECT tgname, tgenabled, tgfoid::regprocedure FROM pg_trigger
     WHERE tgrelid = 'product'::regclass AND NOT tgisinternal ORDER BY tgname",
];

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The version `cargo pgrx install` builds: the root crate's `[package] version`.
fn current_version() -> String {
    let manifest = fs::read_to_string(repository_root().join("Cargo.toml")).expect("root Cargo.toml");
    let package = manifest.split("[package]").nth(1).expect("[package] in Cargo.toml");
    package
        .lines()
        .find_map(|line| line.trim().strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("version in [package] of Cargo.toml")
        .to_string()
}

/// The released versions: every `sql/crdt--<version>.sql` other than the current version's.
fn released_versions(current: &str) -> Vec<String> {
    let mut versions: Vec<String> = fs::read_dir(repository_root().join("sql"))
        .expect("sql/")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let version = name.strip_prefix("crdt--")?.strip_suffix(".sql")?.to_string();
            (!version.contains("--") && version != current).then_some(version)
        })
        .collect();
    versions.sort();
    versions
}

fn extension_dir() -> PathBuf {
    let output = std::process::Command::new(pg_bin().join("pg_config"))
        .arg("--sharedir")
        .output()
        .expect("pg_config --sharedir");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("extension")
}

/// The scripts PostgreSQL will run are the repository's: the old install scripts (copied by
/// `scripts/lib.sh`'s `install_extension`) and the upgrade scripts (copied by `cargo pgrx
/// install`, with `@CARGO_VERSION@` replaced), and the installed control file is this version's.
fn assert_installed_scripts_are_the_repositorys(current: &str, released: &[String]) {
    let how = "install with `source scripts/lib.sh && install_extension debug` (or `cargo pgrx \
               install` and copy the old install scripts, sql/crdt--<old>.sql, into the \
               extension directory)";
    let installed = extension_dir();
    let control = fs::read_to_string(installed.join("crdt.control")).unwrap_or_default();
    assert!(
        control.contains(&format!("default_version = '{current}'")),
        "the installed crdt.control in {} is not version {current}: {how}",
        installed.display()
    );
    for entry in fs::read_dir(repository_root().join("sql")).expect("sql/").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(version) = name.strip_prefix("crdt--").and_then(|v| v.strip_suffix(".sql")) else {
            continue;
        };
        if version == current {
            continue;
        }
        let ours = fs::read_to_string(entry.path())
            .expect("read sql script")
            .replace("@CARGO_VERSION@", current);
        let theirs = fs::read_to_string(installed.join(&name)).unwrap_or_default();
        assert!(
            ours == theirs,
            "{} is missing or differs from sql/{name}: {how}",
            installed.join(&name).display()
        );
    }
    for version in released {
        assert!(
            repository_root()
                .join(format!("sql/crdt--{version}--{current}.sql"))
                .exists()
                || released.iter().any(|other| {
                    repository_root()
                        .join(format!("sql/crdt--{version}--{other}.sql"))
                        .exists()
                }),
            "no upgrade script from {version}: add sql/crdt--{version}--{current}.sql"
        );
    }
}

/// The extension's objects in `db` as (object, definition) pairs (`sql/extension_objects.sql`).
fn extension_objects(node: &Cluster, db: &str) -> BTreeMap<String, String> {
    let mut objects = BTreeMap::new();
    for row in node.query_rows(db, EXTENSION_OBJECTS) {
        let [object, definition] = <[String; 2]>::try_from(row).expect("two columns");
        let entry: &mut String = objects.entry(object).or_default();
        if !entry.is_empty() {
            entry.push_str("\n    ");
        }
        entry.push_str(&definition);
    }
    objects
}

/// The objects that differ between `upgraded` (named `label` in the report) and `fresh`,
/// readable; empty when they agree.
fn object_differences(upgraded: &BTreeMap<String, String>, label: &str, fresh: &BTreeMap<String, String>) -> String {
    let mut missing = String::new();
    let mut left_over = String::new();
    let mut changed = String::new();
    for (object, definition) in fresh {
        match upgraded.get(object) {
            None => missing.push_str(&format!("  {object}\n    {definition}\n")),
            Some(other) if other != definition => changed.push_str(&format!(
                "  {object}\n    {:<width$} {definition}\n    {:<width$} {other}\n",
                "fresh:",
                format!("{label}:"),
                width = label.len().max("fresh".len()) + 1,
            )),
            Some(_) => {}
        }
    }
    for (object, definition) in upgraded {
        if !fresh.contains_key(object) {
            left_over.push_str(&format!("  {object}\n    {definition}\n"));
        }
    }
    let mut report = String::new();
    for (title, list) in [
        ("only in a fresh install (create them in the upgrade script)", missing),
        (
            "only in the upgraded install (drop them in the upgrade script)",
            left_over,
        ),
        ("different (alter or replace them in the upgrade script)", changed),
    ] {
        if !list.is_empty() {
            report.push_str(&format!("{title}:\n{list}"));
        }
    }
    report
}

fn reads(node: &Cluster, db: &str) -> Vec<String> {
    READS.iter().map(|query| table_snapshot(node, db, query)).collect()
}

/// A column's stamp in a row clock: (hlc, node id).
fn column_stamp(node: &Cluster, db: &str, id: i32, column: &str) -> (u64, String) {
    let stamp = node.query_value(
        db,
        &format!(
            "SELECT (crdt_clock::text::jsonb -> 'stamps' -> '{column}' ->> 0) || ' ' || \
                    (crdt_clock::text::jsonb -> 'stamps' -> '{column}' ->> 1) \
             FROM product WHERE id = {id}"
        ),
    );
    let (hlc, node_id) = stamp
        .split_once(' ')
        .unwrap_or_else(|| panic!("no stamp of {column}: {stamp:?}"));
    (hlc.parse().expect("hlc"), node_id.to_string())
}

fn row_json(node: &Cluster, db: &str, id: i32) -> String {
    node.query_value(db, &format!("SELECT to_jsonb(p)::text FROM product p WHERE id = {id}"))
}

fn dollar_quoted(text: &str) -> String {
    assert!(!text.contains("$row$"));
    format!("$row${text}$row$")
}

/// Merges a row (as `to_jsonb`) into `product` the way an apply worker does: an INSERT under
/// `session_replication_role = replica`, so the `ENABLE REPLICA` merge trigger takes it.
fn apply_as_replica(node: &Cluster, db: &str, row: &str) {
    node.sql(
        db,
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO product SELECT * FROM jsonb_populate_record(NULL::product, {}::jsonb);",
            dollar_quoted(row)
        ),
    );
}

/// Merges a row (as `to_jsonb`) into `product` with `crdt.merge_row`.
fn merge_row(node: &Cluster, db: &str, row: &str) {
    node.sql(
        db,
        &format!("SELECT crdt.merge_row('product', {}::jsonb)", dollar_quoted(row)),
    );
}

#[test]
fn upgrade_from_every_released_version_equals_a_fresh_install() {
    let current = current_version();
    let released = released_versions(&current);
    assert!(
        !released.is_empty(),
        "no released install script sql/crdt--<version>.sql"
    );
    assert_installed_scripts_are_the_repositorys(&current, &released);

    let node = Cluster::start("upgrade");
    node.create_database(FRESH);
    node.sql(FRESH, "CREATE EXTENSION crdt");
    assert_eq!(
        node.query_value(FRESH, "SELECT extversion FROM pg_extension WHERE extname = 'crdt'"),
        current
    );
    let fresh_objects = extension_objects(&node, FRESH);
    node.sql(
        FRESH,
        "CREATE TABLE product (id int PRIMARY KEY, name text, price numeric,
                               inventory crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
         SELECT crdt.enable('product');",
    );

    for old in &released {
        let db = format!("from_{}", old.replace(['.', '-'], "_"));
        eprintln!("upgrade {old} -> {current} in database {db}");
        node.create_database(&db);
        if let Err(error) = node.try_sql(&db, &format!("CREATE EXTENSION crdt VERSION '{old}'")) {
            panic!(
                "CREATE EXTENSION crdt VERSION '{old}' fails with the current crdt.so. If a C \
                 symbol is missing, the library no longer exports a function the {old} install \
                 script names (AS 'MODULE_PATHNAME', '<symbol>'): keep exporting it.\n{error}"
            );
        }
        let path = node.query_value(
            &db,
            &format!(
                "SELECT path FROM pg_extension_update_paths('crdt') \
                 WHERE source = '{old}' AND target = '{current}'"
            ),
        );
        assert!(
            !path.is_empty(),
            "PostgreSQL finds no update path from {old} to {current}"
        );
        node.sql(&db, OLD_DATA);
        let before = reads(&node, &db);
        let differences_before = object_differences(&extension_objects(&node, &db), old, &fresh_objects);
        eprintln!(
            "{old} against a fresh {current}, before the upgrade (what the upgrade script is for):\n{}",
            if differences_before.is_empty() {
                "no differences\n"
            } else {
                &differences_before
            }
        );

        node.sql(&db, "ALTER EXTENSION crdt UPDATE");
        assert_eq!(
            node.query_value(&db, "SELECT extversion FROM pg_extension WHERE extname = 'crdt'"),
            current
        );
        let upgraded_objects = extension_objects(&node, &db);
        let differences = object_differences(&upgraded_objects, "upgraded", &fresh_objects);
        assert!(
            differences.is_empty(),
            "after ALTER EXTENSION crdt UPDATE from {old}, the extension differs from a fresh \
             install of {current}; sql/crdt--{old}--{current}.sql must make up for every change \
             to the SQL surface (then reinstall and run this test again):\n{differences}"
        );

        // Updating again, with or without the target, is a no-op.
        node.sql(&db, "ALTER EXTENSION crdt UPDATE");
        node.sql(&db, &format!("ALTER EXTENSION crdt UPDATE TO '{current}'"));
        assert_eq!(
            node.query_value(&db, "SELECT extversion FROM pg_extension WHERE extname = 'crdt'"),
            current
        );
        assert_eq!(
            extension_objects(&node, &db),
            upgraded_objects,
            "a second UPDATE changed objects"
        );

        // Everything written before reads the same.
        let after = reads(&node, &db);
        for ((query, before), after) in READS.iter().zip(&before).zip(&after) {
            assert_eq!(
                before, after,
                "`{query}` reads differently after the upgrade from {old}"
            );
        }
        check_upgraded_database(&node, &db);
        check_fresh_install_converges_with_upgraded(&node, &db);
    }
    assert_no_errors_in_logs(&[&node]);
}

/// Old values merge with new ones; the triggers installed by `crdt.enable` before the upgrade
/// stamp local writes.
fn check_upgraded_database(node: &Cluster, db: &str) {
    let merges = node.query_rows(
        db,
        &format!(
            "SET crdt.node_id = '{NODE_C}';
             SELECT crdt.merge(inventory, 4::crdt.counter)::bigint,
                    crdt.merge(inventory, 4::crdt.counter)::text = crdt.merge(4::crdt.counter, inventory)::text,
                    crdt.merge(inventory, inventory)::text = inventory::text,
                    crdt.merge(attrs, crdt.add(crdt.patch(attrs, '{{\"color\": \"green\"}}'), 'sold', 3))::jsonb,
                    crdt.merge(attrs, crdt.patch(NULL, '{{\"size\": 4}}'))::jsonb
             FROM product WHERE id = 1"
        ),
    );
    assert_eq!(
        merges,
        [[
            "13",
            "t",
            "t",
            r#"{"sold": 6, "color": "green"}"#,
            r#"{"size": 4, "sold": 3, "color": "red"}"#
        ]],
        "merges of values written before the upgrade with values written after it"
    );

    // The stamping trigger: a local UPDATE stamps exactly the changed column, with a newer stamp.
    let name_before = column_stamp(node, db, 1, "name");
    let price_before = column_stamp(node, db, 1, "price");
    node.sql(
        db,
        &format!(
            "SET crdt.node_id = '{NODE_C}';
             UPDATE product SET name = 'widget v3' WHERE id = 1;
             UPDATE product SET inventory = 20 WHERE id = 1;"
        ),
    );
    let name_after = column_stamp(node, db, 1, "name");
    assert!(
        name_after.0 > name_before.0,
        "name was not stamped anew: {name_before:?} -> {name_after:?}"
    );
    assert_eq!(name_after.1, NODE_C);
    assert_eq!(
        column_stamp(node, db, 1, "price"),
        price_before,
        "an unchanged column was stamped"
    );
    // A number assigned to a counter column is the difference from its value (+11 on node C).
    assert_eq!(
        node.query_value(
            db,
            &format!(
                "SELECT inventory::bigint || ' ' || (inventory::text::jsonb -> 'nodes' -> '{NODE_C}')::text \
                 FROM product WHERE id = 1"
            )
        ),
        "20 [11, 0]"
    );

    // crdt.enable run again adds what the new version installs on a CRDT table (0.2.0: the
    // delete and TRUNCATE triggers) and changes no row; deletes then leave tombstones.
    let triggers = "SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) \
                    FROM pg_trigger WHERE tgrelid = 'product'::regclass";
    let rows = "SELECT string_agg(p::text, ';' ORDER BY id) FROM product p";
    let rows_before = node.query_value(db, rows);
    node.sql(db, "SELECT crdt.enable('product')");
    assert_eq!(
        node.query_value(db, triggers),
        "zz_crdt_delete:O,zz_crdt_merge:R,zz_crdt_replicated_delete:R,zz_crdt_stamp:O,zz_crdt_truncate:O"
    );
    assert_eq!(
        node.query_value(db, rows),
        rows_before,
        "crdt.enable after the upgrade changed rows"
    );
    node.sql(
        db,
        "INSERT INTO product (id, name) VALUES (99, 'short-lived'); DELETE FROM product WHERE id = 99",
    );
    assert_eq!(
        node.query_value(db, "SELECT table_name || ' ' || key::text FROM crdt.deletions"),
        r#"public.product {"id": 99}"#
    );
}

/// A fresh install of the new version takes the rows written before the upgrade as they are,
/// and the two databases — two nodes — converge on concurrent writes, the upgraded one merging
/// through the `ENABLE REPLICA` trigger `crdt.enable` installed before the upgrade.
fn check_fresh_install_converges_with_upgraded(node: &Cluster, db: &str) {
    // Emptied on this database only, leaving no tombstones: TRUNCATE, which a CRDT table refuses
    // in ordinary sessions (its trigger fires in those only).
    node.sql(FRESH, "SET session_replication_role = replica; TRUNCATE product");
    for id in 1..=3 {
        merge_row(node, FRESH, &row_json(node, db, id));
    }
    assert_eq!(
        table_snapshot(node, FRESH, ROWS),
        table_snapshot(node, db, ROWS),
        "a fresh install reads the rows of {db} differently"
    );

    node.sql(FRESH, &format!("SET crdt.node_id = '{NODE_D}'; UPDATE product SET price = 2.25, inventory = inventory OPERATOR(crdt.+) 1 WHERE id = 2"));
    node.sql(
        db,
        &format!("SET crdt.node_id = '{NODE_C}'; UPDATE product SET name = 'gadget v3' WHERE id = 2"),
    );
    let (from_fresh, from_upgraded) = (row_json(node, FRESH, 2), row_json(node, db, 2));
    apply_as_replica(node, db, &from_fresh);
    merge_row(node, FRESH, &from_upgraded);
    assert_eq!(
        node.query_value(
            db,
            "SELECT name || '|' || price || '|' || inventory::bigint FROM product WHERE id = 2"
        ),
        "gadget v3|2.25|8"
    );
    assert_eq!(
        table_snapshot(node, FRESH, ROWS),
        table_snapshot(node, db, ROWS),
        "the upgraded database and a fresh install did not converge"
    );
}
