//! Untrusted lengths never drive allocation (DESIGN §4.3): a count field claiming a huge number
//! of entries in a short buffer is rejected before any memory is reserved for them.
//!
//! A separate test binary because it installs a global allocator that records the largest
//! allocation made on a thread while that thread is being watched.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crdt_core::codec::write_varint;
use crdt_core::{CounterView, DecodeError, PnCounter};

struct Watching;

thread_local! {
    // Const-initialised and without a destructor, so usable from inside the allocator.
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: delegates every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            LARGEST.with(|largest| largest.set(largest.get().max(layout.size())));
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    WATCHING.with(|w| w.set(true));
    let result = f();
    WATCHING.with(|w| w.set(false));
    (result, LARGEST.with(Cell::get))
}

#[test]
fn huge_count_in_short_buffer_allocates_nothing() {
    // Version byte, then a count of u64::MAX / 2 (a 9-byte varint): 10 bytes in all.
    let mut bytes = vec![1];
    write_varint(&mut bytes, u64::MAX / 2);
    assert_eq!(bytes.len(), 10);
    let (result, largest) = largest_allocation(|| PnCounter::decode(&bytes));
    assert!(
        matches!(result, Err(DecodeError::CountTooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(
        largest, 0,
        "decode allocated {largest} bytes before rejecting the count"
    );

    // Version byte and a 4-byte count (2^27) in a 5-byte buffer.
    let mut five = vec![1];
    write_varint(&mut five, 1 << 27);
    assert_eq!(five.len(), 5);
    let (result, largest) = largest_allocation(|| PnCounter::decode(&five));
    assert!(
        matches!(result, Err(DecodeError::CountTooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(largest, 0);
}

#[test]
fn allocation_is_bounded_by_the_input() {
    // A count that matches the buffer, but entries that turn out invalid: the decoder may
    // reserve space for the claimed entries, never more than the bytes present justify.
    let mut bytes = vec![1];
    write_varint(&mut bytes, 1_000);
    bytes.extend(std::iter::repeat_n(0u8, 18 * 1_000));
    let (result, largest) = largest_allocation(|| PnCounter::decode(&bytes));
    assert!(result.is_err());
    assert!(
        largest <= bytes.len() * 2,
        "allocated {largest} for {} input bytes",
        bytes.len()
    );
    // Parsing in place never allocates at all.
    let (result, largest) = largest_allocation(|| CounterView::parse(&bytes).map(|v| v.len()));
    assert!(result.is_err());
    assert_eq!(largest, 0);
}
