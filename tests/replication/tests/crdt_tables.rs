//! CRDT tables (`crdt.enable`) on real logical replication in both directions (docs/design.md,
//! "Merge rules"): concurrent writes on two PostgreSQL instances, made while their subscriptions
//! are disabled (so the writes really are concurrent), converge once the link heals.

use std::thread;
use std::time::Duration;

use crdt_replication_tests::*;

const DB: &str = "app";
const PRODUCT: &str = "SELECT id, name, price, inventory::bigint, attrs::jsonb, crdt_clock::text \
                       FROM product ORDER BY id";

/// Two nodes with a CRDT-enabled `product` table, replicating both ways, holding one row
/// `(1, 'x', 10, inventory 5)` that both have seen.
fn two_nodes(options: &SubscriptionOptions) -> Vec<Cluster> {
    let nodes = Cluster::start_many(&["a", "b"]);
    for node in &nodes {
        node.create_database_with_crdt(DB);
        node.sql(
            DB,
            "ALTER DATABASE app SET search_path = public, crdt;
             CREATE TABLE product (id int PRIMARY KEY, name text, price numeric,
                                   inventory crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
             SELECT crdt.enable('product');",
        );
    }
    connect_bidirectional_with(&nodes[0], &nodes[1], DB, &["product"], options);
    nodes[0].sql(
        DB,
        "INSERT INTO product (id, name, price, inventory) VALUES (1, 'x', 10, 5)",
    );
    settle(&nodes);
    nodes
}

fn settle(nodes: &[Cluster]) {
    let refs: Vec<&Cluster> = nodes.iter().collect();
    wait_for_replication_idle(&refs);
}

/// Cuts both directions, runs `on_a` on A and `on_b` on B, heals, and waits.
fn concurrently(nodes: &[Cluster], on_a: &str, on_b: &str) {
    write_while_apart(&nodes[0], &nodes[1], DB, on_a, on_b);
    settle(nodes);
}

fn both(nodes: &[Cluster], query: &str) -> (String, String) {
    (nodes[0].query_value(DB, query), nodes[1].query_value(DB, query))
}

fn assert_converged(nodes: &[Cluster]) {
    let refs: Vec<&Cluster> = nodes.iter().collect();
    assert_same_snapshot(&refs, DB, PRODUCT);
    assert_no_errors_in_logs(&refs);
}

/// The inventory case: A renames and adds 5, B subtracts 1 → the new name and 9 on both.
fn inventory_case(options: SubscriptionOptions) {
    let nodes = two_nodes(&options);
    concurrently(
        &nodes,
        "UPDATE product SET name = 'renamed on A', inventory = inventory + 5 WHERE id = 1",
        "UPDATE product SET inventory = inventory - 1 WHERE id = 1",
    );
    let expected = "renamed on A|9".to_owned();
    let query = "SELECT name || '|' || inventory::bigint FROM product WHERE id = 1";
    assert_eq!(both(&nodes, query), (expected.clone(), expected));
    assert_converged(&nodes);
}

#[test]
fn inventory_case_across_instances() {
    inventory_case(SubscriptionOptions::default());
}

#[test]
fn inventory_case_over_binary_subscriptions() {
    inventory_case(SubscriptionOptions::binary());
}

/// Concurrent updates of different columns are all kept.
#[test]
fn concurrent_writes_to_different_columns_are_all_kept() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    concurrently(
        &nodes,
        "UPDATE product SET name = 'from A' WHERE id = 1",
        "UPDATE product SET price = 12.50 WHERE id = 1",
    );
    let query = "SELECT name || '|' || price FROM product WHERE id = 1";
    assert_eq!(
        both(&nodes, query),
        ("from A|12.50".to_owned(), "from A|12.50".to_owned())
    );
    assert_converged(&nodes);
}

