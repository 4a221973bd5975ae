//! Untrusted lengths never drive allocation (docs/design.md, "Stored forms and input"): a count
//! field claiming a huge number of entries in a short buffer is rejected before any memory is
//! reserved for them, and what decoding does allocate is bounded by the bytes present.
//!
//! A separate test binary because it installs a global allocator that records the largest
//! allocation made on a thread while that thread is being watched.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod common;

use common::{edited_text, TextEdit};
use crdt_core::codec::write_varint;
use crdt_core::{CounterView, Decimal, DecodeError, Doc, DocView, NodeId, PnCounter, Stamp};
use proptest::prelude::*;
use proptest::sample::Index;

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
    assert!(matches!(result, Err(DecodeError::CountTooLarge { .. })), "{result:?}");
    assert_eq!(
        largest, 0,
        "decode allocated {largest} bytes before rejecting the count"
    );

    // Version byte and a 4-byte count (2^27) in a 5-byte buffer.
    let mut five = vec![1];
    write_varint(&mut five, 1 << 27);
    assert_eq!(five.len(), 5);
    let (result, largest) = largest_allocation(|| PnCounter::decode(&five));
    assert!(matches!(result, Err(DecodeError::CountTooLarge { .. })), "{result:?}");
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

/// What decoding a doc may allocate whatever its size: one node of a `BTreeMap` (the owned
/// doc's properties, a counter's per-node sums), about 1.3 KiB.
const FIXED: usize = 2048;

#[test]
fn doc_huge_counts_in_short_buffers_allocate_nothing() {
    let mut nodes = vec![1, 0];
    write_varint(&mut nodes, u64::MAX / 2);
    let mut properties = vec![1, 0, 0, 0];
    write_varint(&mut properties, 1 << 40);
    for bytes in [nodes, properties] {
        let (result, largest) = largest_allocation(|| Doc::decode(&bytes));
        assert!(matches!(result, Err(DecodeError::CountTooLarge { .. })), "{result:?}");
        assert_eq!(
            largest, 0,
            "decode allocated {largest} bytes before rejecting the count"
        );
        let (result, largest) = largest_allocation(|| DocView::parse(&bytes).map(|v| v.len()));
        assert!(result.is_err());
        assert_eq!(largest, 0);
    }
}

#[test]
fn json_nesting_stack_is_capped() {
    // A million levels: refused at the depth limit, with a stack of at most that many frames
    // (not one per level of input).
    let hostile = "[{\"a\":".repeat(1_000_000);
    let (valid, largest) = largest_allocation(|| crdt_core::json::is_canonical_json(&hostile));
    assert!(!valid);
    assert!(largest <= 32 * 1024, "{largest}");
    let (result, largest) = largest_allocation(|| crdt_core::json::canonical_json(&hostile));
    assert!(result.is_err());
    assert!(largest <= 32 * 1024, "{largest}");
    let object = format!("{{\"k\": {hostile}");
    let (result, largest) = largest_allocation(|| Doc::new().patch(&object, Stamp::default()));
    assert!(result.is_err());
    assert!(largest <= 32 * 1024, "{largest}");
}

/// A doc with values, nested JSON, a tombstone, a watermark and counters on two nodes.
fn sample_doc() -> Doc {
    let (a, b) = (NodeId::from_bytes([0xa; 16]), NodeId::from_bytes([0xb; 16]));
    let mut doc = Doc::new();
    doc.put(r#"{"x": 1}"#, Stamp::new(1 << 40, a)).expect("put");
    doc.patch(
        r#"{"s": "a\"b\n\u00e9", "arr": [1, [2, {"k": null}], "x"], "n": 1.50, "gone": null}"#,
        Stamp::new((1 << 40) + 5, b),
    )
    .expect("patch");
    let amount: Decimal = "2.25".parse().expect("decimal");
    doc.add("n", &amount, a).expect("add");
    doc.add("n", &amount.neg(), b).expect("add");
    doc.add("c", &amount, b).expect("add");
    doc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the bytes (a valid doc with bits flipped and a tail cut, or noise), decoding
    /// allocates at most twice their size plus a fixed map node.
    #[test]
    fn doc_decode_allocation_is_bounded_by_the_input(
        flips in prop::collection::vec((any::<Index>(), 0u8..8), 0..4),
        cut in any::<Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        use_noise in any::<bool>(),
    ) {
        let mut bytes = if use_noise { noise } else { sample_doc().encode() };
        for (at, bit) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
        }
        bytes.truncate(cut.index(bytes.len() + 1).max(bytes.len() / 2));
        let bound = 2 * bytes.len() + FIXED;
        let (_, largest) = largest_allocation(|| Doc::decode(&bytes).map(|d| d.encoded_len()));
        prop_assert!(largest <= bound, "decode: {} for {} bytes", largest, bytes.len());
        let (_, largest) = largest_allocation(|| DocView::parse(&bytes).map(|v| v.len()));
        prop_assert!(largest <= bound, "parse: {} for {} bytes", largest, bytes.len());
    }

    /// Text input is rewritten canonically (separators added), so the bound is looser, but
    /// still proportional to the text.
    #[test]
    fn doc_text_allocation_is_bounded_by_the_input(
        edits in prop::collection::vec((any::<Index>(), any::<char>()), 0..3),
    ) {
        let text = edited_text(&sample_doc().to_text(), edits.into_iter().map(|(at, c)| (at, c, TextEdit::Replace)));
        let (_, largest) = largest_allocation(|| Doc::from_text(&text).map(|d| d.encoded_len()));
        prop_assert!(largest <= 4 * text.len() + FIXED, "{} for {} bytes", largest, text.len());
    }
}
