//! Rows of a CRDT table on 2–3 replicas: any interleaving of writes, deletes and re-inserts,
//! delivered in any order the links allow, ends in one state on every replica — with every
//! decision taken by the core's rules (`RowClock::merge_replicated`, the seen-delete entry,
//! `delete_wins`), as the extension's triggers take them.
//!
//! The model follows what PostgreSQL's logical replication does around the triggers:
//! - each link delivers in commit order; links are independent of each other;
//! - a node publishes what it writes, its own changes and what it applied (`origin = any`, which
//!   the guide asks for in meshes of three or more); a replicated change the merge leaves
//!   unchanged writes nothing, so it is not published again;
//! - a replicated UPDATE of a row the subscriber does not have is skipped (PostgreSQL finds no
//!   row and no trigger runs); a replicated INSERT of an existing key merges into that row, and
//!   one of a key whose tombstone wins over it is dropped;
//! - a replicated DELETE is skipped: its tombstone decides.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crdt_core::{value_fingerprint, ColumnChoice, NodeId, RowClock, Stamp};
use proptest::prelude::*;

const KEYS: u8 = 3;

/// One replica's row: its one column's value and its clock.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    value: u8,
    clock: RowClock,
}

/// A change as a link carries it.
#[derive(Clone, Debug)]
enum Change {
    Insert(u8, Row),
    Update(u8, Row),
    Tombstone(u8, Stamp),
}

#[derive(Default)]
struct Replica {
    rows: BTreeMap<u8, Row>,
    tombstones: BTreeSet<(u8, Stamp)>,
    /// This node's clock: the newest HLC it has stamped or seen.
    hlc: u64,
}

fn node_id(node: usize) -> NodeId {
    NodeId::from_bytes([node as u8 + 1; 16])
}

fn fingerprint(value: u8) -> u32 {
    value_fingerprint(Some(&[value]))
}

impl Replica {
    /// A stamp after everything this node has seen and after `after`.
    fn next_stamp(&mut self, node: usize, after: u64) -> Stamp {
        self.hlc = self.hlc.max(after) + 1;
        Stamp::new(self.hlc, node_id(node))
    }