/// Concurrent updates of one column: the later write wins, on both nodes.
#[test]
fn same_column_later_write_wins_everywhere() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    concurrently(
        &nodes,
        "UPDATE product SET name = 'earlier, on A' WHERE id = 1",
        // B writes a few milliseconds later: its stamp is newer.
        "SELECT pg_sleep(0.05); UPDATE product SET name = 'later, on B' WHERE id = 1",
    );
    let query = "SELECT name FROM product WHERE id = 1";
    assert_eq!(
        both(&nodes, query),
        ("later, on B".to_owned(), "later, on B".to_owned())
    );
    assert_converged(&nodes);
}

/// Both nodes insert the same key: merged instead of a unique violation, and replication keeps
/// running afterwards.
#[test]
fn insert_insert_of_one_key_is_merged() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    concurrently(
        &nodes,
        "INSERT INTO product (id, name, inventory) VALUES (2, 'inserted on A', 3)",
        "SELECT pg_sleep(0.05); INSERT INTO product (id, price, inventory) VALUES (2, 7, 4)",
    );
    // Column by column, B's later insert wins (its NULL name included); the counters add up.
    let query = "SELECT coalesce(name, 'NULL') || '|' || price || '|' || inventory::bigint \
                 FROM product WHERE id = 2";
    assert_eq!(both(&nodes, query), ("NULL|7|7".to_owned(), "NULL|7|7".to_owned()));
    nodes[0].sql(DB, "UPDATE product SET name = 'still replicating' WHERE id = 2");
    settle(&nodes);
    assert_eq!(
        both(&nodes, "SELECT name FROM product WHERE id = 2"),
        ("still replicating".to_owned(), "still replicating".to_owned())
    );
    assert_converged(&nodes);
}

/// Assigning a number to a counter is recorded as the difference: read 9, write 20 on A while B
/// adds 1 → 21 everywhere.
#[test]
fn counter_assignment_is_a_difference() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    nodes[0].sql(DB, "UPDATE product SET inventory = inventory + 4 WHERE id = 1");
    settle(&nodes);
    concurrently(
        &nodes,
        "UPDATE product SET inventory = 20 WHERE id = 1",
        "UPDATE product SET inventory = inventory + 1 WHERE id = 1",
    );
    let query = "SELECT inventory::bigint FROM product WHERE id = 1";
    assert_eq!(both(&nodes, query), ("21".to_owned(), "21".to_owned()));
    assert_converged(&nodes);
}

/// Doc columns merge per property: A patches one property, B adds to another.
#[test]
fn doc_columns_merge_per_property() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    nodes[0].sql(
        DB,
        r#"UPDATE product SET attrs = '{"color": "red", "sold": 1}'::jsonb WHERE id = 1"#,
    );
    settle(&nodes);
    concurrently(
        &nodes,
        r#"UPDATE product SET attrs = crdt.patch(attrs, '{"color": "blue"}') WHERE id = 1"#,
        "UPDATE product SET attrs = crdt.add(attrs, 'sold', 2) WHERE id = 1",
    );
    let query = "SELECT attrs::jsonb::text FROM product WHERE id = 1";
    let expected = r#"{"sold": 3, "color": "blue"}"#.to_owned();
    assert_eq!(both(&nodes, query), (expected.clone(), expected));
    assert_converged(&nodes);
}

/// Once converged, nothing is written again: the merge trigger skips no-op updates, so the
/// echo of bidirectional replication on PostgreSQL 15 (no `origin = none`) dies out.
#[test]
fn converged_rows_are_not_rewritten() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    concurrently(
        &nodes,
        "UPDATE product SET name = 'n' WHERE id = 1",
        "UPDATE product SET inventory = inventory + 1 WHERE id = 1",
    );
    let updates = "SELECT n_tup_upd + n_tup_ins FROM pg_stat_user_tables WHERE relname = 'product'";
    // Every node wrote the row exactly three times: the insert (its own or applied), its own
    // update, and the other node's update merged in. Apply workers report their statistics
    // lazily (at most once a second), so wait for them to show up, then check nothing follows.
    let expected = ("3".to_owned(), "3".to_owned());
    for _ in 0..50 {
        if both(&nodes, updates) == expected {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        both(&nodes, updates),
        expected,
        "writes after convergence (insert, update, merge)"
    );
    thread::sleep(Duration::from_secs(2));
    settle(&nodes);
    assert_eq!(both(&nodes, updates), expected, "rows were rewritten after convergence");
    assert_converged(&nodes);
}

