//! PostgreSQL functions called without pgrx's FFI guard because, for the arguments this crate
//! passes, they cannot raise an ERROR (so they never longjmp over Rust frames).
//!
//! pgrx wraps every `pg_sys` function in a guard that would catch an ERROR's longjmp: a
//! sigsetjmp and a closure per call, about 180 instructions. Replication pays that per column
//! per row where the extension allocates a value or reads a tuple, about 1,800 instructions of
//! the apply worker's work per replicated row. These two are the ones on that path.

use std::ffi::{c_int, c_void};

use pgrx::pg_sys::{self, Datum, HeapTuple, TupleDesc};

use crate::error::{raise, too_large};
use crate::types::MAX_ALLOC_SIZE;

unsafe extern "C" {
    /// `palloc` with flags. With `MCXT_ALLOC_NO_OOM` and a size of at most `MaxAllocSize` it
    /// returns NULL when memory runs out, and raises nothing.
    fn palloc_extended(size: pg_sys::Size, flags: c_int) -> *mut c_void;

    /// Reads a heap tuple into one datum and one null flag per attribute of `tupleDesc`. For a
    /// tuple holding all of the descriptor's attributes it allocates nothing and raises nothing;
    /// one stored before an ADD COLUMN gets the missing values from a cache that can allocate
    /// (PostgreSQL 15.x), so callers pass only tuples that hold them all.
    #[link_name = "heap_deform_tuple"]
    pub fn deform_tuple(tuple: HeapTuple, tupleDesc: TupleDesc, values: *mut Datum, isnull: *mut bool);
}

/// `size` bytes in the current memory context, as `palloc` gives them. More than PostgreSQL's
/// 1 GB limit is a `54000` error and running out of memory a `53200`, both raised through pgrx.
pub fn palloc(size: usize) -> *mut u8 {
    if size > MAX_ALLOC_SIZE {
        raise(too_large("a crdt value", size));
    }
    // SAFETY: a size palloc accepts, and NO_OOM: nothing can raise.
    let memory = unsafe { palloc_extended(size, pg_sys::MCXT_ALLOC_NO_OOM as c_int) };
    if memory.is_null() {
        raise(crate::error::out_of_memory(size));
    }
    memory.cast()
}
