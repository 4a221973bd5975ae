//! Chaos convergence (issue 6, item 1): three PostgreSQL instances (of one major, or mixed:
//! `CRDT_CHAOS_MAJORS`) in a full mesh of
//! subscriptions, thousands of random writes on random nodes — counter increments and
//! assignments, column updates, doc patch/put/add/remove, inserts of colliding keys, deletes —
//! while one node is partitioned (its subscriptions disabled, then enabled) and another node is
//! crashed (`pg_ctl stop -m immediate`) in the middle of a batch and restarted. After healing:
//!
//! - every node holds the same rows, values and stamps (`crdt_clock`, the full text form of the
//!   counters and docs, `crdt.stamps(attrs)`);
//! - every counter of a key that is never deleted equals the sum of the amounts written to it by
//!   transactions that committed (increments, the initial value of each committed insert, and
//!   for `SET qty = v` the difference `v - value read under the row lock`);
//! - no server log holds an ERROR, except the connection failures of subscribers whose publisher
//!   was down.
//!
//! Which writes committed is known exactly, crash included: every write statement also records
//! itself, in the same transaction, in a local `ledger` table that is not replicated (a write
//! whose row did not exist records nothing). A transaction cut by the crash is in the ledger iff
//! it committed.
//!
//! Seeded and reproducible in what it does (`CRDT_CHAOS_SEED`, `CRDT_CHAOS_OPS`); the
//! interleaving with replication is up to the machine. The seed is printed at the start and again
//! when the test fails.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use crdt_replication_tests::*;

const DB: &str = "app";
const DEFAULT_SEED: u64 = 0x5EED_C4D7;
const DEFAULT_OPS: usize = 20_000;
/// Operations per round, spread over the nodes that are up; each node runs its share as one
/// `psql` script, all nodes at the same time.
const OPS_PER_ROUND: usize = 60;
/// The crash round has this many times the operations of the others.
const CRASH_ROUND_LENGTH: usize = 8;
/// Keys `1..=STABLE_KEYS` are never deleted: their counters must equal the committed sums.
const STABLE_KEYS: i32 = 48;
/// Stable keys that exist before the chaos starts. The others are introduced one by one during
/// the run, each inserted on two or three nodes at once (colliding inserts, merged).
const INITIAL_KEYS: i32 = 12;
/// Keys `STABLE_KEYS+1..=ALL_KEYS` are inserted, deleted and inserted again at random.
const ALL_KEYS: i32 = 64;

const SCHEMA: &str = "
    ALTER DATABASE app SET search_path = public, crdt;
    CREATE TABLE items (id int PRIMARY KEY, label text,
                        qty crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
    SELECT crdt.enable('items');
    -- Not published: what committed on this node, written in the same transaction as the write.
    CREATE TABLE ledger (op bigint PRIMARY KEY, key int NOT NULL, kind text NOT NULL,
                         delta bigint NOT NULL);";

const ROWS: &str = "SELECT id, label, qty::text, attrs::text, crdt_clock::text FROM items ORDER BY id";
const DOC_STAMPS: &str = "SELECT i.id, s.key, s.kind, s.hlc, s.node \
                          FROM items i, crdt.stamps(i.attrs) s ORDER BY 1, 2 NULLS FIRST, 3, 4, 5";

/// splitmix64: small, fast, and good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn env_or<T>(name: &str, default: T, parse: impl Fn(&str) -> Option<T>) -> T {
    match std::env::var(name) {
        Ok(text) => parse(text.trim()).unwrap_or_else(|| panic!("{name}={text}: not a valid value")),
        Err(_) => default,
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Prints the seed and how to rerun when the test fails (dropped last, so after the clusters'
/// own messages).
struct SeedReport {
    seed: u64,
    ops: usize,
}

impl Drop for SeedReport {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "\nchaos test FAILED with CRDT_CHAOS_SEED={:#x} CRDT_CHAOS_OPS={}; rerun with:\n  \
                 CRDT_CHAOS_SEED={:#x} CRDT_CHAOS_OPS={} CRDT_KEEP_CLUSTERS=1 \
                 cargo test -p crdt-replication-tests --test chaos -- --nocapture\n",
                self.seed, self.ops, self.seed, self.ops
            );
        }
    }
}

