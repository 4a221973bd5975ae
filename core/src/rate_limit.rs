//! Distributed rate limiting on CRDT counters (docs/rate_limit.md): the window a call falls in,
//! the sliding-window count, and in `split` mode each node's and each slot's share of the limit.
//! The SQL layer reads the counts and writes the counters; what is admitted is decided here.
//!
//! Counts are kept per key, window, node and slot: a node writes only its own rows, spread over
//! a few slots so that sessions limiting one hot key do not all wait for one row lock.

/// Where a call falls: windows are `per_ms` long and aligned to the Unix epoch, so that every
/// node puts a call made at the same instant in the same window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPosition {
    /// The start of the call's window (ms since the epoch), a multiple of `per_ms`.
    pub start_ms: u64,
    /// How far into its window the call is, in ms: less than `per_ms`.
    pub elapsed_ms: u64,
}

/// The window of a call at `now_ms`, for windows `per_ms` long (at least 1 ms).
pub fn window_of(now_ms: u64, per_ms: u64) -> WindowPosition {
    let per_ms = per_ms.max(1);
    let elapsed_ms = now_ms % per_ms;
    WindowPosition {
        start_ms: now_ms - elapsed_ms,
        elapsed_ms,
    }
}

/// The sliding-window count: the current window's count, plus the previous window's weighted by
/// the part of it the sliding window (the last `per_ms` up to now) still covers. Rounded up: it
/// never counts less than was admitted in the sliding window, were the previous window's calls
/// spread evenly over it.
pub fn sliding_count(previous: u64, current: u64, elapsed_ms: u64, per_ms: u64) -> u64 {
    let per_ms = per_ms.max(1);
    let still_covered = per_ms - elapsed_ms.min(per_ms);
    let weighted = (u128::from(previous) * u128::from(still_covered)).div_ceil(u128::from(per_ms));
    current.saturating_add(u64::try_from(weighted).unwrap_or(u64::MAX))
}

/// Whether a call costing `cost` is admitted where `counted` is already counted against
/// `limit`.
pub fn admits(counted: u64, cost: u64, limit: u64) -> bool {
    counted.checked_add(cost).is_some_and(|total| total <= limit)
}

/// `split` mode: the part of `max_count` one of `nodes` nodes may admit per window. The shares of
/// all nodes never sum to more than `max_count`, so neither do their admissions, partitioned or
/// not.
pub fn node_share(max_count: u64, nodes: u64) -> u64 {
    max_count / nodes.max(1)
}

/// The part of a node's `share` that slot `slot` (of `slots`) may admit per window: the share
/// split evenly, the remainder to the first slots, so that the parts sum to the share. Each slot
/// is one row, whose lock makes its admissions exact; together they admit at most the share.
pub fn slot_quota(share: u64, slots: u64, slot: u64) -> u64 {
    let slots = slots.max(1);
    share / slots + u64::from(slot < share % slots)
}

/// `split` mode: what slot `slot` (of `slots`) may hold in the current window, its quota of
/// `share` less what its previous window (`previous`) still counts at `elapsed_ms` — the bound
/// its row's conditional credit enforces, however many sessions credit it at once.
pub fn slot_limit(share: u64, slots: u64, slot: u64, previous: u64, elapsed_ms: u64, per_ms: u64) -> u64 {
    slot_quota(share, slots, slot).saturating_sub(sliding_count(previous, 0, elapsed_ms, per_ms))
}

/// `split` mode: how a call of `cost` is taken from a node's slots, given as `(slot, room)` in
/// the order to try them (the session's own slot first): a part of each room in turn until the
/// cost is covered, or `None` if the rooms together fall short (the call is refused).
pub fn split_parts(rooms: &[(u64, u64)], cost: u64) -> Option<Vec<(u64, u64)>> {
    let mut left = cost;
    let mut parts = Vec::new();
    for &(slot, room) in rooms {
        if left == 0 {
            break;
        }
        let part = left.min(room);
        if part > 0 {
            parts.push((slot, part));
            left -= part;
        }
    }
    (left == 0).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        assert_eq!(
            window_of(125_000, 60_000),
            WindowPosition {
                start_ms: 120_000,
                elapsed_ms: 5_000
            }
        );
        assert_eq!(window_of(120_000, 60_000).elapsed_ms, 0);
    }

    #[test]
    fn the_previous_window_fades_out_across_the_current_one() {
        assert_eq!(sliding_count(100, 10, 0, 60_000), 110);
        assert_eq!(sliding_count(100, 10, 30_000, 60_000), 60);
        // Rounded up.
        assert_eq!(sliding_count(1, 0, 59_999, 60_000), 1);
        assert_eq!(sliding_count(100, 10, 60_000, 60_000), 10);
    }

    #[test]
    fn admission_never_overflows() {
        assert!(admits(99, 1, 100));
        assert!(!admits(100, 1, 100));
        assert!(!admits(u64::MAX, 1, u64::MAX));
    }

    #[test]
    fn shares_and_quotas() {
        assert_eq!(node_share(100, 3), 33);
        assert_eq!(node_share(100, 0), 100);
        assert_eq!(
            (0..4).map(|slot| slot_quota(33, 4, slot)).collect::<Vec<_>>(),
            [9, 8, 8, 8]
        );
    }

    #[test]
    fn a_cost_is_taken_from_several_slots_or_refused() {
        assert_eq!(split_parts(&[(3, 2), (4, 0), (5, 4)], 5), Some(vec![(3, 2), (5, 3)]));
        assert_eq!(split_parts(&[(3, 2), (5, 2)], 5), None);
        assert_eq!(split_parts(&[(3, 0)], 0), Some(vec![]));
    }
}
