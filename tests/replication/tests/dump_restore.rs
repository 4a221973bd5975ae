//! `pg_dump` / `pg_restore` of a database with a CRDT table into a fresh instance keeps every
//! value and stamp, and the restored node then merges with the original like any other node.

use crdt_replication_tests::*;

const DB: &str = "app";
const ROWS: &str = "SELECT id, name, inventory::text, attrs::text, crdt_clock::text FROM product ORDER BY id";

#[test]
fn dump_and_restore_keeps_values_and_stamps_and_merges_afterwards() {
    let nodes = Cluster::start_many(&["origin", "restored"]);
    let (origin, restored) = (&nodes[0], &nodes[1]);
    origin.create_database_with_crdt(DB);
    origin.sql(
        DB,
        r#"CREATE TABLE product (id int PRIMARY KEY, name text,
                                 inventory crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
           SELECT crdt.enable('product');
           INSERT INTO product SELECT i, 'p' || i, i, crdt.patch(NULL, jsonb_build_object('i', i))
             FROM generate_series(1, 50) i;
           UPDATE product SET inventory = inventory OPERATOR(crdt.+) 5, name = name || ' v2' WHERE id % 2 = 0;
           UPDATE product SET attrs = crdt.add(attrs, 'sold', 3) WHERE id % 3 = 0;
           DELETE FROM product WHERE id = 50;"#,
    );
    let dump = origin.dir().join("app.dump");
    origin.dump(DB, &dump);
    restored.create_database(DB);
    restored.restore(DB, &dump, 1);

    assert_same_snapshot(&[origin, restored], DB, ROWS);
    // The triggers came back as they were: stamping and recording deletes in ordinary sessions,
    // merging and skipping deletes (the tombstone decides) in replicas.
    assert_eq!(
        restored.sql(DB, "SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'product'::regclass"),
        "zz_crdt_delete:O,zz_crdt_merge:R,zz_crdt_replicated_delete:R,zz_crdt_stamp:O,zz_crdt_truncate:O"
    );
    // The tombstones too (crdt.deletions is a configuration table of the extension).
    assert_same_snapshot(
        &[origin, restored],
        DB,
        "SELECT table_name, key::text, hlc, node FROM crdt.deletions",
    );
    assert_eq!(
        restored.query_value(DB, "SELECT key::text FROM crdt.deletions"),
        r#"{"id": 50}"#
    );

    // The restored node is a node of its own and merges with the original both ways.
    assert_ne!(
        origin.query_value(DB, "SELECT crdt.node_id()"),
        restored.query_value(DB, "SELECT crdt.node_id()")
    );
    connect_bidirectional(origin, restored, DB, &["product"]);
    write_while_apart(
        origin,
        restored,
        DB,
        "UPDATE product SET inventory = inventory OPERATOR(crdt.+) 10 WHERE id = 1",
        "UPDATE product SET inventory = inventory OPERATOR(crdt.-) 1, name = 'renamed' WHERE id = 1",
    );
    wait_for_replication_idle(&[origin, restored]);
    for node in [origin, restored] {
        assert_eq!(
            node.query_value(DB, "SELECT name || '|' || inventory::bigint FROM product WHERE id = 1"),
            "renamed|10"
        );
    }
    assert_same_snapshot(&[origin, restored], DB, ROWS);
    assert_no_errors_in_logs(&[origin, restored]);
}