    fn newest_tombstone(&self, key: u8) -> Option<Stamp> {
        self.tombstones
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, stamp)| *stamp)
            .max()
    }

    /// A local INSERT or UPDATE of `key` to `value` (the stamping trigger's path).
    fn write(&mut self, node: usize, key: u8, value: u8) -> Change {
        match self.rows.get(&key).cloned() {
            Some(mut row) => {
                let stamp = self.next_stamp(node, row.clock.max_hlc());
                row.value = value;
                row.clock.stamp("v", fingerprint(value), stamp);
                self.rows.insert(key, row.clone());
                Change::Update(key, row)
            }
            None => {
                let mut clock = RowClock::new();
                if let Some(deleted) = self.newest_tombstone(key) {
                    clock.record_seen_delete(deleted);
                }
                let stamp = self.next_stamp(node, clock.max_hlc());
                clock.stamp("v", fingerprint(value), stamp);
                let row = Row { value, clock };
                self.rows.insert(key, row.clone());
                Change::Insert(key, row)
            }
        }
    }

    /// A local DELETE of `key` (the delete trigger's path): a tombstone after the row's stamps.
    fn delete(&mut self, node: usize, key: u8) -> Option<Change> {
        let row = self.rows.remove(&key)?;
        let deleted = self.next_stamp(node, row.clock.max_hlc());
        self.tombstones.insert((key, deleted));
        Some(Change::Tombstone(key, deleted))
    }

    /// Merges `remote` into the local row (the merge trigger's path); whether the row changed.
    fn merge_into_local(&mut self, key: u8, remote: &Row) -> bool {
        let local = self.rows.get_mut(&key).expect("a local row");
        let mut clock = local.clock.clone();
        let choices = clock.merge_replicated(&remote.clock, &[("v", fingerprint(remote.value))]);
        let value = if choices[0] == ColumnChoice::Remote {
            remote.value
        } else {
            local.value
        };
        let changed = clock != local.clock || value != local.value;
        *local = Row { value, clock };
        changed
    }

    /// Applies a replicated change; the change this node then publishes, if it wrote one.
    fn apply(&mut self, change: &Change) -> Option<Change> {
        match change {
            Change::Insert(key, row) | Change::Update(key, row) => {
                self.hlc = self.hlc.max(row.clock.max_hlc());
                let is_insert = matches!(change, Change::Insert(..));
                if self.rows.contains_key(key) {
                    return self
                        .merge_into_local(*key, row)
                        .then(|| Change::Update(*key, self.rows[key].clone()));
                }
                if !is_insert {
                    return None; // PostgreSQL finds no row to update.
                }
                if self
                    .newest_tombstone(*key)
                    .is_some_and(|deleted| row.clock.is_deleted_by(deleted))
                {
                    return None;
                }
                self.rows.insert(*key, row.clone());
                Some(change.clone())
            }
            Change::Tombstone(key, deleted) => {
                self.hlc = self.hlc.max(deleted.hlc);
                if !self.tombstones.insert((*key, *deleted)) {
                    return None; // known: the echo ends here
                }
                if self.rows.get(key).is_some_and(|row| row.clock.is_deleted_by(*deleted)) {
                    self.rows.remove(key);
                }
                Some(change.clone())
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Write {
        node: usize,
        key: u8,
        value: u8,
    },
    Delete {
        node: usize,
        key: u8,
    },
    /// Delivers the next change of one link (from, to), if it has one.
    Deliver {
        from: usize,
        to: usize,
    },
}

fn arb_steps(nodes: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (0..nodes, 0..KEYS, any::<u8>()).prop_map(|(node, key, value)| Step::Write { node, key, value }),
        2 => (0..nodes, 0..KEYS).prop_map(|(node, key)| Step::Delete { node, key }),
        6 => (0..nodes, 0..nodes).prop_map(|(from, to)| Step::Deliver { from, to }),
    ];
    proptest::collection::vec(step, 0..60)
}

/// Runs `steps` on `nodes` replicas, then delivers everything left, link by link in turn.
fn run(nodes: usize, steps: &[Step]) -> Vec<Replica> {
    run_with(nodes, steps, true)
}

/// [`run`]; `republish`: whether a node publishes what it applied (`origin = any`) or only its
/// own writes (`origin = none`).
fn run_with(nodes: usize, steps: &[Step], republish: bool) -> Vec<Replica> {
    let mut replicas: Vec<Replica> = (0..nodes).map(|_| Replica::default()).collect();
    let mut links: BTreeMap<(usize, usize), VecDeque<Change>> = BTreeMap::new();
    let publish = |links: &mut BTreeMap<(usize, usize), VecDeque<Change>>, from: usize, change: Change| {
        for to in (0..nodes).filter(|&to| to != from) {
            links.entry((from, to)).or_default().push_back(change.clone());
        }
    };
    let deliver = |replicas: &mut Vec<Replica>, links: &mut BTreeMap<(usize, usize), VecDeque<Change>>, from, to| {
        let change = links.get_mut(&(from, to)).and_then(VecDeque::pop_front);
        if let Some(written) = change.and_then(|change| replicas[to].apply(&change)) {
            if republish {
                publish(links, to, written);
            }
        }
    };
    for step in steps {
        match *step {
            Step::Write { node, key, value } => {
                let change = replicas[node].write(node, key, value);
                publish(&mut links, node, change);
            }
            Step::Delete { node, key } => {
                if let Some(change) = replicas[node].delete(node, key) {
                    publish(&mut links, node, change);
                }
            }
            Step::Deliver { from, to } if from != to => deliver(&mut replicas, &mut links, from, to),
            Step::Deliver { .. } => {}
        }
    }
    let mut rounds = 0;
    while links.values().any(|queue| !queue.is_empty()) {
        rounds += 1;
        assert!(rounds < 10_000, "the echoes never die out");
        let busy: Vec<(usize, usize)> = links
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(link, _)| *link)
            .collect();
        for (from, to) in busy {
            deliver(&mut replicas, &mut links, from, to);
        }
    }
    replicas
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn two_replicas_end_identical(steps in arb_steps(2)) {
        let replicas = run(2, &steps);
        prop_assert_eq!(&replicas[0].rows, &replicas[1].rows);
        prop_assert_eq!(&replicas[0].tombstones, &replicas[1].tombstones);
    }

    #[test]
    fn three_replicas_end_identical(steps in arb_steps(3)) {
        let replicas = run(3, &steps);
        for replica in &replicas[1..] {
            prop_assert_eq!(&replicas[0].rows, &replica.rows);
            prop_assert_eq!(&replicas[0].tombstones, &replica.tombstones);
        }
    }
}

/// Why the guide keeps `origin = any` in meshes of three: without republishing, node 1 gets node
/// 2's update of a row before node 0's insert of it, skips the update, and keeps node 0's value.
#[test]
fn without_republishing_three_replicas_can_end_apart() {
    let steps = [
        Step::Write {
            node: 0,
            key: 0,
            value: 1,
        },
        Step::Deliver { from: 0, to: 2 },
        Step::Write {
            node: 2,
            key: 0,
            value: 2,
        },
        Step::Deliver { from: 2, to: 1 },
    ];
    let apart = run_with(3, &steps, false);
    assert_eq!(apart[1].rows[&0].value, 1);
    assert_eq!(apart[2].rows[&0].value, 2);
    let together = run(3, &steps);
    assert!(together.iter().all(|replica| replica.rows[&0].value == 2));
}
