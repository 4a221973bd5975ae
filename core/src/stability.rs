//! When a tombstone may be collected: causal stability, learnt from heartbeats that travel the
//! same subscriptions as the data (docs/tombstones.md).
//!
//! A tombstone decides against writes of its key made without knowledge of it: an INSERT from a
//! node that had not seen the delete is dropped where the tombstone is. It may go once every
//! node has it and every such write has reached every node. Nodes learn that in three steps,
//! each a value every heartbeat carries, all HLC values compared with a tombstone's HLC:
//!
//! 1. `covers`: the sender's own tombstones stamped at or below it had committed before the
//!    heartbeat (its clock now, held below the start of its oldest transaction still writing);
//! 2. `received`: the sender had every member's tombstones stamped at or below it — the least
//!    `covers` of the latest heartbeat it had applied from each member;
//! 3. `settled`: every write made anywhere without knowledge of a tombstone stamped at or
//!    below it had reached the sender — the least `received` it had applied from each member.
//!    A write made before its node had a tombstone committed before that node's heartbeat
//!    saying so; subscriptions apply in commit order, so it arrived before the heartbeat did.
//!
//! A node may collect tombstones at or below the least `settled` of every member
//! ([`collectable_through`]): by then each node's own `settled` has passed them, so on every
//! node they no longer decide anything ([`tombstone_decides`]) — what arrives after was written
//! knowing them, whether its node still had them or had collected them.
//!
//! Members are the nodes heard from, and the members they name, less those forgotten here. A
//! heartbeat counts only if its sender names every member this node knows: until a new node has
//! heard from everyone, it holds collection back instead of claiming what it does not have. And
//! a node claims nothing until it has heard from as many nodes as it subscribes to: a node that
//! has heard from nobody yet does not know it is not alone.

use std::collections::{BTreeMap, BTreeSet};

use crate::hlc::Stamp;
use crate::node::NodeId;

/// What one node's heartbeat says (see the module documentation for each value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// The sender's own tombstones stamped at or below this had committed before it.
    pub covers: u64,
    /// The sender had every member's tombstones stamped at or below this.
    pub received: u64,
    /// Every write made without knowledge of a tombstone stamped at or below this had reached
    /// the sender.
    pub settled: u64,
    /// The members the sender knew, itself included.
    pub members: BTreeSet<NodeId>,
}

/// What a node knows of the mesh: itself, the latest heartbeat it applied from each other node,
/// and the nodes it was told to forget (`crdt.forget_node`).
#[derive(Debug, Clone, Default)]
pub struct MeshView {
    /// This node.
    pub own: NodeId,
    /// The latest heartbeat applied from each other node.
    pub heard: BTreeMap<NodeId, Heartbeat>,
    /// Nodes that left the mesh for good: neither waited for nor counted as members.
    pub forgotten: BTreeSet<NodeId>,
    /// How many other nodes this node subscribes to: it claims nothing before it has heard from
    /// that many.
    pub subscriptions: usize,
}

