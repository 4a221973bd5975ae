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
        node.create_database_with_product(DB);
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

/// The README's "Moving a mesh to a new major", step by step: node `a` (15) of a 15 mesh is
/// replaced by `n` (18) while `b` keeps writing. Slots for `n` are made on every node first,
/// then `a` is dumped once it has applied what the others sent before them, so every write is
/// in the dump or in a slot (some in both: merged again, to the same state).
#[test]
fn a_node_moves_to_the_new_major_while_the_mesh_keeps_writing() {
    let nodes = Cluster::start_many_majors(&["a", "b", "n"], &[OLD, OLD, NEW]);
    let (a, b, n) = (&nodes[0], &nodes[1], &nodes[2]);
    for node in [a, b] {
        node.create_database_with_product(DB);
    }
    connect_bidirectional(a, b, DB, &["product"]);
    a.sql(
        DB,
        "INSERT INTO product (id, name, inventory) SELECT i, 'p' || i, i FROM generate_series(1, 20) i",
    );
    // b changes the rows a inserted: they must be there first (under load they once were not,
    // and b's UPDATE and DELETE found nothing).
    wait_for_replication_idle(&[a, b]);
    b.sql(
        DB,
        "UPDATE product SET inventory = inventory + 100 WHERE id <= 10; DELETE FROM product WHERE id = 20",
    );
    wait_for_replication_idle(&[a, b]);

    // 1. n runs the new major with the extension installed (the harness's cluster).
    // 2. A slot for n on every node of the mesh.
    for from in [a, b] {
        from.sql(
            DB,
            &format!(
                "SELECT pg_create_logical_replication_slot('{}', 'pgoutput')",
                subscription_name(from, n)
            ),
        );
    }
    b.sql(
        DB,
        "UPDATE product SET name = 'written on b after its slot' WHERE id = 1",
    );
    // 3. a has applied what b wrote before its slot (and after: merged again later).
    wait_for_replication_idle(&[a, b]);
    // 4. a's database, stamps and tombstones, into n; its subscriptions stay behind.
    let dump = a.dir().join("app.dump");
    a.dump(DB, &dump);
    n.create_database(DB);
    n.restore_with(DB, &dump, &["--no-subscriptions"]);
    // Settings of the database itself are not in the dump, and neither is crdt.deletions'
    // membership of the publication (pg_dump leaves out an extension's tables there).
    n.sql(DB, "ALTER DATABASE app SET search_path = public, crdt");
    assert_eq!(
        n.query_value(
            DB,
            "SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_publication_tables"
        ),
        "public.product"
    );
    n.sql(DB, &format!("ALTER PUBLICATION {PUBLICATION} ADD TABLE crdt.deletions"));
    b.sql(DB, "UPDATE product SET inventory = inventory - 1 WHERE id = 2");
    a.sql(DB, "UPDATE product SET inventory = inventory + 7 WHERE id = 3");
    // 5. n subscribes to every node through its slot.
    for from in [a, b] {
        let name = subscription_name(from, n);
        let options = SubscriptionOptions {
            extra: vec!["create_slot = false".to_string(), format!("slot_name = '{name}'")],
            ..SubscriptionOptions::default()
        };
        create_subscription(from, n, DB, &name, PUBLICATION, &options);
    }
    // 6. Every node subscribes to n.
    for to in [a, b] {
        create_subscription(
            n,
            to,
            DB,
            &subscription_name(n, to),
            PUBLICATION,
            &SubscriptionOptions::default(),
        );
    }
    n.sql(DB, "UPDATE product SET inventory = inventory + 1000 WHERE id = 4");
    wait_for_replication_idle(&[a, b, n]);
    // 7. The application moved to n; a leaves the mesh.
    for node in [b, n] {
        node.sql(DB, &format!("DROP SUBSCRIPTION {}", subscription_name(a, node)));
    }
    a.sql(
        DB,
        &format!(
            "DROP SUBSCRIPTION {}; DROP SUBSCRIPTION {}",
            subscription_name(b, a),
            subscription_name(n, a)
        ),
    );
    a.stop_fast();
    write_while_apart(
        b,
        n,
        DB,
        "UPDATE product SET inventory = inventory + 2 WHERE id = 5",
        "UPDATE product SET inventory = inventory + 3 WHERE id = 5; DELETE FROM product WHERE id = 6",
    );
    wait_for_replication_idle(&[b, n]);

    for node in [b, n] {
        assert_eq!(
            node.sql(
                DB,
                "SELECT string_agg(id || ':' || inventory::bigint, ',' ORDER BY id) FROM product WHERE id <= 6
                 UNION ALL SELECT name FROM product WHERE id = 1
                 UNION ALL SELECT count(*)::text FROM product"
            ),
            "1:101,2:101,3:110,4:1104,5:110\nwritten on b after its slot\n18",
            "PostgreSQL {}",
            node.major()
        );
    }
    assert_same_snapshot(
        &[b, n],
        DB,
        "SELECT id, name, inventory::text, crdt_clock::text FROM product ORDER BY id",
    );
    assert_same_snapshot(
        &[b, n],
        DB,
        "SELECT table_name, key::text, hlc, node FROM crdt.deletions ORDER BY 1, 2, 3, 4",
    );
    assert_no_errors_in_logs_except(&[b, n], PEER_DOWN_LOG_NOISE);
}
