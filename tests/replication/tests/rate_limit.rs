//! Rate limiting on real clusters (docs/rate_limit.md): three nodes hammering one key from
//! every node at once. `shared` admits no more than the limit plus what the other nodes
//! admitted within the replication lag, measured during the run; `split`, with the nodes cut
//! off from each other, never admits more than `max_count` in total; after healing, every node
//! holds the same counts.

use std::thread;
use std::time::{Duration, Instant};

use crdt_replication_tests::*;

const DB: &str = "app";
/// Per calling thread.
const CALLS: usize = 60;
/// Calling threads per node: sessions of one node limiting the same key at once.
const THREADS: usize = 2;

fn three_nodes() -> Vec<Cluster> {
    let nodes = Cluster::start_many(&["a", "b", "c"]);
    for node in &nodes {
        node.create_database_with_crdt(DB);
        node.sql(
            DB,
            "CREATE TABLE probe (id int PRIMARY KEY, at text); SELECT crdt.enable('probe');",
        );
    }
    let refs: Vec<&Cluster> = nodes.iter().collect();
    full_mesh(&refs, DB, &["crdt.rate_limits", "probe"]);
    nodes
}

/// The window `per` falls in now on `node` (to tell whether a run stayed in one window).
fn window(node: &Cluster, per: &str) -> String {
    node.query_value(
        DB,
        &format!("SELECT to_timestamp(floor(extract(epoch FROM now()) / extract(epoch FROM interval '{per}')) * extract(epoch FROM interval '{per}'))"),
    )
}

/// One admitted call: its node, and when it started and returned.
struct Admitted {
    node: usize,
    started: Instant,
    returned: Instant,
}

/// `THREADS` clients per node each call `call` (an SQL expression) `CALLS` times, one call per
/// session and transaction; the admitted calls.
fn hammer(nodes: &[Cluster], call: &str) -> Vec<Admitted> {
    let query = format!("SELECT {call}");
    thread::scope(|scope| {
        let runs: Vec<_> = nodes
            .iter()
            .enumerate()
            .flat_map(|(index, node)| std::iter::repeat_n((index, node), THREADS))
            .map(|(index, node)| {
                let query = &query;
                scope.spawn(move || {
                    let mut admitted = Vec::new();
                    for _ in 0..CALLS {
                        let started = Instant::now();
                        let answer = node.query_value(DB, query);
                        if answer == "t" {
                            admitted.push(Admitted {
                                node: index,
                                started,
                                returned: Instant::now(),
                            });
                        }
                    }
                    admitted
                })
            })
            .collect();
        runs.into_iter().flat_map(|run| run.join().unwrap()).collect()
    })
}

/// Like [`hammer`], but each client sends its `CALLS` calls in one psql session, a transaction
/// each: all of them within a fraction of a second, however loaded the machine. What each node
/// admitted.
fn burst(nodes: &[Cluster], call: &str) -> Vec<usize> {
    let script = format!("SELECT {call};\n").repeat(CALLS);
    thread::scope(|scope| {
        let runs: Vec<Vec<_>> = nodes
            .iter()
            .map(|node| {
                (0..THREADS)
                    .map(|_| {
                        let script = &script;
                        scope.spawn(move || node.sql(DB, script).lines().filter(|answer| *answer == "t").count())
                    })
                    .collect()
            })
            .collect();
        runs.into_iter()
            .map(|clients| clients.into_iter().map(|client| client.join().unwrap()).sum())
            .collect()
    })
}

/// The counts of every key on `node`, as text to compare.
fn counts(node: &Cluster) -> Vec<Vec<String>> {
    node.query_rows(
        DB,
        "SELECT key, sum(count::bigint) FROM crdt.rate_limits GROUP BY key ORDER BY key",
    )
}

/// Every node holds the same counts, `key`'s summing to `total`, and logged no ERROR.
fn assert_every_node_counted(nodes: &[Cluster], key: &str, total: usize) {
    let everywhere = counts(&nodes[0]);
    for node in nodes {
        assert_eq!(counts(node), everywhere, "counts differ on node {}", node.name());
    }
    let sum = format!("SELECT sum(count::bigint) FROM crdt.rate_limits WHERE key = '{key}'");
    assert_eq!(nodes[1].query_value(DB, &sum), total.to_string());
    assert_no_errors_in_logs(&nodes.iter().collect::<Vec<_>>());
}

