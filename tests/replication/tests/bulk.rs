//! Real-sized work (the README's "Any size works"): transactions of many rows on a CRDT table
//! with a counter, a doc and a text column, at PostgreSQL's default lock settings, locally and
//! replicated over text, binary and streaming subscriptions; a primary key moved on one node
//! while the old row is updated on another; TRUNCATE refused, and never echoed; dump and
//! restore with `pg_restore -j 2`.
//!
//! `CRDT_BULK_ROWS` sets the size (default 200,000: past the ~10,000 keys where a lock per key
//! ran the shared lock table out, and affordable for CI on a debug build); `scripts/bench_bulk.sh`
//! times the same statements (100,000 rows by default, `BENCH_BULK_ROWS=1000000` for a million).

use std::time::{Duration, Instant};

use crdt_replication_tests::*;

const DB: &str = "app";
const TABLE: &str = "CREATE TABLE item (id int PRIMARY KEY, n crdt.counter NOT NULL DEFAULT 0,
                                        d crdt.doc, s text);
                     SELECT crdt.enable('item');";
/// One digest of every row, value and stamp: equal on two nodes exactly when their rows are.
const DIGEST: &str = "SELECT count(*) || ' ' || coalesce(md5(string_agg(i::text, ',' ORDER BY id)), '') FROM item i";