const TOMBSTONES: &str = "SELECT table_name, key::text, hlc, node FROM crdt.deletions ORDER BY 1, 2, 3, 4";

/// A delete wins over a concurrent update, as over every write its node had not seen
/// (docs/design.md, "Deletes and re-inserts").
#[test]
fn delete_wins_over_a_concurrent_update() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    concurrently(
        &nodes,
        "DELETE FROM product WHERE id = 1",
        "UPDATE product SET name = 'updated on B' WHERE id = 1",
    );
    assert_eq!(
        both(&nodes, "SELECT count(*) FROM product"),
        ("0".to_owned(), "0".to_owned())
    );
    assert_converged(&nodes);
}

/// A row inserted again on B after B saw A's delete of its key is a new row: it survives, on
/// both nodes, and the echo of the delete does not take it.
#[test]
fn reinsert_after_a_replicated_delete_survives_everywhere() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    nodes[0].sql(DB, "DELETE FROM product WHERE id = 1");
    settle(&nodes);
    assert_eq!(
        both(&nodes, "SELECT count(*) FROM product"),
        ("0".to_owned(), "0".to_owned())
    );
    nodes[1].sql(
        DB,
        "INSERT INTO product (id, name, inventory) VALUES (1, 'again on B', 2)",
    );
    settle(&nodes);
    let query = "SELECT name || '|' || inventory::bigint FROM product WHERE id = 1";
    assert_eq!(
        both(&nodes, query),
        ("again on B|2".to_owned(), "again on B|2".to_owned())
    );
    let refs: Vec<&Cluster> = nodes.iter().collect();
    assert_same_snapshot(&refs, DB, TOMBSTONES);
    assert_eq!(nodes[0].query_value(DB, "SELECT count(*) FROM crdt.deletions"), "1");
    assert_converged(&nodes);
}

/// B inserts a key while A, not having seen that insert, inserts and deletes the same key: the
/// delete wins over the concurrent insert, on both nodes.
#[test]
fn delete_wins_over_a_concurrent_insert() {
    let nodes = two_nodes(&SubscriptionOptions::default());
    concurrently(
        &nodes,
        "INSERT INTO product (id, name) VALUES (2, 'on A'); DELETE FROM product WHERE id = 2",
        "INSERT INTO product (id, name, inventory) VALUES (2, 'on B', 4)",
    );
    assert_eq!(
        both(&nodes, "SELECT count(*) FROM product WHERE id = 2"),
        ("0".to_owned(), "0".to_owned())
    );
    // Replication still runs, and the key can be used again.
    nodes[1].sql(DB, "INSERT INTO product (id, name) VALUES (2, 'after it')");
    settle(&nodes);
    assert_eq!(
        both(&nodes, "SELECT name FROM product WHERE id = 2"),
        ("after it".to_owned(), "after it".to_owned())
    );
    let refs: Vec<&Cluster> = nodes.iter().collect();
    assert_same_snapshot(&refs, DB, TOMBSTONES);
    assert_converged(&nodes);
}

