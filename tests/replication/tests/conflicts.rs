//! PostgreSQL's own conflict detection next to the merge. From 18 on, an apply worker that
//! finds a row last written by another origin reports `update_origin_differs` (a LOG line and
//! `pg_stat_subscription_stats.confl_update_origin_differs`) when `track_commit_timestamp` is on,
//! and applies the change anyway, which is where the merge trigger decides. A replicated INSERT
//! of an existing key never reaches PostgreSQL's `insert_exists` check: the merge trigger
//! turns it into an update of the row first. Whatever the setting and the major, the nodes
//! converge and no ERROR is logged.

use std::time::Duration;

use crdt_replication_tests::*;

const DB: &str = "app";

/// The conflict counters of every subscription of `node`, summed (18 and later).
fn conflict_counts(node: &Cluster) -> (i64, i64) {
    let row = node.query_rows(
        DB,
        "SELECT coalesce(sum(confl_update_origin_differs), 0), coalesce(sum(confl_insert_exists), 0)
         FROM pg_stat_subscription_stats",
    );
    (row[0][0].parse().unwrap(), row[0][1].parse().unwrap())
}

fn concurrent_writes_with_commit_timestamps(track_commit_timestamp: &str) {
    let settings = [("track_commit_timestamp", track_commit_timestamp)];
    let (a, b) = (
        Cluster::start_with_settings("a", &settings),
        Cluster::start_with_settings("b", &settings),
    );
    for node in [&a, &b] {
        node.create_database_with_product(DB);
    }
    connect_bidirectional(&a, &b, DB, &["product"]);
    a.sql(DB, "INSERT INTO product VALUES (1, 'widget', 5)");
    wait_for_replication_idle(&[&a, &b]);

    // Each node updates the row the other one wrote last, and both insert key 2.
    write_while_apart(
        &a,
        &b,
        DB,
        "UPDATE product SET name = 'widget v2', inventory = inventory + 5 WHERE id = 1;
         INSERT INTO product VALUES (2, 'from a', 1)",
        "UPDATE product SET inventory = inventory - 1 WHERE id = 1;
         INSERT INTO product VALUES (2, 'from b', 2)",
    );
    wait_for_replication_idle(&[&a, &b]);
    assert_same_snapshot(
        &[&a, &b],
        DB,
        "SELECT id, name, inventory::text, crdt_clock::text FROM product ORDER BY id",
    );
    assert_eq!(
        a.sql(DB, "SELECT id, inventory::bigint FROM product ORDER BY id"),
        "1|9\n2|3"
    );
    assert_no_errors_in_logs(&[&a, &b]);

    if a.major() >= 18 {
        // Reported by the apply workers as they go; the statistics reach the view shortly after.
        let expect_origin_differs = track_commit_timestamp == "on";
        let reported = wait_until(Duration::from_secs(20), || {
            [&a, &b]
                .iter()
                .all(|node| (conflict_counts(node).0 > 0) == expect_origin_differs)
        });
        assert!(
            reported,
            "track_commit_timestamp = {track_commit_timestamp}: update_origin_differs counts {:?}, {:?}",
            conflict_counts(&a),
            conflict_counts(&b)
        );
        assert_eq!(conflict_counts(&a).1 + conflict_counts(&b).1, 0, "insert_exists");
    }
}

#[test]
fn merges_with_track_commit_timestamp_on() {
    concurrent_writes_with_commit_timestamps("on");
}

#[test]
fn merges_with_track_commit_timestamp_off() {
    concurrent_writes_with_commit_timestamps("off");
}
