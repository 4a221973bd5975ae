//! Smoke tests of the harness itself and of `crdt.counter` values travelling through PostgreSQL's
//! logical replication (no CRDT table machinery involved yet: plain one-directional replication).

use std::net::TcpListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crdt_replication_tests::*;

const DB: &str = "app";

const STOCK_SNAPSHOT: &str = "SELECT id, n::text, n::bigint FROM stock ORDER BY id";
const STOCK_BIN_SNAPSHOT: &str = "SELECT id, n::text, n::bigint FROM stock_bin ORDER BY id";

fn create_stock_tables(node: &Cluster) {
    node.create_database_with_crdt(DB);
    node.sql(
        DB,
        "CREATE TABLE stock (id int PRIMARY KEY, n crdt.counter);
         CREATE TABLE stock_bin (id int PRIMARY KEY, n crdt.counter);",
    );
}

/// Inserts and increments on A arrive on B with identical text, over a text-protocol
/// subscription (`stock`) and a binary one (`stock_bin`, through the type's send/receive).
#[test]
fn harness_smoke() {
    let nodes = Cluster::start_many(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    for node in [a, b] {
        create_stock_tables(node);
    }
    ensure_publication(a, DB, "pub_text", &["stock"]);
    ensure_publication(a, DB, "pub_bin", &["stock_bin"]);
    create_subscription(a, b, DB, "sub_a_to_b_text", "pub_text", &SubscriptionOptions::default());
    create_subscription(a, b, DB, "sub_a_to_b_bin", "pub_bin", &SubscriptionOptions::binary());
    assert_eq!(
        b.sql("postgres", "SELECT subname, subbinary FROM pg_subscription ORDER BY 1"),
        "sub_a_to_b_bin|t\nsub_a_to_b_text|f"
    );

    for table in ["stock", "stock_bin"] {
        a.sql(
            DB,
            &format!(
                "SET search_path = public, crdt;
                 INSERT INTO {table} VALUES (1, 10), (2, 0), (3, -7), (4, NULL), (5, 1);
                 UPDATE {table} SET n = n OPERATOR(crdt.+) 5 WHERE id = 1;
                 BEGIN;
                 UPDATE {table} SET n = n + 3 WHERE id = 2;
                 UPDATE {table} SET n = n - 1 WHERE id = 2;
                 UPDATE {table} SET n = n + 1 WHERE id IN (3, 5);
                 COMMIT;
                 DELETE FROM {table} WHERE id = 5;"
            ),
        );
    }
    wait_for_replication_idle(&[a, b]);

    let expected = a.sql(DB, "SELECT id, n::bigint FROM stock ORDER BY id");
    assert_eq!(expected, "1|15\n2|2\n3|-6\n4|");
    assert_eq!(a.sql(DB, "SELECT id, n::bigint FROM stock_bin ORDER BY id"), expected);
    assert_same_snapshot(&[a, b], DB, STOCK_SNAPSHOT);
    assert_same_snapshot(&[a, b], DB, STOCK_BIN_SNAPSHOT);
    // Both columns went through the same writes: same counter texts on every node.
    assert_eq!(
        table_snapshot(b, DB, "SELECT id, n::text FROM stock ORDER BY id"),
        table_snapshot(b, DB, "SELECT id, n::text FROM stock_bin ORDER BY id")
    );

    assert_no_errors_in_logs(&[a, b]);
}

/// Cutting B off (disabling its subscription) holds A's writes back; enabling it delivers them.
#[test]
fn partition_and_heal_smoke() {
    let nodes = Cluster::start_many(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    for node in [a, b] {
        create_stock_tables(node);
    }
    let subscription = connect_one_way(a, b, DB, &["stock"]);
    a.sql(DB, "INSERT INTO stock VALUES (1, 1), (2, 2)");
    wait_for_replication_idle(&[a, b]);
    assert_same_snapshot(&[a, b], DB, STOCK_SNAPSHOT);

    disable_subscriptions(b);
    let before_partition = table_snapshot(b, DB, STOCK_SNAPSHOT);
    a.sql(
        DB,
        "SET search_path = public, crdt;
         INSERT INTO stock VALUES (3, 30);
         UPDATE stock SET n = n + 100 WHERE id = 1;
         DELETE FROM stock WHERE id = 2;",
    );
    // Give a (wrongly) still running apply worker ample time to deliver.
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        table_snapshot(b, DB, STOCK_SNAPSHOT),
        before_partition,
        "B changed while cut off"
    );
    assert_eq!(
        a.sql(
            "postgres",
            &format!(
                "SELECT active, confirmed_flush_lsn < pg_current_wal_lsn() \
                 FROM pg_replication_slots WHERE slot_name = '{subscription}'"
            )
        ),
        "f|t",
        "B's slot on A should be idle, holding A's new changes"
    );
    // Waiting for idle ignores the disabled subscription instead of hanging.
    wait_for_replication_idle_within(&[a, b], Duration::from_secs(20));

    enable_subscriptions(b);
    wait_for_replication_idle(&[a, b]);
    assert_same_snapshot(&[a, b], DB, STOCK_SNAPSHOT);
    assert_eq!(b.sql(DB, "SELECT id, n::bigint FROM stock ORDER BY id"), "1|101\n3|30");

    assert_no_errors_in_logs(&[a, b]);
}

/// Crashing the publisher or the subscriber (`pg_ctl stop -m immediate`) and starting it again
/// loses nothing: the slot and the subscriber's replication origin pick up where they were.
#[test]
fn crash_and_restart_smoke() {
    let nodes = Cluster::start_many(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    for node in [a, b] {
        create_stock_tables(node);
    }
    connect_one_way(a, b, DB, &["stock"]);
    a.sql(DB, "INSERT INTO stock VALUES (1, 1)");
    wait_for_replication_idle(&[a, b]);

    a.stop_immediate();
    // Acknowledged commits survive the crash (synchronous_commit = on).
    a.start_again();
    a.sql(
        DB,
        "SET search_path = public, crdt; UPDATE stock SET n = n + 1 WHERE id = 1",
    );
    b.stop_immediate();
    a.sql(DB, "SET search_path = public, crdt; INSERT INTO stock VALUES (2, 20)");
    // A stopped node is left out instead of being waited for.
    wait_for_replication_idle(&[a, b]);
    b.start_again();
    a.sql(DB, "SET search_path = public, crdt; UPDATE stock SET n = n + 1");
    wait_for_replication_idle(&[a, b]);

    assert_same_snapshot(&[a, b], DB, STOCK_SNAPSHOT);
    assert_eq!(b.sql(DB, "SELECT id, n::bigint FROM stock ORDER BY id"), "1|3\n2|21");
    assert_no_errors_in_logs_except(&[a, b], PEER_DOWN_LOG_NOISE);
}

/// Three nodes, each subscribed to the two others with `origin = any`, as PostgreSQL 15 always
/// is: each re-publishes what it applies: a DELETE dies out (the echo finds no row), an INSERT comes back as a
/// unique violation that stops the apply worker for good, which the wait reports. That is the
/// loop the extension's merge trigger has to break.
#[test]
fn full_mesh_smoke() {
    let nodes = Cluster::start_many(&["a", "b", "c"]);
    let all: Vec<&Cluster> = nodes.iter().collect();
    for node in &all {
        node.create_database(DB);
        node.sql(
            DB,
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 5) i;",
        );
    }
    // Every major as 15: what the nodes apply, they publish again.
    let echoing = SubscriptionOptions {
        origin: Some("any"),
        ..SubscriptionOptions::default()
    };
    let mut subscriptions = full_mesh_with(&all, DB, &["t"], &echoing);
    subscriptions.sort();
    assert_eq!(
        subscriptions,
        [
            "sub_a_to_b",
            "sub_a_to_c",
            "sub_b_to_a",
            "sub_b_to_c",
            "sub_c_to_a",
            "sub_c_to_b"
        ]
    );
    wait_for_replication_idle(&all);

    all[0].sql(DB, "DELETE FROM t WHERE id = 1");
    all[1].sql(DB, "DELETE FROM t WHERE id IN (2, 3)");
    wait_for_replication_idle(&all);
    assert_same_snapshot(&all, DB, "SELECT id, v FROM t ORDER BY id");
    assert_eq!(table_snapshot(all[2], DB, "SELECT id FROM t ORDER BY id"), "4\n5");
    assert_no_errors_in_logs(&all);

    all[0].sql(DB, "INSERT INTO t VALUES (6, 'loops')");
    let outcome = catch_unwind(|| {
        wait_for_replication_idle_within(&all, Duration::from_secs(3));
    });
    let message = *outcome
        .expect_err("an echoed INSERT cannot become idle")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("did not become idle"), "{message}");
    assert!(
        all.iter()
            // 23505, worded differently from 18 on ("conflict detected ... insert_exists").
            .any(|n| n.log_errors().iter().any(|l| l.contains(" 23505 ERROR:"))),
        "{message}"
    );
}

