//! Properties of rate limiting (docs/rate_limit.md): `split` mode never admits more than the
//! limit per window in total, whatever the calls, nodes, slots and partitions; the sliding count
//! lies between the current window's count and both windows' together.

use crdt_core::rate_limit::{node_share, sliding_count, slot_limit, slot_quota, split_parts, window_of};
use proptest::prelude::*;

/// A call: the node and slot it is made on, when (ms), and its cost.
fn calls() -> impl Strategy<Value = Vec<(u64, u64, u64, u64)>> {
    prop::collection::vec((0..5u64, 0..8u64, 0..600_000u64, 1..20u64), 0..400)
}

proptest! {
    #[test]
    fn split_never_admits_more_than_the_limit_per_window(
        max_count in 0..500u64, nodes in 1..5u64, slots in 1..8u64, per_ms in 1..120_000u64,
        mut calls in calls(),
    ) {
        // No node hears from another (a full partition): each decides from its own slots' rows,
        // as the SQL layer does in split mode.
        calls.sort_by_key(|call| call.2);
        let share = node_share(max_count, nodes);
        let mut counts: std::collections::BTreeMap<(u64, u64, u64), u64> = Default::default();
        let mut admitted: std::collections::BTreeMap<u64, u64> = Default::default();
        for (node, first_slot, now_ms, cost) in calls {
            let node = node % nodes;
            let window = window_of(now_ms, per_ms);
            let count = |counts: &std::collections::BTreeMap<(u64, u64, u64), u64>, slot, start: Option<u64>| {
                start.and_then(|start| counts.get(&(node, slot, start)).copied()).unwrap_or(0)
            };
            let previous_start = window.start_ms.checked_sub(per_ms);
            // The session's own slot first, then the others, as the SQL layer tries them.
            let rooms: Vec<(u64, u64)> = (0..slots)
                .map(|offset| (first_slot + offset) % slots)
                .map(|slot| {
                    let previous = count(&counts, slot, previous_start);
                    let limit = slot_limit(share, slots, slot, previous, window.elapsed_ms, per_ms);
                    (slot, limit.saturating_sub(count(&counts, slot, Some(window.start_ms))))
                })
                .collect();
            if let Some(parts) = split_parts(&rooms, cost) {
                for (slot, part) in parts {
                    *counts.entry((node, slot, window.start_ms)).or_default() += part;
                    *admitted.entry(window.start_ms).or_default() += part;
                }
            }
        }
        for (window, total) in admitted {
            prop_assert!(total <= max_count, "window {window}: admitted {total} of {max_count}");
        }
    }

    #[test]
    fn slot_quotas_sum_to_the_share(share in 0..1_000_000u64, slots in 1..64u64) {
        prop_assert_eq!((0..slots).map(|slot| slot_quota(share, slots, slot)).sum::<u64>(), share);
    }

    #[test]
    fn node_shares_never_sum_past_the_limit(max_count in 0..u64::MAX / 64, nodes in 1..64u64) {
        prop_assert!(node_share(max_count, nodes) * nodes <= max_count);
    }

    #[test]
    fn the_sliding_count_lies_between_one_window_and_two(
        previous in 0..u64::MAX / 2, current in 0..u64::MAX / 2, per_ms in 1..10_000_000u64, at in 0..10_000_000u64,
    ) {
        let elapsed = at % per_ms;
        let counted = sliding_count(previous, current, elapsed, per_ms);
        prop_assert!(current <= counted && counted <= current + previous);
        // Later in the window, the previous one counts less.
        prop_assert!(sliding_count(previous, current, (elapsed + 1).min(per_ms), per_ms) <= counted);
    }

    #[test]
    fn a_window_holds_its_calls(now_ms in 0..u64::MAX / 2, per_ms in 1..u64::MAX / 4) {
        let window = window_of(now_ms, per_ms);
        prop_assert_eq!(window.start_ms % per_ms, 0);
        prop_assert!(window.start_ms <= now_ms && now_ms - window.start_ms == window.elapsed_ms);
        prop_assert!(window.elapsed_ms < per_ms);
    }
}