/// One write, as generated from the seed.
#[derive(Clone, Debug)]
enum Write {
    /// `qty = qty + amount` (or `- -amount`).
    Increment {
        amount: i64,
    },
    /// `qty = value`, recorded as `value - qty` read under the row lock.
    Assign {
        value: i64,
    },
    /// `label = ...` (possibly NULL).
    Label {
        label: Option<String>,
    },
    Patch {
        json: String,
    },
    Put {
        json: String,
    },
    DocAdd {
        amount: String,
    },
    DocRemove {
        property: &'static str,
    },
    /// `INSERT ... ON CONFLICT (id) DO NOTHING`.
    Insert {
        label: Option<String>,
        qty: i64,
        attrs: Option<String>,
    },
    Delete,
}

#[derive(Clone, Debug)]
struct Op {
    id: u64,
    key: i32,
    write: Write,
}

/// A transaction of one to three writes, in key order (so that no two transactions lock rows
/// in opposite orders: the test must not provoke deadlocks, which would be ERRORs of its own).
#[derive(Clone, Debug)]
struct Transaction {
    put_mode: bool,
    ops: Vec<Op>,
}

const COLORS: &[&str] = &["red", "green", "blue", "black", "white"];
const DOC_PROPERTIES: &[&str] = &["color", "tag", "n"];

fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn sql_opt_text(text: &Option<String>) -> String {
    text.as_deref().map(sql_text).unwrap_or_else(|| "NULL".to_owned())
}

/// A JSON object for `patch`/`put`: `color` and `tag` hold strings, `n` only numbers (so that
/// `crdt.add(attrs, 'n', ...)` never meets a non-number, which would be an error); `null`
/// removes a property in a patch.
fn random_doc(rng: &mut Rng, op: u64, allow_null: bool) -> String {
    let mut fields = Vec::new();
    for property in DOC_PROPERTIES {
        if !rng.percent(55) {
            continue;
        }
        let value = if allow_null && rng.percent(12) {
            "null".to_owned()
        } else {
            match *property {
                "color" => format!("\"{}\"", rng.pick(COLORS)),
                "tag" => format!("\"t{op}\""),
                _ if rng.percent(20) => format!("{}.{}", rng.between(0, 20), rng.between(1, 99)),
                _ => rng.between(-5, 30).to_string(),
            }
        };
        fields.push(format!("\"{property}\": {value}"));
    }
    format!("{{{}}}", fields.join(", "))
}

fn random_label(rng: &mut Rng, node: &str, op: u64) -> Option<String> {
    (!rng.percent(8)).then(|| format!("{node}-{op}"))
}

fn random_write(rng: &mut Rng, node: &str, op: u64, key: i32) -> Write {
    let roll = rng.below(100);
    match roll {
        0..=29 => Write::Increment {
            amount: rng.between(-5, 10),
        },
        30..=37 => Write::Assign {
            value: rng.between(0, 60),
        },
        38..=47 => Write::Label {
            label: random_label(rng, node, op),
        },
        48..=59 => Write::Patch {
            json: random_doc(rng, op, true),
        },
        60..=63 => Write::Put {
            json: random_doc(rng, op, false),
        },
        64..=74 => Write::DocAdd {
            amount: if rng.percent(20) {
                format!("{}.{}", rng.between(-2, 3), rng.between(0, 9))
            } else {
                rng.between(-3, 6).to_string()
            },
        },
        75..=77 => Write::DocRemove {
            property: rng.pick::<&str>(DOC_PROPERTIES),
        },
        78..=91 => Write::Insert {
            label: random_label(rng, node, op),
            qty: rng.between(0, 20),
            attrs: rng.percent(70).then(|| random_doc(rng, op, false)),
        },
        _ if key > STABLE_KEYS => Write::Delete,
        _ => Write::Increment {
            amount: rng.between(1, 3),
        },
    }
}