/// A replicated UPDATE that did not change a TOASTed column carries no value for it (the apply
/// worker fills in the local one): the other columns still merge, the big value stays right.
#[test]
fn unchanged_toasted_columns_merge_correctly() {
    let nodes = Cluster::start_many(&["a", "b"]);
    for node in &nodes {
        node.create_database_with_crdt(DB);
        node.sql(
            DB,
            "CREATE TABLE note (id int PRIMARY KEY, body text, n int);
             ALTER TABLE note ALTER COLUMN body SET STORAGE EXTERNAL;
             SELECT crdt.enable('note');",
        );
    }
    connect_bidirectional(&nodes[0], &nodes[1], DB, &["note"]);
    let big = "(SELECT string_agg(md5(i::text || $$SEED$$), '') FROM generate_series(1, 2000) i)";
    nodes[0].sql(
        DB,
        &format!("INSERT INTO note VALUES (1, {}, 0)", big.replace("SEED", "first")),
    );
    settle(&nodes);
    concurrently(
        &nodes,
        &format!("UPDATE note SET body = {} WHERE id = 1", big.replace("SEED", "second")),
        "UPDATE note SET n = 7 WHERE id = 1",
    );
    let query = "SELECT md5(body) || '|' || n || '|' || crdt_clock::text FROM note WHERE id = 1";
    let (on_a, on_b) = both(&nodes, query);
    assert_eq!(on_a, on_b);
    let expected_body = nodes[0].query_value(DB, &format!("SELECT md5({})", big.replace("SEED", "second")));
    assert!(on_a.starts_with(&format!("{expected_body}|7|")), "{on_a}");
    let refs: Vec<&Cluster> = nodes.iter().collect();
    assert_no_errors_in_logs(&refs);
}

/// Three nodes in a full mesh: A adds 5, B subtracts 1, C renames — all concurrently — and every
/// node ends with the new name and 9; the echoes of a three-way mesh die out too.
#[test]
fn three_node_mesh_converges() {
    three_node_mesh(&SubscriptionOptions::default());
}

fn three_node_mesh(options: &SubscriptionOptions) {
    let nodes = Cluster::start_many(&["a", "b", "c"]);
    for node in &nodes {
        node.create_database_with_crdt(DB);
        node.sql(
            DB,
            "CREATE TABLE product (id int PRIMARY KEY, name text, inventory crdt.counter NOT NULL DEFAULT 0);
             SELECT crdt.enable('product');",
        );
    }
    let refs: Vec<&Cluster> = nodes.iter().collect();
    full_mesh_with(&refs, DB, &["product"], options);
    nodes[0].sql(DB, "INSERT INTO product VALUES (1, 'x', 5)");
    settle(&nodes);
    for node in &nodes {
        disable_subscriptions(node);
    }
    nodes[0].sql(DB, "UPDATE product SET inventory = inventory OPERATOR(crdt.+) 5");
    nodes[1].sql(DB, "UPDATE product SET inventory = inventory OPERATOR(crdt.-) 1");
    nodes[2].sql(DB, "UPDATE product SET name = 'renamed on C'");
    for node in &nodes {
        enable_subscriptions(node);
    }
    settle(&nodes);
    for node in &nodes {
        assert_eq!(
            node.query_value(DB, "SELECT name || '|' || inventory::bigint FROM product"),
            "renamed on C|9",
            "on node {}",
            node.name()
        );
    }
    assert_same_snapshot(
        &refs,
        DB,
        "SELECT id, name, inventory::text, crdt_clock::text FROM product",
    );
    assert_no_errors_in_logs(&refs);
}

