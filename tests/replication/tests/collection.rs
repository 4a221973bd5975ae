//! Tombstone collection on real clusters (docs/tombstones.md): with every node connected,
//! `crdt.vacuum_tombstones()` removes the tombstones of every node within a few rounds; a node
//! cut off holds collection back on every node, and what it wrote meanwhile — a stale update, an
//! insert of a key deleted elsewhere — leaves the deleted rows deleted once it is back; a node
//! that left for good stops holding it back once forgotten.

use std::thread;
use std::time::{Duration, Instant};

use crdt_replication_tests::*;

const DB: &str = "app";
const ITEMS: &str = "SELECT id, v, n::bigint FROM item ORDER BY id";

/// Three nodes with a CRDT table `item`, in a full mesh.
fn three_nodes() -> Vec<Cluster> {
    let nodes = Cluster::start_many(&["a", "b", "c"]);
    for node in &nodes {
        node.create_database_with_crdt(DB);
        node.sql(
            DB,
            "CREATE TABLE item (id int PRIMARY KEY, v text, n crdt.counter NOT NULL DEFAULT 0);
             SELECT crdt.enable('item');",
        );
    }
    let refs: Vec<&Cluster> = nodes.iter().collect();
    full_mesh(&refs, DB, &["item"]);
    nodes
}

/// [`three_nodes`] holding rows 1 to 10, inserted on A, and having heard each other once.
fn three_nodes_heard_with_ten_rows() -> Vec<Cluster> {
    let nodes = three_nodes();
    let refs: Vec<&Cluster> = nodes.iter().collect();
    nodes[0].sql(
        DB,
        "INSERT INTO item (id, v) SELECT g, 'v' || g FROM generate_series(1, 10) g",
    );
    wait_for_replication_idle(&refs);
    round(&refs);
    nodes
}

fn tombstones(node: &Cluster) -> u64 {
    node.query_value(DB, "SELECT count(*) FROM crdt.deletions")
        .parse()
        .unwrap_or(u64::MAX)
}

/// One round of collection: `crdt.vacuum_tombstones()` on each of `nodes`, then every change
/// delivered among them. A round's candidate time is taken a second after the last's, so that
/// `covers` (held a second below it) moves past what was stamped in between.
fn round(nodes: &[&Cluster]) {
    thread::sleep(Duration::from_millis(1100));
    for node in nodes {
        node.sql(DB, "SELECT crdt.vacuum_tombstones()");
    }
    wait_for_replication_idle(nodes);
}

/// Rounds until no node of `nodes` keeps a tombstone; how many it took, `None` after `limit`.
fn rounds_to_collect(nodes: &[&Cluster], limit: usize) -> Option<usize> {
    (1..=limit).find(|_| {
        round(nodes);
        nodes.iter().all(|node| tombstones(node) == 0)
    })
}

#[test]
fn every_nodes_tombstones_are_collected_within_a_few_rounds() {
    let nodes = three_nodes();
    let refs: Vec<&Cluster> = nodes.iter().collect();
    nodes[0].sql(
        DB,
        "INSERT INTO item (id, v) SELECT g, 'v' || g FROM generate_series(1, 300) g",
    );
    wait_for_replication_idle(&refs);
    nodes[0].sql(DB, "DELETE FROM item WHERE id <= 100");
    nodes[1].sql(DB, "DELETE FROM item WHERE id BETWEEN 101 AND 150");
    nodes[2].sql(DB, "DELETE FROM item WHERE id BETWEEN 151 AND 160");
    wait_for_replication_idle(&refs);
    for node in &nodes {
        assert_eq!(tombstones(node), 160, "on {}", node.name());
    }
    let started = Instant::now();
    let rounds = rounds_to_collect(&refs, 8);
    let elapsed = started.elapsed();
    assert!(
        rounds.is_some(),
        "tombstones left after 8 rounds: {:?}",
        nodes.iter().map(tombstones).collect::<Vec<_>>()
    );
    eprintln!("collected on every node in {rounds:?} rounds, {elapsed:?}");
    // Nothing else moved: the rows left are the same everywhere.
    assert_same_snapshot(&refs, DB, ITEMS);
    assert_eq!(nodes[0].query_value(DB, "SELECT count(*) FROM item"), "140");
    // Deleting after a collection works as before, and is collected in turn.
    nodes[1].sql(DB, "DELETE FROM item WHERE id = 300");
    wait_for_replication_idle(&refs);
    assert!(rounds_to_collect(&refs, 8).is_some());
    assert_same_snapshot(&refs, DB, ITEMS);
    assert_no_errors_in_logs(&refs);
}