#[test]
fn shared_admits_at_most_the_limit_plus_what_the_lag_let_through() {
    let nodes = three_nodes();
    let refs: Vec<&Cluster> = nodes.iter().collect();
    const LIMIT: usize = 100;
    for attempt in 0..2 {
        let key = format!("hot-{attempt}");
        let before = window(&nodes[0], "1 day");
        // Meanwhile, the replication lag: a row written on one node, timed until the others
        // have it.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (admitted, lag) = thread::scope(|scope| {
            let prober = scope.spawn(|| {
                let mut worst = Duration::ZERO;
                let mut id = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    id += 1;
                    let from = &nodes[id % 3];
                    let sent = Instant::now();
                    from.sql(DB, &format!("INSERT INTO probe VALUES ({id}, '{attempt}')"));
                    for node in nodes.iter().filter(|node| node.port() != from.port()) {
                        let query = format!("SELECT count(*) FROM probe WHERE id = {id}");
                        assert!(wait_until(Duration::from_secs(60), || node.query_value(DB, &query) == "1"));
                    }
                    worst = worst.max(sent.elapsed());
                    thread::sleep(Duration::from_millis(20));
                }
                worst
            });
            let admitted = hammer(&nodes, &format!("crdt.rate_limit('{key}', {LIMIT}, '1 day')"));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            (admitted, prober.join().unwrap())
        });
        wait_for_replication_idle(&refs);
        if window(&nodes[0], "1 day") != before {
            println!("rate_limit: the run crossed a window boundary; again");
            continue;
        }
        // The last call admitted saw every admission but those of the other nodes that
        // committed within the lag before it decided, or while it did.
        let unseen = admitted
            .iter()
            .map(|call| {
                admitted
                    .iter()
                    .filter(|other| {
                        other.node != call.node
                            && other.returned + lag >= call.started
                            && other.returned <= call.returned
                    })
                    .count()
            })
            .max()
            .unwrap_or(0);
        let total = admitted.len();
        // Sessions of one node deciding at once see each other's credits only once committed:
        // up to THREADS - 1 more per node (docs/rate_limit.md).
        let bound = LIMIT + unseen + 3 * (THREADS - 1);
        println!(
            "rate_limit shared: {} calls on 3 nodes ({THREADS} sessions each), limit {LIMIT}: {total} admitted \
             (over by {}); replication lag up to {lag:?}, within which the others admitted up to {unseen}; \
             bound {bound}",
            3 * THREADS * CALLS,
            total.saturating_sub(LIMIT),
        );
        assert!(total <= bound, "admitted {total}, bound {bound}");
        assert!(total >= LIMIT, "admitted only {total} of {LIMIT}");
        assert_every_node_counted(&nodes, &key, total);
        return;
    }
    panic!("two runs crossed a window boundary");
}

#[test]
fn split_never_admits_more_than_max_count_even_partitioned() {
    let nodes = three_nodes();
    let refs: Vec<&Cluster> = nodes.iter().collect();
    const LIMIT: usize = 90;
    for attempt in 0..2 {
        let key = format!("split-{attempt}");
        let before = window(&nodes[0], "1 day");
        for node in &nodes {
            disable_subscriptions(node);
        }
        // Each node divides by 3 (its two subscriptions plus one), alone.
        let admitted = hammer(
            &nodes,
            &format!("crdt.rate_limit('{key}', {LIMIT}, '1 day', 1, 'split')"),
        );
        let per_node: Vec<usize> = (0..3)
            .map(|node| admitted.iter().filter(|call| call.node == node).count())
            .collect();
        for node in &nodes {
            enable_subscriptions(node);
        }
        wait_for_replication_idle(&refs);
        if window(&nodes[0], "1 day") != before {
            println!("rate_limit: the run crossed a window boundary; again");
            continue;
        }
        let total: usize = per_node.iter().sum();
        println!(
            "rate_limit split: {} calls on 3 nodes cut off from each other ({THREADS} sessions each), \
             limit {LIMIT}: admitted {per_node:?}, {total} in total",
            3 * THREADS * CALLS
        );
        assert!(per_node.iter().all(|admitted| *admitted <= LIMIT / 3), "{per_node:?}");
        assert!(total <= LIMIT);
        // Two sessions may each give back what the other then could not use; never much.
        assert!(total >= LIMIT - 3 * THREADS, "admitted only {total}");
        // Healed: every node holds every node's counts.
        assert_every_node_counted(&nodes, &key, total);
        return;
    }
    panic!("two runs crossed a window boundary");
}