impl MeshView {
    /// The members: this node, the nodes heard from and the members they named, less the
    /// forgotten.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let named = self
            .heard
            .iter()
            .flat_map(|(node, beat)| beat.members.iter().chain([node]));
        std::iter::once(&self.own)
            .chain(named)
            .filter(|node| !self.forgotten.contains(node))
            .copied()
            .collect()
    }

    /// The least of `value` over every other member's latest heartbeat, starting from `own`: 0
    /// for a member not heard from. A value that speaks of other members (`of_others`) counts
    /// only from a heartbeat that names every member this node knows.
    fn least(&self, own: u64, of_others: bool, value: impl Fn(&Heartbeat) -> u64) -> u64 {
        self.counted(own, of_others, value).map_or(0, |counted| {
            counted.into_iter().map(|(_, value)| value).fold(u64::MAX, u64::min)
        })
    }

    /// `value` of every member as [`Self::least`] counts it (this node's is `own`); `None` before
    /// this node has heard from as many nodes as it subscribes to.
    fn counted(&self, own: u64, of_others: bool, value: impl Fn(&Heartbeat) -> u64) -> Option<Vec<(NodeId, u64)>> {
        let members = self.members();
        let heard_from = members.iter().filter(|node| self.heard.contains_key(node)).count();
        if heard_from < self.subscriptions {
            return None;
        }
        let others = members.iter().filter(|&&node| node != self.own).map(|node| {
            let beat = self
                .heard
                .get(node)
                .filter(|beat| !of_others || members.iter().all(|member| beat.members.contains(member)));
            (*node, beat.map_or(0, &value))
        });
        Some(std::iter::once((self.own, own)).chain(others).collect())
    }

    /// The heartbeat this node sends now, `covers` its own bound ([`Heartbeat::covers`]).
    pub fn next_heartbeat(&self, covers: u64) -> Heartbeat {
        let received = self.least(covers, false, |beat| beat.covers);
        Heartbeat {
            covers,
            received,
            settled: self.least(received, true, |beat| beat.received),
            members: self.members(),
        }
    }
}

/// The `covers` a node sends next: `last`, the one it sent before, moved up to `candidate_ms`
/// (a wall-clock time it read before looking at which transactions were running) less
/// `margin_ms` once every one of those transactions has ended (`candidate_ended`). A tombstone
/// is stamped after its transaction has written (it has a transaction id by then) and at or
/// after the wall clock of that moment, so every tombstone stamped before the candidate time
/// came from one of them, or committed before; the margin allows for a wall clock stepping
/// back.
pub fn next_covers(last: u64, candidate_ms: Option<u64>, candidate_ended: bool, margin_ms: u64) -> u64 {
    match candidate_ms {
        Some(ms) if candidate_ended => {
            let below = crate::hlc::hlc_from_parts(ms.saturating_sub(margin_ms), 0).unwrap_or(0);
            last.max(below.saturating_sub(1))
        }
        _ => last,
    }
}

/// The HLC at or below which this node may collect tombstones: the least `settled` of its own
/// latest heartbeat `own` and of every other member's.
pub fn collectable_through(view: &MeshView, own: &Heartbeat) -> u64 {
    view.least(own.settled, true, |beat| beat.settled)
}

/// What holds collection back on a node, for a DBA to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holding {
    /// It has heard from fewer nodes than it subscribes to: it collects nothing.
    Unheard {
        /// Members it has heard from.
        heard: usize,
        /// Subscriptions it has.
        subscriptions: usize,
    },
    /// It collects through `through`, held there by `nodes`.
    Members {
        /// The least `settled` of the members ([`collectable_through`]).
        through: u64,
        /// The members at the root of it: whose values are what they are through no other
        /// member's (see [`holding_collection`]). This node is one when its own `covers` is
        /// the cause (a transaction still open here, say).
        nodes: BTreeSet<NodeId>,
    },
}

/// Why [`collectable_through`] is what it is. Each value is the least of the step before over
/// the members, so a member whose `settled` is the least is held there by the member with the
/// least `received` — unless none but itself is that low — and that one by the least `covers`.
/// A member not heard from, or whose heartbeat does not name every member, counts as 0 at
/// every step. Followed down, this names the members at the root: a node cut off, not the
/// nodes whose values it holds down with its own.
pub fn holding_collection(view: &MeshView, own: &Heartbeat) -> Holding {
    let Some(settled) = view.counted(own.settled, true, |beat| beat.settled) else {
        let members = view.members();
        return Holding::Unheard {
            heard: members.iter().filter(|node| view.heard.contains_key(node)).count(),
            subscriptions: view.subscriptions,
        };
    };
    let steps_before = [
        view.counted(own.received, true, |beat| beat.received)
            .unwrap_or_default(),
        view.counted(own.covers, false, |beat| beat.covers).unwrap_or_default(),
    ];
    let through = settled.iter().map(|(_, value)| *value).fold(u64::MAX, u64::min);
    let mut held: BTreeSet<(NodeId, u64)> = settled.into_iter().filter(|(_, value)| *value == through).collect();
    let mut roots = BTreeSet::new();
    for before in &steps_before {
        let mut holding = BTreeSet::new();
        for (node, value) in held {
            let least_of_others = before
                .iter()
                .filter(|(other, _)| *other != node)
                .map(|(_, value)| *value)
                .min();
            match least_of_others {
                Some(least) if least <= value => {
                    holding.extend(before.iter().filter(|(other, value)| *other != node && *value == least));
                }
                _ => {
                    roots.insert(node);
                }
            }
        }
        held = holding;
    }
    // The last step, `covers`, is each node's own: whoever holds it down is a root.
    roots.extend(held.into_iter().map(|(node, _)| node));
    Holding::Members { through, nodes: roots }
}