/// One statement (or two, for an assignment) that performs the write and, if it touched a row,
/// records it in `ledger` — in the same transaction.
fn write_sql(op: &Op) -> String {
    let (id, key) = (op.id, op.key);
    let update = |set: String, kind: &str, delta: i64| {
        format!(
            "WITH w AS (UPDATE items SET {set} WHERE id = {key} RETURNING id) \
             INSERT INTO ledger SELECT {id}, id, '{kind}', {delta} FROM w;\n"
        )
    };
    match &op.write {
        Write::Increment { amount } if *amount < 0 => update(format!("qty = qty - {}", -amount), "inc", *amount),
        Write::Increment { amount } => update(format!("qty = qty + {amount}"), "inc", *amount),
        Write::Assign { value } => format!(
            "INSERT INTO ledger SELECT {id}, id, 'assign', {value} - qty::bigint \
             FROM items WHERE id = {key} FOR UPDATE;\n\
             UPDATE items SET qty = {value} WHERE id = {key};\n"
        ),
        Write::Label { label } => update(format!("label = {}", sql_opt_text(label)), "label", 0),
        Write::Patch { json } => update(format!("attrs = crdt.patch(attrs, {})", sql_text(json)), "patch", 0),
        Write::Put { json } => update(format!("attrs = crdt.put(attrs, {})", sql_text(json)), "put", 0),
        Write::DocAdd { amount } => update(format!("attrs = crdt.add(attrs, 'n', {amount})"), "add", 0),
        Write::DocRemove { property } => update(format!("attrs = crdt.remove(attrs, '{property}')"), "remove", 0),
        Write::Insert { label, qty, attrs } => {
            let attrs = attrs
                .as_ref()
                .map(|json| format!("crdt.patch(NULL, {})", sql_text(json)))
                .unwrap_or_else(|| "NULL".to_owned());
            format!(
                "WITH w AS (INSERT INTO items (id, label, qty, attrs) VALUES ({key}, {}, {qty}, {attrs}) \
                 ON CONFLICT (id) DO NOTHING RETURNING id) \
                 INSERT INTO ledger SELECT {id}, id, 'insert', {qty} FROM w;\n",
                sql_opt_text(label)
            )
        }
        Write::Delete => format!(
            "WITH w AS (DELETE FROM items WHERE id = {key} RETURNING id) \
             INSERT INTO ledger SELECT {id}, id, 'delete', 0 FROM w;\n"
        ),
    }
}

fn transaction_sql(transaction: &Transaction) -> String {
    let body: String = transaction.ops.iter().map(write_sql).collect();
    let single_statement = transaction.ops.len() == 1 && !matches!(transaction.ops[0].write, Write::Assign { .. });
    if single_statement && !transaction.put_mode {
        return body;
    }
    let put_mode = if transaction.put_mode {
        "SET LOCAL crdt.write_mode = put;\n"
    } else {
        ""
    };
    format!("BEGIN;\n{put_mode}{body}COMMIT;\n")
}

/// The faults of a run, as round numbers, and which nodes they hit.
struct Schedule {
    rounds: usize,
    partitioned: usize,
    partition_from: usize,
    partition_until: usize,
    crashed: usize,
    crash_round: usize,
    crash_after: Duration,
    restart_round: usize,
}

impl Schedule {
    fn new(rng: &mut Rng, ops: usize) -> Schedule {
        let rounds = ops.div_ceil(OPS_PER_ROUND).max(10);
        Schedule {
            rounds,
            partitioned: rng.below(3) as usize,
            partition_from: rounds * 15 / 100,
            partition_until: rounds * 40 / 100,
            crashed: rng.below(3) as usize,
            crash_round: rounds * 55 / 100,
            crash_after: Duration::from_millis(rng.between(50, 300) as u64),
            restart_round: rounds * 75 / 100,
        }
    }

    fn is_down(&self, node: usize, round: usize) -> bool {
        node == self.crashed && round > self.crash_round && round < self.restart_round
    }
}

