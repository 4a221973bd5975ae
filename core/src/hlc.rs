//! Hybrid logical clocks (docs/design.md, "The hybrid logical clock").
//!
//! An HLC value is one `u64`: 48 bits of wall-clock milliseconds since the Unix epoch, shifted
//! left by 16, plus a 16-bit logical counter. Comparing the `u64`s compares time first, then the
//! counter. When the counter overflows it simply carries into the millisecond bits: the value
//! stays monotonic and merely runs slightly ahead of the wall clock.

use std::fmt;

use crate::node::NodeId;

/// Bits of the logical counter at the low end of an HLC value.
pub const LOGICAL_BITS: u32 = 16;

/// The largest wall-clock millisecond value an HLC can hold (2^48 − 1, about the year 10889).
pub const MAX_WALL_MS: u64 = (1 << (64 - LOGICAL_BITS)) - 1;

const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

/// The wall-clock milliseconds part of an HLC value.
pub const fn hlc_wall_ms(hlc: u64) -> u64 {
    hlc >> LOGICAL_BITS
}

/// The logical counter part of an HLC value.
pub const fn hlc_logical(hlc: u64) -> u16 {
    // Truncation intended: the low 16 bits.
    (hlc & LOGICAL_MASK) as u16
}

/// Builds an HLC value from its parts; errors if `wall_ms` does not fit in 48 bits.
pub const fn hlc_from_parts(wall_ms: u64, logical: u16) -> Result<u64, ClockError> {
    if wall_ms > MAX_WALL_MS {
        return Err(ClockError::WallClockOutOfRange { wall_ms });
    }
    Ok((wall_ms << LOGICAL_BITS) | logical as u64)
}

/// How many milliseconds the stamp `hlc` lies ahead of the wall clock `wall_ms` (0 if it does
/// not). Remote stamps far ahead are still merged but reported (`crdt.max_clock_skew`).
pub const fn ahead_of_wall_ms(hlc: u64, wall_ms: u64) -> u64 {
    hlc_wall_ms(hlc).saturating_sub(wall_ms)
}

/// Why a clock could not produce a stamp. Both are errors rather than panics or wraps: a wrapped
/// stamp would sort before the value it replaces and silently lose the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockError {
    /// The wall clock reads a millisecond count that does not fit in 48 bits.
    WallClockOutOfRange {
        /// The wall-clock reading, in ms since the Unix epoch.
        wall_ms: u64,
    },
    /// No stamp greater than the required one exists (`u64::MAX` was reached).
    Exhausted,
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ClockError::WallClockOutOfRange { wall_ms } => write!(
                f,
                "wall clock reading {wall_ms} ms does not fit in the 48-bit hybrid logical clock (at most {MAX_WALL_MS})"
            ),
            ClockError::Exhausted => {
                write!(f, "hybrid logical clock exhausted: no timestamp after the maximum exists")
            }
        }
    }
}

impl std::error::Error for ClockError {}

/// A write's timestamp: HLC first, node id to break ties. The derived order is exactly
/// `(hlc, node)`, a total order, so every node picks the same winner whatever the arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp {
    /// The hybrid logical clock value.
    pub hlc: u64,
    /// The node that made the write.
    pub node: NodeId,
}

impl Stamp {
    /// A stamp of `hlc` made on `node`.
    pub const fn new(hlc: u64, node: NodeId) -> Self {
        Stamp { hlc, node }
    }
}

/// A backend-local clock: the wall clock, kept monotonic by a floor that every issued stamp
/// raises. It needs no shared memory: stamps only have to beat what this backend issued and
/// what the write replaces (see [`HybridClock::tick_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HybridClock {
    /// The last HLC value this clock issued (0 before the first).
    pub floor: u64,
}

impl HybridClock {
    /// A clock that has issued nothing yet (usable in a `static`/thread-local initializer).
    pub const fn new() -> Self {
        HybridClock { floor: 0 }
    }

    /// A new stamp: `max(wall_ms << 16, floor + 1)`, and the floor is raised to it. Strictly
    /// increasing even if the wall clock goes backwards. On error the clock is unchanged.
    pub fn tick(&mut self, wall_ms: u64) -> Result<u64, ClockError> {
        let next = self.peek(wall_ms)?;
        self.floor = next;
        Ok(next)
    }

    /// A stamp for a write that replaces a value stamped `seen`: `max(tick, seen + 1)`, and the
    /// floor is raised to it. The result is always `> seen`, so a node never loses its own
    /// write to its own clock running behind. On error the clock is unchanged.
    pub fn tick_after(&mut self, wall_ms: u64, seen: u64) -> Result<u64, ClockError> {
        let after_seen = seen.checked_add(1).ok_or(ClockError::Exhausted)?;
        let next = self.peek(wall_ms)?.max(after_seen);
        self.floor = next;
        Ok(next)
    }