fn rows() -> i64 {
    std::env::var("CRDT_BULK_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(200_000)
}

fn timed(what: &str, work: impl FnOnce()) {
    let start = Instant::now();
    work();
    eprintln!("bulk: {what}: {:.1} s", start.elapsed().as_secs_f64());
}

/// Waits for every node to catch up, with time for a debug build to apply big transactions.
fn settle(nodes: &[&Cluster]) {
    wait_for_replication_idle_within(nodes, Duration::from_secs(900));
}

fn assert_same_rows(nodes: &[&Cluster]) {
    assert_same_snapshot(nodes, DB, DIGEST);
    assert_same_snapshot(
        nodes,
        DB,
        "SELECT table_name, count(*) FROM crdt.deletions GROUP BY 1 ORDER BY 1",
    );
}

/// Every subscription of `node` still has its apply worker (none stopped on an error).
fn assert_streaming(node: &Cluster) {
    let stopped = node.query_value(
        DB,
        "SELECT count(*) FROM pg_subscription s LEFT JOIN pg_stat_subscription w
           ON w.subid = s.oid AND w.relid IS NULL WHERE w.pid IS NULL",
    );
    assert_eq!(stopped, "0", "a subscription of {} has no apply worker", node.name());
}

/// A and B replicate both ways over text; C subscribes to A over binary with `streaming = on`.
/// Each of INSERT, UPDATE and DELETE of every row runs on A as one transaction.
#[test]
fn big_transactions_apply_over_text_binary_and_streaming() {
    let rows = rows();
    // C's subscription streams (streaming = on): PostgreSQL 15 replays a streamed transaction
    // at its commit without answering keepalives, so A's walsender waits as long as the replay
    // takes, as the README's guide says to set up for transactions of millions of rows.
    let a = Cluster::start_with_settings("a", &[("wal_sender_timeout", "'10min'")]);
    let others = Cluster::start_many(&["b", "c"]);
    let (a, b, c) = (&a, &others[0], &others[1]);
    for node in [a, b, c] {
        node.create_database_with_crdt(DB);
        node.sql(DB, TABLE);
        assert_eq!(node.query_value(DB, "SHOW max_locks_per_transaction"), "64");
    }
    connect_bidirectional(a, b, DB, &["item"]);
    create_subscription(
        a,
        c,
        DB,
        &subscription_name(a, c),
        PUBLICATION,
        &SubscriptionOptions {
            binary: true,
            streaming: true,
            ..SubscriptionOptions::default()
        },
    );
    let all = [a, b, c];

    timed("INSERT ... SELECT on A, applied on B and C", || {
        a.sql(
            DB,
            &format!(
                "INSERT INTO item (id, n, d, s) SELECT g, g % 100, crdt.patch(NULL, jsonb_build_object('g', g)), 'row ' || g
                 FROM generate_series(1, {rows}) g"
            ),
        );
        settle(&all);
    });
    assert_eq!(b.query_value(DB, "SELECT count(*) FROM item"), rows.to_string());
    assert_same_rows(&all);

    timed("UPDATE of every row on A, applied on B and C", || {
        a.sql(
            DB,
            "UPDATE item SET n = n OPERATOR(crdt.+) 1, d = crdt.add(d, 'sold', 1), s = s || ' v2'",
        );
        settle(&all);
    });
    assert_same_rows(&all);
    assert_eq!(
        c.query_value(DB, "SELECT sum(n::bigint) FROM item"),
        (rows / 100 * 4950 + (1..=rows % 100).sum::<i64>() + rows).to_string()
    );

    // Both sides write every row while the link is down: the merge decides each one.
    write_while_apart(
        a,
        b,
        DB,
        "UPDATE item SET n = n OPERATOR(crdt.+) 5",
        "UPDATE item SET n = n OPERATOR(crdt.-) 1, s = 'b wrote'",
    );
    timed("concurrent UPDATEs of every row on A and B, merged", || settle(&all));
    assert_same_snapshot(&[a, b], DB, DIGEST);
    assert_eq!(
        a.query_value(DB, "SELECT count(*) FROM item WHERE s = 'b wrote'"),
        rows.to_string()
    );

    timed("DELETE of every row on A, applied on B and C", || {
        a.sql(DB, "DELETE FROM item");
        settle(&all);
    });
    for node in all {
        assert_eq!(
            node.query_value(DB, "SELECT count(*) FROM item"),
            "0",
            "on {}",
            node.name()
        );
        assert_eq!(
            node.query_value(DB, "SELECT count(*) FROM crdt.deletions"),
            rows.to_string()
        );
    }
    for node in all {
        assert_streaming(node);
    }
    assert_no_errors_in_logs(&all);
}

/// COPY in text and binary, and a transaction mixing every kind of write, on one node with
/// default settings.
#[test]
fn copy_and_mixed_transactions_of_every_size_on_one_node() {
    let rows = rows();
    let node = Cluster::start("solo");
    node.create_database_with_crdt(DB);
    node.sql(DB, TABLE);
    node.sql(
        DB,
        &format!(
            "CREATE TABLE source AS SELECT g AS id, (g % 7)::bigint::crdt.counter AS n,
                    crdt.patch(NULL, jsonb_build_object('g', g)) AS d, 'row ' || g AS s
             FROM generate_series(1, {rows}) g"
        ),
    );
    let dir = node.dir().to_str().expect("utf-8 path").to_string();
    for format in ["text", "binary"] {
        let file = format!("{dir}/item.{format}");
        timed(&format!("COPY FROM ({format})"), || {
            node.sql(
                DB,
                &format!(
                    "COPY (SELECT id, n, d, s FROM source) TO '{file}' (FORMAT {format});
                     DELETE FROM item;
                     COPY item (id, n, d, s) FROM '{file}' (FORMAT {format});"
                ),
            );
        });
        assert_eq!(
            node.query_value(DB, "SELECT count(*) FROM item WHERE crdt_clock IS NOT NULL"),
            rows.to_string()
        );
    }
    timed("a transaction of inserts, updates and deletes", || {
        node.sql(
            DB,
            &format!(
                "BEGIN;
                 INSERT INTO item (id, s) SELECT g, 'new' FROM generate_series({rows} + 1, 2 * {rows}) g;
                 UPDATE item SET n = n OPERATOR(crdt.+) 1 WHERE id % 2 = 0;
                 DELETE FROM item WHERE id % 3 = 0;
                 INSERT INTO item (id, s) SELECT g, 'again' FROM generate_series(3, {rows}, 3) g;
                 COMMIT;"
            ),
        );
    });
    // 2·rows keys, a third of them deleted, the deleted third of the first rows inserted again.
    assert_eq!(
        node.query_value(DB, "SELECT count(*) FROM item"),
        (2 * rows - 2 * rows / 3 + rows / 3).to_string()
    );
    // Every key inserted again after its delete records the delete it saw.
    assert_eq!(
        node.query_value(
            DB,
            "SELECT count(*) FROM item WHERE s = 'again' AND crdt_clock::text LIKE '%\"\": [%'"
        ),
        (rows / 3).to_string()
    );
    assert_no_errors_in_logs(&[&node]);
}

/// A key moved on A (delete and insert, as the error's hint says) while B updates the old row:
/// the delete wins over the update it had not seen, the new key is a new row, on both.
#[test]
fn moving_a_key_while_another_node_updates_the_row_converges() {
    let nodes = Cluster::start_many(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    for node in [a, b] {
        node.create_database_with_crdt(DB);
        node.sql(DB, TABLE);
    }
    connect_bidirectional(a, b, DB, &["item"]);
    a.sql(DB, "INSERT INTO item (id, n, s) VALUES (5, 10, 'five')");
    wait_for_replication_idle(&[a, b]);
    let refused = a.try_sql(DB, "\\set VERBOSITY verbose\nUPDATE item SET id = 1005 WHERE id = 5");
    assert!(refused.as_ref().is_err_and(|err| err.contains("0A000")), "{refused:?}");

    write_while_apart(
        a,
        b,
        DB,
        "BEGIN;
         INSERT INTO item (id, n, s) SELECT 1005, n::bigint, s FROM item WHERE id = 5;
         DELETE FROM item WHERE id = 5;
         COMMIT;",
        "UPDATE item SET s = 'b renamed', n = n OPERATOR(crdt.+) 1 WHERE id = 5",
    );
    wait_for_replication_idle(&[a, b]);
    for node in [a, b] {
        assert_eq!(
            node.query_value(DB, "SELECT string_agg(id || ':' || s, ',' ORDER BY id) FROM item"),
            "1005:five"
        );
    }
    assert_same_rows(&[a, b]);
    assert_no_errors_in_logs_except(&[a, b], &["cannot change the primary key"]);
}

/// TRUNCATE of a CRDT table is refused, whether the publication publishes TRUNCATE (PostgreSQL's
/// default) or not (the README's guide); a TRUNCATE run anyway after `crdt.disable`, under the
/// guide's publication, stays on its node and nothing echoes.
#[test]
fn truncate_is_refused_and_never_echoes() {
    let nodes = Cluster::start_many(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    for node in [a, b] {
        node.create_database_with_crdt(DB);
        node.sql(DB, TABLE);
        node.sql(
            DB,
            "CREATE TABLE other (id int PRIMARY KEY, v text); SELECT crdt.enable('other');",
        );
        // PostgreSQL's default: publish = 'insert, update, delete, truncate'.
        node.sql(DB, "CREATE PUBLICATION with_truncate FOR TABLE other");
    }
    connect_bidirectional(a, b, DB, &["item"]);
    for (from, to) in [(a, b), (b, a)] {
        create_subscription(
            from,
            to,
            DB,
            &format!("truncating_{}_to_{}", from.name(), to.name()),
            "with_truncate",
            &SubscriptionOptions::default(),
        );
    }
    a.sql(
        DB,
        "INSERT INTO item (id, s) SELECT g, 'x' FROM generate_series(1, 100) g; INSERT INTO other VALUES (1, 'x')",
    );
    wait_for_replication_idle(&[a, b]);

    for table in ["item", "other"] {
        let refused = a.try_sql(DB, &format!("\\set VERBOSITY verbose\nTRUNCATE {table}"));
        assert!(
            refused.as_ref().is_err_and(|err| err.contains("0A000")),
            "{table}: {refused:?}"
        );
    }
    a.sql(DB, "SELECT crdt.disable('item'); TRUNCATE item;");
    let wal_before = [a, b].map(|node| parse_lsn(&node.query_value(DB, "SELECT pg_current_wal_lsn()")).unwrap_or(0));
    std::thread::sleep(Duration::from_secs(3));
    let wal_after = [a, b].map(|node| parse_lsn(&node.query_value(DB, "SELECT pg_current_wal_lsn()")).unwrap_or(0));
    for (before, after) in wal_before.iter().zip(&wal_after) {
        assert!(
            after - before < 64 * 1024,
            "WAL grew by {} bytes in 3 idle seconds",
            after - before
        );
    }
    assert_eq!(a.query_value(DB, "SELECT count(*) FROM item"), "0");
    assert_eq!(b.query_value(DB, "SELECT count(*) FROM item"), "100");
    assert_eq!(b.query_value(DB, "SELECT count(*) FROM other"), "1");
    assert_no_errors_in_logs_except(&[a, b], &["cannot truncate CRDT table"]);
}

/// `pg_dump -Fc` and `pg_restore -j 2` of a database with a big CRDT table into a fresh
/// instance: every value, stamp and tombstone the same; the restored node then merges.
#[test]
fn dump_and_parallel_restore_at_size() {
    let rows = rows();
    let nodes = Cluster::start_many(&["origin", "restored"]);
    let (origin, restored) = (&nodes[0], &nodes[1]);
    origin.create_database_with_crdt(DB);
    origin.sql(DB, TABLE);
    origin.sql(
        DB,
        &format!(
            "INSERT INTO item (id, n, d, s) SELECT g, g % 10, crdt.patch(NULL, jsonb_build_object('g', g)), 'row ' || g
             FROM generate_series(1, {rows}) g;
             UPDATE item SET n = n OPERATOR(crdt.+) 1 WHERE id % 2 = 0;
             DELETE FROM item WHERE id % 10 = 0;"
        ),
    );
    let dump = origin.dir().join("app.dump");
    timed("pg_dump -Fc", || origin.dump(DB, &dump));
    restored.create_database(DB);
    timed("pg_restore -j 2", || restored.restore(DB, &dump, 2));
    assert_same_rows(&[origin, restored]);
    assert_same_snapshot(
        &[origin, restored],
        DB,
        "SELECT md5(string_agg(d::text, ',' ORDER BY d::text)) FROM crdt.deletions d",
    );

    connect_bidirectional(origin, restored, DB, &["item"]);
    origin.sql(DB, "UPDATE item SET n = n OPERATOR(crdt.+) 10 WHERE id = 1");
    restored.sql(DB, "UPDATE item SET s = 'restored wrote' WHERE id = 1");
    wait_for_replication_idle(&[origin, restored]);
    for node in [origin, restored] {
        assert_eq!(
            node.query_value(DB, "SELECT n::bigint || ' ' || s FROM item WHERE id = 1"),
            "11 restored wrote"
        );
    }
    assert_same_rows(&[origin, restored]);
    assert_no_errors_in_logs(&[origin, restored]);
}