/// Generates every node's script of every round from the seed.
fn plan(rng: &mut Rng, schedule: &Schedule, names: &[&str]) -> Vec<Vec<Vec<Transaction>>> {
    let mut next_op = 1_000_u64;
    let mut new_op = || {
        next_op += 1;
        next_op
    };
    let introduced_keys = (STABLE_KEYS - INITIAL_KEYS) as usize;
    let introduction_round = |key: i32| 1 + (key - INITIAL_KEYS - 1) as usize * (schedule.rounds - 2) / introduced_keys;
    let mut introduced = INITIAL_KEYS;
    (0..schedule.rounds)
        .map(|round| {
            let up: Vec<usize> = (0..names.len()).filter(|n| !schedule.is_down(*n, round)).collect();
            let mut per_node: Vec<Vec<Transaction>> = vec![Vec::new(); names.len()];
            // A new stable key: every node that is up inserts it first thing in this round (at
            // least two do), so the inserts run at the same time.
            while introduced < STABLE_KEYS && introduction_round(introduced + 1) <= round {
                introduced += 1;
                for (position, &node) in up.iter().enumerate() {
                    if position < 2 || rng.percent(60) {
                        let id = new_op();
                        let write = Write::Insert {
                            label: random_label(rng, names[node], id),
                            qty: rng.between(0, 20),
                            attrs: rng.percent(70).then(|| random_doc(rng, id, false)),
                        };
                        let ops = vec![Op {
                            id,
                            key: introduced,
                            write,
                        }];
                        per_node[node].push(Transaction { put_mode: false, ops });
                    }
                }
            }
            // The crash round is longer, so that the crash cuts the victim's script.
            let mut remaining = if round == schedule.crash_round {
                OPS_PER_ROUND * CRASH_ROUND_LENGTH
            } else {
                OPS_PER_ROUND
            };
            while remaining > 0 {
                let node = *rng.pick(&up);
                let size = (rng.between(1, 3) as usize).min(remaining);
                remaining -= size;
                let mut ops: Vec<Op> = (0..size)
                    .map(|_| {
                        let id = new_op();
                        let key = if rng.percent(40) {
                            rng.between(i64::from(STABLE_KEYS) + 1, i64::from(ALL_KEYS)) as i32
                        } else {
                            rng.between(1, i64::from(introduced)) as i32
                        };
                        Op {
                            id,
                            key,
                            write: random_write(rng, names[node], id, key),
                        }
                    })
                    .collect();
                ops.sort_by_key(|op| op.key);
                per_node[node].push(Transaction {
                    put_mode: rng.percent(5),
                    ops,
                });
            }
            per_node
        })
        .collect()
}

/// Runs each node's script of one round at the same time, one `psql` per node; crashes node
/// `crash.0` after `crash.1` if given (its script is then cut off; returns psql's error). Panics
/// if any other script fails: the test's own statements never error.
fn run_round(nodes: &[Cluster], scripts: &[String], crash: Option<(usize, Duration)>) -> Option<String> {
    let mut cut = None;
    thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter()
            .zip(scripts)
            .map(|(node, script)| {
                scope.spawn(move || {
                    if script.is_empty() || !node.is_running() {
                        return Ok(String::new());
                    }
                    node.try_sql(DB, script)
                })
            })
            .collect();
        if let Some((victim, after)) = crash {
            thread::sleep(after);
            nodes[victim].stop_immediate();
        }
        for (index, handle) in handles.into_iter().enumerate() {
            let outcome = handle.join().expect("batch thread");
            if let Err(error) = outcome {
                let crashed_here = crash.is_some_and(|(victim, _)| victim == index);
                assert!(
                    crashed_here,
                    "a batch failed on node {}:\n{error}\nscript:\n{}",
                    nodes[index].name(),
                    scripts[index]
                );
                cut = Some(error);
            }
        }
    });
    cut
}

/// The majors of nodes a, b and c if `CRDT_CHAOS_MAJORS` gives them (e.g. `15,18,18`: what
/// `scripts/test.sh` runs for a mesh in the middle of a major upgrade); else all three run
/// the harness's default.
fn chaos_majors() -> Option<[u32; 3]> {
    env_or("CRDT_CHAOS_MAJORS", None, |text| {
        let majors: Vec<u32> = text
            .split(',')
            .map(|major| major.trim().parse().ok())
            .collect::<Option<_>>()?;
        majors.try_into().ok().map(Some)
    })
}