/// A cluster owned by a panicking test is stopped and its directory removed during unwinding.
#[test]
fn cluster_cleans_up_when_a_test_panics() {
    let observed: Mutex<Option<(PathBuf, u16, u32)>> = Mutex::new(None);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let cluster = Cluster::start("doomed");
        assert_eq!(cluster.sql("postgres", "SELECT 40 + 2"), "42");
        let pid = cluster.postmaster_pid().expect("postmaster.pid");
        *observed.lock().unwrap() = Some((cluster.dir().to_path_buf(), cluster.port(), pid));
        panic!("deliberate panic while a cluster is running");
    }));
    assert!(outcome.is_err(), "the closure should have panicked");
    let (dir, port, pid) = observed.lock().unwrap().clone().expect("the cluster started");

    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("postgres"),
        "postmaster {pid} still runs"
    );
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} is still taken"
    );
    if std::env::var_os("CRDT_KEEP_CLUSTERS").is_some() {
        // Kept on purpose for debugging: clean up here instead.
        assert!(dir.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    } else {
        assert!(!Path::new(&dir).exists(), "{} still exists", dir.display());
    }
}

/// `sql`, `query_rows`, `try_sql` and `log_errors` behave as documented.
#[test]
fn harness_sql_helpers() {
    let node = Cluster::start("solo");
    assert_eq!(node.sql("postgres", "SELECT 1; SELECT 2, 'x'"), "1\n2|x");
    assert_eq!(
        node.query_rows(
            "postgres",
            "SELECT 1, 'a|b', NULL UNION ALL SELECT 2, E'two\\nlines', '' ORDER BY 1"
        ),
        vec![
            vec!["1".to_string(), "a|b".to_string(), String::new()],
            vec!["2".to_string(), "two\nlines".to_string(), String::new()],
        ]
    );
    assert_eq!(
        node.query_rows("postgres", "SELECT 1 WHERE false"),
        Vec::<Vec<String>>::new()
    );
    assert_eq!(node.query_rows("postgres", "SELECT NULL"), vec![vec![String::new()]]);
    assert_eq!(node.query_value("postgres", "SELECT 'v'"), "v");

    // CREATE SUBSCRIPTION-like statements refuse transaction blocks: the script is sent
    // statement by statement, so this works.
    node.create_database("other");
    node.sql("other", "CREATE TABLE t (i int); VACUUM t; INSERT INTO t VALUES (1);");

    assert!(node.log_errors().is_empty(), "{:?}", node.log_errors());
    let error = node.try_sql("postgres", "SELECT * FROM no_such_table").unwrap_err();
    assert!(error.contains("no_such_table"), "{error}");
    let caught = catch_unwind(|| node.sql("postgres", "SELECT 1/0"));
    let message = *caught.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("division by zero") && message.contains("SELECT 1/0"),
        "{message}"
    );
    let logged = node.log_errors();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_no_errors_in_logs_except(&[&node], &["no_such_table", "division by zero"]);

    // Crash and restart keep the data.
    node.stop_immediate();
    assert!(!node.is_running());
    node.start_again();
    assert_eq!(node.sql("other", "SELECT count(*) FROM t"), "1");
}