#[test]
fn a_node_cut_off_holds_collection_back_and_its_stale_writes_stay_deleted() {
    let nodes = three_nodes_heard_with_ten_rows();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let refs: Vec<&Cluster> = nodes.iter().collect();
    // C is cut off both ways.
    disable_subscriptions(c);
    disable_subscription(a, &subscription_name(c, a));
    disable_subscription(b, &subscription_name(c, b));
    // A deletes rows C has, and a key it inserts and deletes while C does not know of it; C
    // meanwhile updates one of those rows and inserts that key itself.
    a.sql(DB, "DELETE FROM item WHERE id <= 5");
    a.sql(DB, "INSERT INTO item (id, v) VALUES (30, 'from a')");
    a.sql(DB, "DELETE FROM item WHERE id = 30");
    c.sql(DB, "UPDATE item SET v = 'stale', n = n OPERATOR(crdt.+) 1 WHERE id = 1");
    c.sql(DB, "INSERT INTO item (id, v) VALUES (30, 'from c')");
    let ab = [a, b];
    wait_for_replication_idle(&ab);
    for _ in 0..5 {
        round(&ab);
        c.sql(DB, "SELECT crdt.vacuum_tombstones()");
    }
    assert_eq!((tombstones(a), tombstones(b)), (6, 6), "collected while C was cut off");
    // crdt.status() on A says who holds collection back, and that C's subscription is off.
    let c_id = c.query_value(DB, "SELECT crdt.node_id()");
    let status = |item: &str| {
        a.query_rows(
            DB,
            &format!("SELECT name, ok, detail FROM crdt.status() WHERE item = '{item}' ORDER BY name"),
        )
    };
    let collection = &status("collection")[0];
    assert_eq!(collection[2], format!("held there by {c_id}"), "{collection:?}");
    let peer_c = status("peer")
        .into_iter()
        .find(|peer| peer[0] == c_id)
        .expect("C is a peer of A");
    assert!(peer_c[2].ends_with("; holds collection back"), "{peer_c:?}");
    let from_c = status("subscription")
        .into_iter()
        .find(|subscription| subscription[0] == subscription_name(c, a))
        .expect("A subscribes to C");
    assert_eq!((from_c[1].as_str(), from_c[2].as_str()), ("f", "disabled"));
    // Back: C's stale writes meet the tombstones, and the deleted rows stay deleted.
    enable_subscriptions(c);
    enable_subscription(a, &subscription_name(c, a));
    enable_subscription(b, &subscription_name(c, b));
    wait_for_replication_idle(&refs);
    assert_same_snapshot(&refs, DB, ITEMS);
    assert_eq!(
        c.query_value(DB, "SELECT string_agg(id::text, ',' ORDER BY id) FROM item"),
        "6,7,8,9,10"
    );
    // crdt.stats saw it: A's six tombstones deleted rows 1 to 5 and 30 on B and on C (C's own
    // row 30 too), none on A; C's insert of 30 was dropped on A and on B (and echoes of A's
    // insert of 30 may have been dropped too).
    let stats = |node: &Cluster| -> (u64, u64) {
        let row = &node.query_rows(
            DB,
            "SELECT deletes_applied, inserts_dropped_by_tombstone FROM crdt.stats",
        )[0];
        (row[0].parse().unwrap(), row[1].parse().unwrap())
    };
    let (on_a, on_b, on_c) = (stats(a), stats(b), stats(c));
    assert_eq!((on_a.0, on_b.0, on_c.0), (0, 6, 6), "deletes applied");
    assert!(on_a.1 >= 1 && on_b.1 >= 1, "inserts dropped: {on_a:?} {on_b:?}");
    assert!(rounds_to_collect(&refs, 8).is_some(), "not collected once C was back");
    assert_same_snapshot(&refs, DB, ITEMS);
    assert_no_errors_in_logs(&refs);
}

#[test]
fn a_node_that_left_for_good_is_forgotten() {
    let nodes = three_nodes_heard_with_ten_rows();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let c_id = c.query_value(DB, "SELECT crdt.node_id()");
    c.stop_fast();
    a.sql(DB, "DELETE FROM item WHERE id <= 3");
    let ab = [a, b];
    wait_for_replication_idle(&ab);
    for _ in 0..3 {
        round(&ab);
    }
    assert_eq!((tombstones(a), tombstones(b)), (3, 3), "collected while C was down");
    // C leaves for good: its subscriptions go (and their slots on C with it), then it is
    // forgotten.
    for (node, from) in [(a, c), (b, c)] {
        let name = subscription_name(from, node);
        node.sql(
            DB,
            &format!(
                "ALTER SUBSCRIPTION {name} DISABLE; ALTER SUBSCRIPTION {name} SET (slot_name = NONE);
                 DROP SUBSCRIPTION {name};"
            ),
        );
        node.sql(
            DB,
            &format!("SELECT pg_drop_replication_slot('{}')", subscription_name(node, c)),
        );
        node.sql(DB, &format!("SELECT crdt.forget_node('{c_id}')"));
    }
    assert!(
        rounds_to_collect(&ab, 8).is_some(),
        "not collected once C was forgotten"
    );
    assert_same_snapshot(&ab, DB, ITEMS);
    // A node cannot forget itself.
    let refused = a.try_sql(DB, "SELECT crdt.forget_node(crdt.node_id())");
    assert!(refused.is_err_and(|error| error.contains("cannot forget itself")));
}