#[test]
fn chaos_convergence_of_three_nodes() {
    let seed = env_or("CRDT_CHAOS_SEED", DEFAULT_SEED, parse_seed);
    let ops = env_or("CRDT_CHAOS_OPS", DEFAULT_OPS, |text| text.parse().ok());
    let _report = SeedReport { seed, ops };
    println!("chaos: CRDT_CHAOS_SEED={seed:#x} CRDT_CHAOS_OPS={ops}");
    let started = Instant::now();
    let mut rng = Rng(seed);

    let names = ["a", "b", "c"];
    let nodes = match chaos_majors() {
        Some(majors) => Cluster::start_many_majors(&names, &majors),
        None => Cluster::start_many(&names),
    };
    let majors: Vec<u32> = nodes.iter().map(Cluster::major).collect();
    println!("chaos: PostgreSQL {majors:?}");
    let all: Vec<&Cluster> = nodes.iter().collect();
    for node in &nodes {
        node.create_database_with_crdt(DB);
        node.sql(DB, SCHEMA);
        // The apply workers journal conflicts (in subtransactions of their own), in a ring small
        // enough to wrap.
        node.sql(
            DB,
            &format!(
                "ALTER DATABASE {DB} SET crdt.log_conflicts = on; ALTER DATABASE {DB} SET crdt.conflicts_kept = 500"
            ),
        );
    }
    // Each link text or binary, by the seed: both wire formats of the types meet in one mesh.
    let mut links = Vec::new();
    for from in &nodes {
        for to in &nodes {
            if from.port() != to.port() {
                // origin = any, as the guide says for meshes of three or more: the echoes keep
                // every link in causal order.
                let options = SubscriptionOptions {
                    binary: rng.percent(50),
                    origin: Some("any"),
                    ..Default::default()
                };
                connect_one_way_with(from, to, DB, &["items"], &options);
                links.push(format!(
                    "{}->{}{}",
                    from.name(),
                    to.name(),
                    if options.binary { " (binary)" } else { "" }
                ));
            }
        }
    }
    let initial: String = (1..=INITIAL_KEYS)
        .map(|key| {
            write_sql(&Op {
                id: key as u64,
                key,
                write: Write::Insert {
                    label: Some(format!("initial-{key}")),
                    qty: i64::from(key),
                    attrs: None,
                },
            })
        })
        .collect();
    nodes[0].sql(DB, &initial);
    // Generous: the machine may be busy; CRDT_REPLICATION_TIMEOUT_SECS overrides it.
    let long_wait = match std::env::var_os("CRDT_REPLICATION_TIMEOUT_SECS") {
        Some(_) => replication_timeout(),
        None => Duration::from_secs(120),
    };
    wait_for_replication_idle_within(&all, long_wait);

    let schedule = Schedule::new(&mut rng, ops);
    let rounds = plan(&mut rng, &schedule, &names);
    let generated: usize = rounds.iter().flatten().flatten().map(|t| t.ops.len()).sum();
    println!(
        "chaos: links {}; {generated} ops in {} rounds; node {} partitioned in rounds {}..{}; \
         node {} crashed {:?} into round {}, restarted at round {}; setup took {:?}",
        links.join(", "),
        schedule.rounds,
        names[schedule.partitioned],
        schedule.partition_from,
        schedule.partition_until,
        names[schedule.crashed],
        schedule.crash_after,
        schedule.crash_round,
        schedule.restart_round,
        started.elapsed()
    );

    let chaos_started = Instant::now();
    for (round, per_node) in rounds.iter().enumerate() {
        if round == schedule.partition_from {
            disable_subscriptions(&nodes[schedule.partitioned]);
        }
        if round == schedule.partition_until {
            enable_subscriptions(&nodes[schedule.partitioned]);
        }
        if round == schedule.restart_round {
            nodes[schedule.crashed].start_again();
        }
        // Each node ends its round collecting tombstones (docs/tombstones.md), as a cron job
        // would, whatever else is going on: partitions, the crash, writes still in flight.
        let scripts: Vec<String> = per_node
            .iter()
            .map(|transactions| {
                let mut script: String = transactions.iter().map(transaction_sql).collect();
                script.push_str("SELECT crdt.vacuum_tombstones();\n");
                script
            })
            .collect();
        let crash = (round == schedule.crash_round).then_some((schedule.crashed, schedule.crash_after));
        if let Some(error) = run_round(&nodes, &scripts, crash) {
            let error = error.lines().last().unwrap_or_default().to_owned();
            println!(
                "chaos: the crash cut node {}'s script of round {round} ({error})",
                names[schedule.crashed]
            );
        }
    }
    let chaos_took = chaos_started.elapsed();
    println!("chaos: {} rounds took {chaos_took:?}; healing", schedule.rounds);

    // Heal: every link up (they are; the partition ended), wait until nothing moves.
    for node in &nodes {
        assert!(node.is_running(), "node {} is down after the run", node.name());
    }
    let heal_started = Instant::now();
    wait_for_replication_idle_within(&all, long_wait);
    let heal_took = heal_started.elapsed();

    // 1. Every node identical: values, counter and doc states, row clocks, doc stamps.
    assert_same_snapshot(&all, DB, ROWS);
    assert_same_snapshot(&all, DB, DOC_STAMPS);

    // 2. Every counter of a never-deleted key is the sum of what committed transactions wrote.
    let mut expected: BTreeMap<i32, i64> = BTreeMap::new();
    let mut inserts: BTreeMap<i32, usize> = BTreeMap::new();
    let mut committed: BTreeMap<String, usize> = BTreeMap::new();
    for node in &nodes {
        for row in node.query_rows(DB, "SELECT key, kind, delta FROM ledger ORDER BY op") {
            let key: i32 = row[0].parse().unwrap();
            let delta: i64 = row[2].parse().unwrap();
            *committed.entry(row[1].clone()).or_default() += 1;
            if matches!(row[1].as_str(), "inc" | "assign" | "insert") {
                *expected.entry(key).or_default() += delta;
            }
            if row[1] == "insert" {
                *inserts.entry(key).or_default() += 1;
            }
        }
    }
    let actual: BTreeMap<i32, i64> = nodes[0]
        .query_rows(
            DB,
            &format!("SELECT id, qty::bigint FROM items WHERE id <= {STABLE_KEYS} ORDER BY id"),
        )
        .into_iter()
        .map(|row| (row[0].parse().unwrap(), row[1].parse().unwrap()))
        .collect();
    let expected_stable: BTreeMap<i32, i64> = (1..=STABLE_KEYS)
        .filter(|key| inserts.contains_key(key))
        .map(|key| (key, expected.get(&key).copied().unwrap_or(0)))
        .collect();
    assert_eq!(
        actual, expected_stable,
        "counters of never-deleted keys (left: on the nodes, right: committed sums)"
    );

    // 3. Collection goes on to the end with every link up: no tombstone is left, and the rows
    // are as they were.
    let before_collection = nodes[0].query_rows(DB, ROWS);
    let left: Vec<String> = nodes
        .iter()
        .map(|node| node.query_value(DB, "SELECT count(*) FROM crdt.deletions"))
        .collect();
    let collected = (1..=8).find(|_| {
        thread::sleep(Duration::from_millis(1100));
        for node in &nodes {
            node.sql(DB, "SELECT crdt.vacuum_tombstones()");
        }
        wait_for_replication_idle_within(&all, long_wait);
        nodes
            .iter()
            .all(|node| node.query_value(DB, "SELECT count(*) FROM crdt.deletions") == "0")
    });
    assert!(collected.is_some(), "tombstones left after 8 rounds of collection");
    println!("chaos: tombstones left after the run {left:?}, all collected in {collected:?} more rounds");
    assert_same_snapshot(&all, DB, ROWS);
    assert_eq!(
        nodes[0].query_rows(DB, ROWS),
        before_collection,
        "collection changed rows"
    );

    // 4. Digests agree on every node. A row lost on one node (deleted there without a tombstone,
    // as a damaged node might lose it) shows in one bucket, crdt.digest_rows names it, and
    // crdt.merge_row of another node's copy repairs it (README, "Checking that nodes agree").
    const DIGEST: &str = "SELECT bucket, rows, digest FROM crdt.digest('items', 16) ORDER BY bucket";
    let digests: Vec<Vec<Vec<String>>> = nodes.iter().map(|node| node.query_rows(DB, DIGEST)).collect();
    assert!(
        digests.iter().all(|digest| *digest == digests[0]),
        "digests differ after convergence"
    );
    let (a, c) = (&nodes[0], &nodes[2]);
    let lost = a.query_value(DB, "SELECT min(id) FROM items");
    c.sql(
        DB,
        &format!(
            "BEGIN;
             ALTER TABLE items DISABLE TRIGGER zz_crdt_replicated_delete;
             SET LOCAL session_replication_role = replica;
             DELETE FROM items WHERE id = {lost};
             ALTER TABLE items ENABLE REPLICA TRIGGER zz_crdt_replicated_delete;
             COMMIT;"
        ),
    );
    wait_for_replication_idle_within(&all, long_wait);
    let (on_a, on_c) = (a.query_rows(DB, DIGEST), c.query_rows(DB, DIGEST));
    let differing: Vec<&Vec<String>> = on_a
        .iter()
        .zip(&on_c)
        .filter(|(on_a, on_c)| on_a != on_c)
        .map(|(on_a, _)| on_a)
        .collect();
    assert_eq!(differing.len(), 1, "buckets that differ: {differing:?}");
    let bucket_rows = format!(
        "SELECT key::text, digest, \"row\"::text FROM crdt.digest_rows('items', {}, 16)",
        differing[0][0]
    );
    let (rows_a, rows_c) = (a.query_rows(DB, &bucket_rows), c.query_rows(DB, &bucket_rows));
    let missing: Vec<&Vec<String>> = rows_a.iter().filter(|row| !rows_c.contains(row)).collect();
    assert_eq!(missing.len(), 1, "rows of the bucket that differ: {missing:?}");
    assert_eq!(missing[0][0], format!("{{\"id\": {lost}}}"));
    assert_eq!(rows_c.len() + 1, rows_a.len());
    c.sql(
        DB,
        &format!("SELECT crdt.merge_row('items', {})", sql_text(&missing[0][2])),
    );
    wait_for_replication_idle_within(&all, long_wait);
    let repaired: Vec<Vec<Vec<String>>> = nodes.iter().map(|node| node.query_rows(DB, DIGEST)).collect();
    assert!(
        repaired.iter().all(|digest| *digest == digests[0]),
        "digests differ after the repair"
    );
    assert_same_snapshot(&all, DB, ROWS);
    println!(
        "chaos: digests agree; row {lost} lost on c was found in bucket {} and repaired",
        differing[0][0]
    );

    // 5. crdt.stats counted what the workload did (docs/stats.md). Each write another node
    // committed (one ledger row each) reached each node straight from its node, and echoes may
    // bring it again: an INSERT and a tombstone always meet the merge triggers there, and so
    // does an UPDATE of a never-deleted key (an UPDATE of a row deleted there meets no row, and
    // no trigger). A tombstone deleted at most one row on each other node. And the counts agree
    // with one another. A node's counts start at zero when it starts: the crashed one is held
    // to the last only.
    let ledgers: Vec<(u64, u64)> = nodes
        .iter()
        .map(|node| {
            let row = &node.query_rows(
                DB,
                &format!(
                    "SELECT count(*) FILTER (WHERE kind IN ('insert', 'delete') OR key <= {STABLE_KEYS}), \
                            count(*) FILTER (WHERE kind = 'delete') \
                     FROM ledger"
                ),
            )[0];
            (row[0].parse().unwrap(), row[1].parse().unwrap())
        })
        .collect();
    for (index, node) in nodes.iter().enumerate() {
        let row = &node.query_rows(
            DB,
            "SELECT remote_rows, inserts_merged, inserts_dropped_by_tombstone, deletes_applied, echoes_skipped, \
                    remote_wins, local_wins, counter_merges, doc_merges \
             FROM crdt.stats WHERE table_name = 'items'::regclass",
        )[0];
        let stat: Vec<u64> = row.iter().map(|value| value.parse().unwrap()).collect();
        let (others_wrote, others_deleted) = ledgers
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .fold((0, 0), |(writes, deletes), (_, (w, d))| (writes + w, deletes + d));
        println!(
            "chaos: node {} crdt.stats: remote_rows {}, inserts_merged {}, inserts_dropped_by_tombstone {}, \
             deletes_applied {}, echoes_skipped {}, remote_wins {}, local_wins {}, counter_merges {}, doc_merges {}; \
             the other nodes committed {others_wrote} writes that must meet the triggers here, \
             {others_deleted} of them deletes",
            node.name(),
            stat[0],
            stat[1],
            stat[2],
            stat[3],
            stat[4],
            stat[5],
            stat[6],
            stat[7],
            stat[8]
        );
        assert!(
            stat[1] + stat[2] + stat[3] <= stat[0] && stat[4] <= stat[0],
            "node {}: merged, dropped and applied rows, and echoes, are remote rows: {stat:?}",
            node.name()
        );
        if index != schedule.crashed {
            assert!(
                stat[0] >= others_wrote,
                "node {} counted {} remote rows, fewer than the {others_wrote} writes of the other nodes that \
                 must have met its triggers",
                node.name(),
                stat[0]
            );
            assert!(
                stat[3] <= others_deleted,
                "node {} applied {} deletes, more than the {others_deleted} of the other nodes",
                node.name(),
                stat[3]
            );
        }
    }

    // The journal kept the latest conflicts, each with a name of the documented set.
    for node in &nodes {
        let journal = node.query_rows(
            DB,
            "SELECT count(*), count(*) FILTER (WHERE conflict NOT IN \
                    ('insert_exists', 'update_origin_differs', 'delete_origin_differs', 'insert_deleted')), \
                    coalesce(string_agg(DISTINCT conflict, ','), '') \
             FROM crdt.conflicts",
        );
        let (kept, unnamed) = (journal[0][0].parse::<u64>().unwrap(), &journal[0][1]);
        println!(
            "chaos: node {} journaled {kept} conflicts ({})",
            node.name(),
            journal[0][2]
        );
        assert!((1..=500).contains(&kept), "node {}: {kept} conflicts kept", node.name());
        assert_eq!(unnamed, "0", "node {}: conflicts of no documented name", node.name());
    }

    // 6. No ERROR in any log. Subscribers log ERRORs ("could not connect to the publisher",
    // "could not receive data from WAL stream", ...) while their publisher is crashed or
    // restarting: the expected consequence of the crash, and nothing else is let through.
    assert_no_errors_in_logs_except(&all, PEER_DOWN_LOG_NOISE);

    let rows = nodes[0].query_value(DB, "SELECT count(*) FROM items");
    println!(
        "chaos: seed {seed:#x}: {generated} ops generated, committed per kind {committed:?}; \
         {rows} rows; {} never-deleted counters checked, {} of them inserted on several nodes; \
         chaos {chaos_took:?}, heal {heal_took:?}, total {:?}",
        expected_stable.len(),
        (1..=STABLE_KEYS)
            .filter(|key| inserts.get(key).is_some_and(|n| *n > 1))
            .count(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// What the chaos run found, reduced to deterministic cases.
// ---------------------------------------------------------------------------------------------

/// Two or three nodes with the chaos test's `items` table, in a full mesh.
fn small_mesh(names: &[&str]) -> Vec<Cluster> {
    let nodes = Cluster::start_many(names);
    for node in &nodes {
        node.create_database_with_crdt(DB);
        node.sql(DB, SCHEMA);
        // The apply workers journal conflicts (in subtransactions of their own), in a ring small
        // enough to wrap.
        node.sql(
            DB,
            &format!(
                "ALTER DATABASE {DB} SET crdt.log_conflicts = on; ALTER DATABASE {DB} SET crdt.conflicts_kept = 500"
            ),
        );
    }
    let refs: Vec<&Cluster> = nodes.iter().collect();
    full_mesh(&refs, DB, &["items"]);
    nodes
}

/// A row inserted and deleted on A before A has received B's echo of the INSERT (PostgreSQL 15
/// re-publishes what B applied: there is no `origin = none`) must stay deleted, and replication
/// must go idle.
#[test]
fn insert_then_delete_before_the_echo_returns_stays_deleted() {
    let nodes = small_mesh(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    disable_subscriptions(a);
    a.sql(DB, "INSERT INTO items (id, label) VALUES (1, 'x')");
    a.sql(DB, "DELETE FROM items WHERE id = 1");
    // B applies both and publishes both again; A receives them once its link is back. A has no
    // row 1, so the echoed INSERT inserts it and is published to B again, and so is the DELETE
    // behind it: unless something stops it, the pair circulates for ever.
    wait_for_replication_idle(&[a, b]);
    enable_subscriptions(a);
    wait_for_replication_idle_within(&[a, b], Duration::from_secs(20));
    for node in [a, b] {
        assert_eq!(
            node.query_value(DB, "SELECT count(*) FROM items"),
            "0",
            "on {}",
            node.name()
        );
    }
    assert_no_errors_in_logs(&[a, b]);
}

/// A replicated INSERT of a key that a concurrent transaction on the subscriber is inserting
/// at the same moment (here a local session; in a three-node mesh, more often the apply worker of
/// another subscription applying the echo of the same INSERT) must merge, not fail with a unique
/// violation.
#[test]
fn replicated_insert_racing_a_local_insert_of_the_same_key_merges() {
    let nodes = small_mesh(&["a", "b"]);
    let (a, b) = (&nodes[0], &nodes[1]);
    thread::scope(|scope| {
        let local = scope.spawn(|| {
            b.sql(
                DB,
                "BEGIN; INSERT INTO items (id, label, qty) VALUES (1, 'on b', 2); SELECT pg_sleep(2); COMMIT;",
            )
        });
        // While B's row is uncommitted, A's INSERT reaches B's apply worker: the merge trigger
        // does not see the row, so the worker inserts, waits for B's transaction, and fails.
        thread::sleep(Duration::from_millis(500));
        a.sql(DB, "INSERT INTO items (id, label, qty) VALUES (1, 'on a', 3)");
        local.join().expect("local insert on b");
    });
    wait_for_replication_idle(&[a, b]);
    assert_same_snapshot(&[a, b], DB, ROWS);
    assert_eq!(b.query_value(DB, "SELECT qty::bigint FROM items WHERE id = 1"), "5");
    assert_no_errors_in_logs(&[a, b]);
}
