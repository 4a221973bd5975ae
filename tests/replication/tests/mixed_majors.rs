//! A mesh in the middle of a major upgrade: a PostgreSQL 15 node and a PostgreSQL 18 node
//! replicating both ways, over text and binary subscriptions, converge as nodes of one major do
//! (the chaos workload on such a mesh is `CRDT_CHAOS_MAJORS=15,18,18` of `chaos.rs`). The 18
//! node subscribes without `origin = none`, which a 15 publisher cannot honour (an 18
//! subscriber accepts it and still gets everything): the merge trigger ends the echoes.
//!
//! Needs the extension installed into both majors: `scripts/test.sh` runs this last.

use crdt_replication_tests::*;

const DB: &str = "app";
const OLD: u32 = 15;
const NEW: u32 = 18;

/// An old-major node and a new-major node with the `product` table, replicating both ways.
fn old_and_new(options: &SubscriptionOptions) -> Vec<Cluster> {
    let nodes = Cluster::start_many_majors(&["old", "new"], &[OLD, NEW]);
    for node in &nodes {
        assert_eq!(
            node.query_value("postgres", "SELECT current_setting('server_version_num')::int / 10000"),
            node.major().to_string()
        );
        node.create_database_with_crdt(DB);
        node.sql(
            DB,
            "ALTER DATABASE app SET search_path = public, crdt;
             CREATE TABLE product (id int PRIMARY KEY, name text, inventory crdt.counter NOT NULL DEFAULT 0,
                                   attrs crdt.doc);
             SELECT crdt.enable('product');",
        );
    }
    connect_bidirectional_with(&nodes[0], &nodes[1], DB, &["product"], options);
    nodes
}

/// The inventory case, a doc merge, a delete and a re-insert, written on both majors.
fn converge_across_majors(options: SubscriptionOptions) {
    let nodes = old_and_new(&options);
    let (old, new) = (&nodes[0], &nodes[1]);
    old.sql(
        DB,
        "INSERT INTO product VALUES (1, 'widget', 5, crdt.patch(NULL, '{\"color\": \"red\"}')), (2, 'gadget', 1, NULL)",
    );
    wait_for_replication_idle(&[old, new]);
    write_while_apart(
        old,
        new,
        DB,
        "UPDATE product SET name = 'widget v2', inventory = inventory + 5 WHERE id = 1;
         UPDATE product SET attrs = crdt.patch(attrs, '{\"size\": \"L\"}') WHERE id = 1;
         DELETE FROM product WHERE id = 2",
        "UPDATE product SET inventory = inventory - 1 WHERE id = 1;
         UPDATE product SET attrs = crdt.patch(attrs, '{\"color\": \"blue\"}') WHERE id = 1;
         UPDATE product SET name = 'gadget v2' WHERE id = 2",
    );
    wait_for_replication_idle(&[old, new]);
    new.sql(DB, "INSERT INTO product VALUES (2, 'gadget again', 3, NULL)");
    wait_for_replication_idle(&[old, new]);
    for node in [old, new] {
        assert_eq!(
            node.sql(
                DB,
                "SELECT id, name, inventory::bigint, attrs::jsonb FROM product ORDER BY id"
            ),
            "1|widget v2|9|{\"size\": \"L\", \"color\": \"blue\"}\n2|gadget again|3|",
            "PostgreSQL {}",
            node.major()
        );
    }
    assert_same_snapshot(
        &[old, new],
        DB,
        "SELECT id, name, inventory::text, attrs::text, crdt_clock::text FROM product ORDER BY id",
    );
    assert_same_snapshot(
        &[old, new],
        DB,
        "SELECT table_name, key::text, hlc, node FROM crdt.deletions ORDER BY 1, 2, 3, 4",
    );
    assert_no_errors_in_logs(&[old, new]);
}

#[test]
fn old_and_new_major_converge_over_text() {
    converge_across_majors(SubscriptionOptions::default());
}

#[test]
fn old_and_new_major_converge_over_binary() {
    converge_across_majors(SubscriptionOptions::binary());
}