    /// What [`tick`](Self::tick) would return, without issuing it.
    fn peek(&self, wall_ms: u64) -> Result<u64, ClockError> {
        let now = hlc_from_parts(wall_ms, 0)?;
        let after_floor = self.floor.checked_add(1).ok_or(ClockError::Exhausted)?;
        Ok(now.max(after_floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip() {
        let hlc = hlc_from_parts(1_700_000_000_000, 42).expect("fits");
        assert_eq!(hlc_wall_ms(hlc), 1_700_000_000_000);
        assert_eq!(hlc_logical(hlc), 42);
        assert_eq!(hlc_from_parts(MAX_WALL_MS, u16::MAX), Ok(u64::MAX));
        assert_eq!(
            hlc_from_parts(MAX_WALL_MS + 1, 0),
            Err(ClockError::WallClockOutOfRange {
                wall_ms: MAX_WALL_MS + 1
            })
        );
    }

    #[test]
    fn tick_follows_wall_clock() {
        let mut clock = HybridClock::new();
        let a = clock.tick(1_000).expect("tick");
        assert_eq!(a, 1_000 << 16);
        let b = clock.tick(2_000).expect("tick");
        assert_eq!(b, 2_000 << 16);
        assert_eq!(clock.floor, b);
    }

    #[test]
    fn monotonic_when_wall_clock_goes_backwards() {
        let mut clock = HybridClock::new();
        let mut last = clock.tick(10_000).expect("tick");
        for wall in [9_999, 5_000, 10_000, 0, 10_000] {
            let next = clock.tick(wall).expect("tick");
            assert!(next > last, "{next} > {last}");
            assert_eq!(hlc_wall_ms(next), 10_000);
            last = next;
        }
        assert_eq!(hlc_logical(last), 5);
    }

    #[test]
    fn logical_counter_carries_into_ms() {
        let mut clock = HybridClock {
            floor: hlc_from_parts(7, u16::MAX).expect("fits"),
        };
        let next = clock.tick(0).expect("tick");
        assert_eq!((hlc_wall_ms(next), hlc_logical(next)), (8, 0));
    }

    #[test]
    fn tick_after_beats_seen_even_with_skewed_clock() {
        let mut clock = HybridClock::new();
        let seen = hlc_from_parts(50_000, 3).expect("fits");
        let next = clock.tick_after(1_000, seen).expect("tick");
        assert_eq!(next, seen + 1);
        assert_eq!(clock.floor, next);
        // Later plain ticks stay above it too.
        assert!(clock.tick(1_001).expect("tick") > next);
        // With the wall clock ahead, the wall clock wins.
        let now = clock.tick_after(60_000, seen).expect("tick");
        assert_eq!(now, 60_000 << 16);
    }

    #[test]
    fn errors_instead_of_wrapping() {
        let mut clock = HybridClock::new();
        assert_eq!(clock.tick_after(1, u64::MAX), Err(ClockError::Exhausted));
        assert_eq!(clock, HybridClock::new(), "unchanged on error");
        assert_eq!(
            clock.tick(u64::MAX),
            Err(ClockError::WallClockOutOfRange { wall_ms: u64::MAX })
        );
        let mut full = HybridClock { floor: u64::MAX };
        assert_eq!(full.tick(0), Err(ClockError::Exhausted));
        assert_eq!(full.floor, u64::MAX);
        // The very last stamp can still be issued.
        let mut almost = HybridClock { floor: u64::MAX - 1 };
        assert_eq!(almost.tick(0), Ok(u64::MAX));
        assert!(ClockError::Exhausted.to_string().contains("exhausted"));
    }

    #[test]
    fn ahead_of_wall() {
        let hlc = hlc_from_parts(10_000, 9).expect("fits");
        assert_eq!(ahead_of_wall_ms(hlc, 4_000), 6_000);
        assert_eq!(ahead_of_wall_ms(hlc, 10_000), 0);
        assert_eq!(ahead_of_wall_ms(hlc, 20_000), 0);
    }

    #[test]
    fn stamp_order_is_hlc_then_node() {
        let lo = NodeId::from_bytes([1; 16]);
        let hi = NodeId::from_bytes([2; 16]);
        assert!(Stamp::new(5, hi) < Stamp::new(6, lo));
        assert!(Stamp::new(5, lo) < Stamp::new(5, hi));
        assert_eq!(Stamp::new(5, lo).max(Stamp::new(5, hi)), Stamp::new(5, hi));
    }
}