/// Waits for the next `per_seconds` window to begin; its start, in seconds since the epoch.
/// A run started there has a window to itself, with nothing of the one before.
fn next_window(per_seconds: u64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let start = (now.as_secs() / per_seconds + 1) * per_seconds;
    thread::sleep(Duration::from_secs(start) + Duration::from_millis(50) - now);
    start as i64
}

/// Sets `crdt.rate_limit_nodes` on `node` as an operator would: `ALTER SYSTEM` and a reload.
fn set_rate_limit_nodes(node: &Cluster, nodes: u32) {
    node.sql(
        DB,
        &format!("ALTER SYSTEM SET crdt.rate_limit_nodes = {nodes}; SELECT pg_reload_conf();"),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        node.query_value(DB, "SHOW crdt.rate_limit_nodes") == nodes.to_string()
    }));
}

/// What each node admitted for `key` in each window, as `node` holds it: (window start in
/// seconds since the epoch, node id, admitted).
fn admitted_per_window(node: &Cluster, key: &str) -> Vec<(i64, String, usize)> {
    node.query_rows(
        DB,
        &format!(
            "SELECT extract(epoch FROM window_start)::bigint, node::text, sum(count::bigint)
             FROM crdt.rate_limits WHERE key = '{key}' GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    )
    .into_iter()
    .map(|row| (row[0].parse().unwrap(), row[1].clone(), row[2].parse().unwrap()))
    .collect()
}

/// docs/rate_limit.md's procedure: N changes on every node, and a new share governs once two
/// windows have passed. Two nodes share 90 per window (45 each); they lower their share to 30,
/// two windows pass, and a third node joins and takes calls, all three cut off from each other;
/// then it leaves, two windows pass, and the two go back to 45 each. No window ever admits more
/// than 90 in total.
#[test]
fn split_keeps_its_bound_while_a_node_joins_and_leaves() {
    const LIMIT: usize = 90;
    const PER_SECONDS: u64 = 3;
    let key = "join";
    let call = format!("crdt.rate_limit('{key}', {LIMIT}, '{PER_SECONDS} seconds', 1, 'split')");
    let two_windows = Duration::from_secs(2 * PER_SECONDS);
    let nodes = Cluster::start_many(&["a", "b", "c"]);
    for node in &nodes {
        node.create_database_with_crdt(DB);
    }
    let any_origin = SubscriptionOptions {
        origin: Some("any"),
        ..SubscriptionOptions::default()
    };
    let tables = ["crdt.rate_limits"];
    full_mesh_with(&[&nodes[0], &nodes[1]], DB, &tables, &any_origin);
    let ids: Vec<String> = nodes
        .iter()
        .map(|node| node.query_value(DB, "SELECT crdt.node_id()::text"))
        .collect();

    // Two nodes, N derived from one subscription each: 45 each per window.
    let two = next_window(PER_SECONDS);
    assert_eq!(burst(&nodes[..2], &call), [LIMIT / 2; 2]);

    // The join: N = 3 on the two first, two windows, then the third node.
    set_rate_limit_nodes(&nodes[0], 3);
    set_rate_limit_nodes(&nodes[1], 3);
    thread::sleep(two_windows);
    ensure_publication(&nodes[2], DB, PUBLICATION, &tables);
    for old in &nodes[..2] {
        create_subscription(
            old,
            &nodes[2],
            DB,
            &subscription_name(old, &nodes[2]),
            PUBLICATION,
            &any_origin,
        );
        create_subscription(
            &nodes[2],
            old,
            DB,
            &subscription_name(&nodes[2], old),
            PUBLICATION,
            &any_origin,
        );
    }
    set_rate_limit_nodes(&nodes[2], 3);
    for node in &nodes {
        disable_subscriptions(node);
    }
    let three = next_window(PER_SECONDS);
    assert_eq!(burst(&nodes, &call), [LIMIT / 3; 3]);
    for node in &nodes {
        enable_subscriptions(node);
    }
    let refs: Vec<&Cluster> = nodes.iter().collect();
    wait_for_replication_idle(&refs);

    // The leave: the third node stops taking calls and is unsubscribed; two windows later the
    // others go back to N = 2.
    for old in &nodes[..2] {
        old.sql(DB, &format!("DROP SUBSCRIPTION {}", subscription_name(&nodes[2], old)));
        nodes[2].sql(DB, &format!("DROP SUBSCRIPTION {}", subscription_name(old, &nodes[2])));
    }
    thread::sleep(two_windows);
    set_rate_limit_nodes(&nodes[0], 2);
    set_rate_limit_nodes(&nodes[1], 2);
    let two_again = next_window(PER_SECONDS);
    assert_eq!(burst(&nodes[..2], &call), [LIMIT / 2; 2]);
    wait_for_replication_idle(&refs[..2]);

    let windows = admitted_per_window(&nodes[0], key);
    println!("rate_limit split join and leave: admitted per window (start, node, admitted): {windows:?}");
    assert_eq!(
        windows,
        admitted_per_window(&nodes[1], key),
        "the two nodes' counts differ"
    );
    let mut totals = std::collections::BTreeMap::<i64, usize>::new();
    for (start, _, admitted) in &windows {
        *totals.entry(*start).or_default() += admitted;
    }
    assert!(
        totals.values().all(|total| *total <= LIMIT),
        "a window admitted more than {LIMIT}: {totals:?}"
    );
    let admitted = |node: usize, window: i64| {
        windows
            .iter()
            .find(|(start, id, _)| *start == window && *id == ids[node])
            .map_or(0, |(_, _, admitted)| *admitted)
    };
    // Each run, in a window of its own, admitted its share on every node taking calls.
    for (window, shares) in [
        (two, [LIMIT / 2, LIMIT / 2, 0]),
        (three, [LIMIT / 3; 3]),
        (two_again, [LIMIT / 2, LIMIT / 2, 0]),
    ] {
        let got = [0, 1, 2].map(|node| admitted(node, window));
        assert_eq!(got, shares, "window {window}: {windows:?}");
    }
    assert_no_errors_in_logs(&refs);
}

/// Keys at a real size, one transaction each: a node limits 100,000 keys at once, another
/// reads them as replication brought them, a third limits them in `split` mode; every node
/// ends with the same rows.
#[test]
fn a_hundred_thousand_keys_in_one_transaction() {
    const KEYS: usize = 100_000;
    let nodes = three_nodes();
    let refs: Vec<&Cluster> = nodes.iter().collect();
    let admitted = |node: &Cluster, call: &str| -> usize {
        let query = format!("SELECT count(*) FILTER (WHERE {call}) FROM generate_series(1, {KEYS}) g");
        let started = Instant::now();
        let admitted = node.query_value(DB, &query).parse().unwrap();
        println!(
            "rate_limit {KEYS} keys on {}: {call}: {admitted} admitted in {:?}",
            node.name(),
            started.elapsed()
        );
        admitted
    };
    let day = window(&nodes[0], "1 day");
    assert_eq!(admitted(&nodes[0], "crdt.rate_limit('key-' || g, 2, '1 day')"), KEYS);
    wait_for_replication_idle(&refs);
    // Every key holds 1 of 2: a cost of 2 is refused everywhere, a cost of 1 still fits.
    assert_eq!(admitted(&nodes[1], "crdt.rate_limit('key-' || g, 2, '1 day', 2)"), 0);
    assert_eq!(
        admitted(&nodes[1], "crdt.rate_limit_peek('key-' || g, 2, '1 day')"),
        KEYS
    );
    // Split: this node's share of 3 is 1, its own count 0.
    assert_eq!(
        admitted(&nodes[2], "crdt.rate_limit('key-' || g, 3, '1 day', 1, 'split')"),
        KEYS
    );
    wait_for_replication_idle(&refs);
    if window(&nodes[0], "1 day") != day {
        println!("rate_limit: the run crossed a day; the counts are checked all the same");
    }
    let digest = |node: &Cluster| node.query_rows(DB, "SELECT * FROM crdt.digest('crdt.rate_limits', 16)");
    for node in &nodes[1..] {
        assert_eq!(digest(node), digest(&nodes[0]), "rows differ on node {}", node.name());
    }
    let total = nodes[1].query_value(
        DB,
        "SELECT sum(count::bigint) FROM crdt.rate_limits WHERE key LIKE 'key-%'",
    );
    assert_eq!(total, (2 * KEYS).to_string());
    assert_no_errors_in_logs(&refs);
}