/// Whether a tombstone stamped `deleted` still decides against a write of its key arriving at a
/// node whose `settled` (the largest it has sent) is `settled`. Once settled, every write made
/// without knowledge of the delete has arrived: whatever comes now was written after it, by a
/// node that had it or had collected it, and must not be taken for a write it ended.
pub fn tombstone_decides(deleted: Stamp, settled: u64) -> bool {
    deleted.hlc > settled
}

/// The newest delete a row had seen, as the incarnation comparisons read it on a node whose
/// `settled` is `settled`: a settled delete reads as none. Rows that had seen different settled
/// deletes (or none, its tombstone collected where the row was written) can only meet where
/// every write of older incarnations has arrived and been ended already: they are of one
/// incarnation, and merge.
pub fn unsettled_seen_delete(seen: Option<Stamp>, settled: u64) -> Option<Stamp> {
    seen.filter(|seen| tombstone_decides(*seen, settled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> NodeId {
        NodeId::from_bytes([i; 16])
    }

    fn view(own: u8, heard: &[(u8, Heartbeat)]) -> MeshView {
        MeshView {
            own: node(own),
            heard: heard.iter().map(|(i, beat)| (node(*i), beat.clone())).collect(),
            forgotten: BTreeSet::new(),
            subscriptions: heard.len(),
        }
    }

    fn beat(covers: u64, received: u64, settled: u64, members: &[u8]) -> Heartbeat {
        Heartbeat {
            covers,
            received,
            settled,
            members: members.iter().map(|&i| node(i)).collect(),
        }
    }

    #[test]
    fn a_node_alone_collects_what_it_covers() {
        let alone = view(1, &[]);
        let own = alone.next_heartbeat(50);
        assert_eq!((own.received, own.settled), (50, 50));
        assert_eq!(collectable_through(&alone, &own), 50);
    }

    #[test]
    fn each_value_is_the_least_of_the_step_before() {
        let two = view(1, &[(2, beat(40, 30, 20, &[1, 2]))]);
        let own = two.next_heartbeat(50);
        assert_eq!((own.covers, own.received, own.settled), (50, 40, 30));
        assert_eq!(collectable_through(&two, &own), 20);
    }

    #[test]
    fn a_member_not_heard_from_or_not_knowing_everyone_holds_back() {
        // Node 2 names node 3, which node 1 has not heard from.
        let missing = view(1, &[(2, beat(40, 40, 40, &[1, 2, 3]))]);
        assert_eq!(missing.next_heartbeat(50).received, 0);
        // Node 3 has not heard of node 2 yet: its claims say nothing of node 2's tombstones.
        let partial = view(1, &[(2, beat(40, 40, 40, &[1, 2, 3])), (3, beat(40, 40, 40, &[1, 3]))]);
        assert_eq!(partial.next_heartbeat(50).received, 40);
        assert_eq!(partial.next_heartbeat(50).settled, 0);
    }

    #[test]
    fn a_node_that_has_not_heard_from_every_subscription_claims_nothing() {
        let mut early = view(1, &[]);
        early.subscriptions = 2;
        let own = early.next_heartbeat(50);
        assert_eq!((own.received, own.settled), (0, 0));
        assert_eq!(collectable_through(&early, &own), 0);
    }

    #[test]
    fn a_forgotten_node_holds_nothing_back() {
        let mut three = view(1, &[(2, beat(40, 40, 40, &[1, 2, 3]))]);
        assert_eq!(three.next_heartbeat(50).received, 0);
        three.forgotten.insert(node(3));
        let own = three.next_heartbeat(50);
        assert_eq!((own.received, own.settled), (40, 40));
        assert!(!own.members.contains(&node(3)));
    }

    #[test]
    fn holding_names_the_members_with_the_least_settled() {
        let three = view(
            1,
            &[(2, beat(40, 40, 20, &[1, 2, 3])), (3, beat(40, 40, 35, &[1, 2, 3]))],
        );
        let own = three.next_heartbeat(50);
        let holding = holding_collection(&three, &own);
        assert_eq!(
            holding,
            Holding::Members {
                through: 20,
                nodes: [node(2)].into()
            }
        );
        assert_eq!(collectable_through(&three, &own), 20);
        // A member heard of but not from counts as 0 at every step, and holds this node's own
        // values down: it alone is named.
        let missing = view(1, &[(2, beat(40, 40, 40, &[1, 2, 3]))]);
        let own = missing.next_heartbeat(50);
        assert_eq!(
            holding_collection(&missing, &own),
            Holding::Members {
                through: 0,
                nodes: [node(3)].into()
            }
        );
        // A node cut off after one heartbeat: its stale values hold every node's down, and it
        // is the root. (Node 2 heard it too: its settled is as low.)
        let cut_off = view(
            1,
            &[(2, beat(40, 40, 10, &[1, 2, 3])), (3, beat(15, 10, 0, &[1, 2, 3]))],
        );
        let own = cut_off.next_heartbeat(50);
        assert_eq!(own.settled, 10);
        assert_eq!(
            holding_collection(&cut_off, &own),
            Holding::Members {
                through: 0,
                nodes: [node(3)].into()
            }
        );
        // A transaction held open here: this node's own covers holds everyone's down.
        let open_here = view(1, &[(2, beat(40, 5, 5, &[1, 2, 3])), (3, beat(40, 5, 5, &[1, 2, 3]))]);
        let own = open_here.next_heartbeat(5);
        assert_eq!(
            holding_collection(&open_here, &own),
            Holding::Members {
                through: 5,
                nodes: [node(1)].into()
            }
        );
        // Before hearing from every subscription: nothing, and why.
        let mut early = view(1, &[]);
        early.subscriptions = 2;
        let own = early.next_heartbeat(50);
        assert_eq!(
            holding_collection(&early, &own),
            Holding::Unheard {
                heard: 0,
                subscriptions: 2
            }
        );
    }

    #[test]
    fn covers_moves_up_once_the_transactions_running_at_the_candidate_have_ended() {
        let at = |ms| crate::hlc::hlc_from_parts(ms, 0).unwrap();
        assert_eq!(next_covers(7, None, true, 1000), 7);
        assert_eq!(next_covers(7, Some(5000), false, 1000), 7);
        assert_eq!(next_covers(7, Some(5000), true, 1000), at(4000) - 1);
        // Never back down: what a heartbeat claimed stays true.
        assert_eq!(next_covers(at(9000), Some(5000), true, 1000), at(9000));
    }

    #[test]
    fn settled_deletes_decide_nothing_and_read_as_none() {
        let deleted = Stamp::new(30, node(1));
        assert!(tombstone_decides(deleted, 29));
        assert!(!tombstone_decides(deleted, 30));
        assert_eq!(unsettled_seen_delete(Some(deleted), 30), None);
        assert_eq!(unsettled_seen_delete(Some(deleted), 29), Some(deleted));
    }
}