/// Stamps further ahead of this node's clock than `crdt.max_clock_skew` are merged, with one
/// WARNING per table per transaction, on every replicated path: INSERT of a new row, INSERT
/// merged into an existing one, UPDATE, tombstone. A session with `session_replication_role =
/// replica` takes the apply worker's paths.
#[test]
fn stamps_far_ahead_warn_once_per_table_and_transaction() {
    let node = Cluster::start("skewed");
    node.create_database_with_crdt(DB);
    // Rows and a tombstone stamped in 2100 (hybrid logical clocks: milliseconds << 16).
    node.sql(
        DB,
        r#"CREATE TABLE product (id int PRIMARY KEY, name text);
           SELECT crdt.enable('product');
           CREATE TABLE source (LIKE product);
           ALTER TABLE source ADD PRIMARY KEY (id);
           SELECT crdt.enable('source');
           INSERT INTO source VALUES (1, 'a'), (2, 'b'), (3, 'c');
           CREATE TABLE future AS
             SELECT id, name, regexp_replace(crdt_clock::text, '\[[0-9]+,', '[270000000000000000,', 'g') AS clock
             FROM source;"#,
    );
    let warnings = || {
        std::fs::read_to_string(node.log_path())
            .unwrap_or_default()
            .matches("carries a stamp")
            .count()
    };
    let replicated = |sql: &str| node.sql(DB, &format!("SET session_replication_role = replica; {sql}"));
    replicated(
        "INSERT INTO product SELECT id, name, clock::crdt.row_clock FROM future WHERE id <= 2; \
         INSERT INTO product SELECT id, name || ' later', clock::crdt.row_clock FROM future WHERE id = 3",
    );
    assert_eq!(warnings(), 2, "two INSERTs, one transaction each");
    replicated(
        "BEGIN; \
         INSERT INTO product SELECT id, name, regexp_replace(clock, '270000000000000000', '270000000000000001', 'g')::crdt.row_clock FROM future WHERE id <= 2; \
         COMMIT;",
    );
    assert_eq!(
        warnings(),
        3,
        "an INSERT merged into two existing rows, one transaction"
    );
    replicated(
        r#"INSERT INTO crdt.deletions VALUES ('public.product', '{"id": 1}', 270000000000000002, 'dddddddd-0000-4000-8000-000000000004')"#,
    );
    assert_eq!(warnings(), 4, "a tombstone");
    assert_eq!(
        node.query_value(DB, "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM product"),
        "2:b,3:c later"
    );
    assert_no_errors_in_logs(&[&node]);
}

/// Three nodes; B is cut off while A inserts a row and C, having applied it, updates it. When B
/// comes back, C's link delivers first. With `origin = any` C's link carries A's insert (C
/// published what it applied) before C's update, so B applies them in order. With `origin =
/// none` it carries only C's update, which finds no row on B and is skipped by PostgreSQL; A's
/// insert then arrives, and B keeps A's value.
fn causal_order_across_links(origin: &'static str) -> (String, String) {
    let nodes = Cluster::start_many(&["a", "b", "c"]);
    for node in &nodes {
        node.create_database_with_product(DB);
    }
    let refs: Vec<&Cluster> = nodes.iter().collect();
    let options = SubscriptionOptions {
        origin: Some(origin),
        ..SubscriptionOptions::default()
    };
    full_mesh_with(&refs, DB, &["product"], &options);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    disable_subscriptions(b);
    a.sql(DB, "INSERT INTO product VALUES (1, 'from a', 5)");
    wait_for_replication_idle(&[a, c]);
    c.sql(DB, "UPDATE product SET name = 'from c' WHERE id = 1");
    wait_for_replication_idle(&[a, c]);
    enable_subscription(b, &subscription_name(c, b));
    wait_for_replication_idle(&[b, c]);
    enable_subscription(b, &subscription_name(a, b));
    wait_for_replication_idle(&refs);
    let query = "SELECT coalesce((SELECT name FROM product WHERE id = 1), 'no row')";
    (b.query_value(DB, query), c.query_value(DB, query))
}

#[test]
fn three_nodes_with_origin_any_keep_causal_order() {
    let (on_b, on_c) = causal_order_across_links("any");
    assert_eq!((on_b.as_str(), on_c.as_str()), ("from c", "from c"));
}

/// `origin = none` from 16 on: B keeps A's value for good (until the row is written again),
/// which is why the README's guide keeps `origin = any` for meshes of three or more. 15 has no
/// such option and refuses it.
#[test]
fn three_nodes_with_origin_none_can_skip_an_update() {
    if default_major() < 16 {
        let node = Cluster::start("a");
        let refused = node.try_sql(
            "postgres",
            "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1' PUBLICATION p
             WITH (connect = false, origin = none)",
        );
        assert!(refused.as_ref().is_err_and(|err| err.contains("origin")), "{refused:?}");
        return;
    }
    let (on_b, on_c) = causal_order_across_links("none");
    assert_eq!((on_b.as_str(), on_c.as_str()), ("from a", "from c"));
}
