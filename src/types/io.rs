//! The I/O functions of the extension's SQL types (`in`, `out`, `recv`, `send`), called by
//! PostgreSQL through fmgr like its own types' are.
//!
//! They are plain version-1 C functions rather than pgrx `#[pg_extern]`s: replication runs them
//! for every column of every replicated row (the walsender the output or send function, the
//! apply worker the input or receive function, twice per UPDATE), and pgrx's argument and result
//! glue copied each value through Rust allocations three times. Here a value is read where it
//! lies and written once, into the palloc'd result. `crdt_sql_type!` exports them under the C
//! symbols the install scripts name.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;

use pgrx::pg_sys::{self, Datum, FunctionCallInfo};

use crate::error::{corrupt_datum, invalid_binary, invalid_representation, raise, too_large};
use crdt_core::StoredForm;
use pgrx::pg_sys::panic::ErrorReport;

use crate::types::{bytes_into_varlena_datum, varlena_datum_slice, MAX_ALLOC_SIZE};

/// The first argument of a call, and whether it is NULL.
///
/// # Safety
/// `fcinfo` must be the call's `FunctionCallInfo`, with at least one argument.
unsafe fn first_argument(fcinfo: FunctionCallInfo) -> (Datum, bool) {
    // SAFETY: per the contract.
    let argument = unsafe { &(*fcinfo).args.as_slice(1)[0] };
    (argument.value, argument.isnull)
}

/// Reads a text that is not a type's text form into its binary form, where the type reads one
/// (a counter reads a plain number, as a driver sends an untyped parameter); `None` for a text
/// form. Runs before every text input, so it decides without reading the whole of a text form.
pub type PlainInput = fn(&[u8]) -> Option<Result<Vec<u8>, ErrorReport>>;

/// The [`PlainInput`] of types that read nothing but their text form.
pub fn no_plain_input(_text: &[u8]) -> Option<Result<Vec<u8>, ErrorReport>> {
    None
}

/// Text input (`cstring` → value): `plain_input`'s reading if it has one, else the text read
/// and checked completely, unless it is one of `last`'s inputs. Not strict (as 0.1.0 declared
/// it): a NULL input is a NULL value.
///
/// # Safety
/// `fcinfo` must be a call of a type's input function.
pub unsafe fn text_input<S: StoredForm>(
    fcinfo: FunctionCallInfo,
    type_name: &str,
    plain_input: PlainInput,
    last: &LastInputs,
) -> Datum {
    // SAFETY: per the contract.
    let (argument, is_null) = unsafe { first_argument(fcinfo) };
    // InputFunctionCall passes a NULL string as a non-null argument holding a null pointer.
    if is_null || argument.is_null() {
        // SAFETY: as above.
        unsafe { (*fcinfo).isnull = true };
        return Datum::from(0usize);
    }
    // SAFETY: a non-null cstring argument is a NUL-terminated string alive for the call.
    let input = unsafe { CStr::from_ptr(argument.cast_mut_ptr()) }.to_bytes();
    // Not remembered in `last`: what it stands for may depend on settings (crdt.node_id).
    if let Some(plain) = plain_input(input) {
        return plain.map_or_else(|report| raise(report), |encoded| bytes_into_varlena_datum(&encoded));
    }
    let converted = last.convert(
        input,
        |stored| {
            let text = std::str::from_utf8(input).map_err(|err| invalid_representation(type_name, err))?;
            // Written straight into the remembered buffer, which this backend reuses.
            S::encode_text_into_stored(text, stored).map_err(|err| invalid_representation(type_name, err))
        },
        bytes_into_varlena_datum,
    );
    converted.unwrap_or_else(|report| raise(report))
}

/// Text output (value → `cstring`), written into a buffer this backend reuses.
///
/// # Safety
/// `fcinfo` must be a call of a type's (strict) output function.
pub unsafe fn text_output<S: StoredForm>(fcinfo: FunctionCallInfo, type_name: &str) -> Datum {
    thread_local! {
        static TEXT: Cell<String> = const { Cell::new(String::new()) };
    }
    /// A buffer grown past this by a large value is not kept.
    const KEPT_CAPACITY: usize = 64 * 1024;
    // SAFETY: per the contract, the argument is a non-null value of the type, alive for the call.
    let stored = unsafe { varlena_datum_slice(first_argument(fcinfo).0) };
    TEXT.with(|buffer| {
        // Taken out, so an error while writing just drops it.
        let mut text = buffer.take();
        text.clear();
        if let Err(err) = S::write_text_of_stored(stored, &mut text) {
            raise(corrupt_datum(type_name, err));
        }
        // The text form is larger than the stored one: past 1 GB (with its NUL) it is a
        // 54000, as for PostgreSQL's own types.
        if text.len() >= MAX_ALLOC_SIZE {
            raise(too_large(&format!("the text form of a {type_name} value"), text.len()));
        }
        let cstring = crate::no_raise::palloc(text.len() + 1);
        // SAFETY: `len + 1` writable bytes; the copy and the NUL stay inside them.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), cstring, text.len());
            *cstring.add(text.len()) = 0;
        }
        if text.capacity() <= KEPT_CAPACITY {
            buffer.set(text);
        }
        Datum::from(cstring)
    })
}

/// Binary input (`internal` message buffer → value): the rest of the field, validated
/// completely unless it is one of `last`'s inputs, and stored as it came (decoders accept only
/// the canonical encoding).
///
/// # Safety
/// `fcinfo` must be a call of a type's (strict) receive function.
pub unsafe fn binary_input<S: StoredForm>(fcinfo: FunctionCallInfo, type_name: &str, last: &LastInputs) -> Datum {
    // SAFETY: per the contract, the argument is the message's StringInfo.
    let message = unsafe { first_argument(fcinfo).0.cast_mut_ptr::<pg_sys::StringInfoData>() };
    // SAFETY: as above; the buffer outlives the call.
    let bytes = unsafe { unread_message_bytes(message) };
    let converted = last.convert(
        bytes,
        |stored| {
            S::validate_stored(bytes).map_err(|err| invalid_binary(type_name, err))?;
            stored.extend_from_slice(bytes);
            Ok(())
        },
        bytes_into_varlena_datum,
    );
    converted.unwrap_or_else(|report| raise(report))
}

/// Binary output (value → `bytea`): a copy of the stored bytes (the caller frees it).
///
/// # Safety
/// `fcinfo` must be a call of a type's (strict) send function.
pub unsafe fn binary_output(fcinfo: FunctionCallInfo) -> Datum {
    // SAFETY: per the contract, the argument is a non-null value of the type, alive for the call.
    bytes_into_varlena_datum(unsafe { varlena_datum_slice(first_argument(fcinfo).0) })
}

/// The not yet consumed bytes of a receive function's message buffer, marked as consumed:
/// a type's binary input is always the whole rest of its field.
///
/// # Safety
/// `message` must be a valid StringInfo that outlives the returned slice.
unsafe fn unread_message_bytes<'a>(message: *mut pg_sys::StringInfoData) -> &'a [u8] {
    // SAFETY: per the contract.
    let buffer = unsafe { &mut *message };
    let end = usize::try_from(buffer.len).unwrap_or(0);
    let start = usize::try_from(buffer.cursor).unwrap_or(0).min(end);
    let len = end - start;
    buffer.cursor = buffer.len;
    // SAFETY: `data[cursor..len]` are the message bytes not yet consumed.
    unsafe { std::slice::from_raw_parts(buffer.data.add(start).cast::<u8>(), len) }
}

/// The last few inputs (text or binary) one input function of this backend converted, and
/// the stored forms they gave.
///
/// PostgreSQL 15's apply worker converts every column of a replicated UPDATE twice, once to
/// find the local row and once to build the new one (`slot_store_data`, then
/// `slot_modify_data`), each time through a fresh `FmgrInfo`, so `fn_extra` can't keep it. The
/// input functions are pure, so the second conversion of the same input is a copy of the first.
/// A table with several columns of one type converts them in turn (a, b, a, b), so a few
/// inputs are kept, not one. Only small inputs are kept, and only successful conversions.
pub struct LastInputs(RefCell<RecentInputs>);

/// [`LastInputs`]' entries, the oldest replaced first.
struct RecentInputs {
    entries: Vec<Kept>,
    /// The entry replaced next (the oldest, once all are in use).
    next: usize,
}

/// One input and the stored form it gave; its buffers are reused by the inputs after it.
struct Kept {
    input: Vec<u8>,
    stored: Vec<u8>,
    /// False while a conversion into it runs, and after one failed.
    valid: bool,
}

impl LastInputs {
    /// Inputs up to this size are remembered: the rows replication carries, not bulk loads of
    /// large documents.
    const MAX_KEPT: usize = 8192;
    /// Columns of one type in one table that stay remembered between the two conversions.
    const ENTRIES: usize = 4;

    pub const fn new() -> Self {
        LastInputs(RefCell::new(RecentInputs {
            entries: Vec::new(),
            next: 0,
        }))
    }

    /// `deliver`s the stored form of `input`: the remembered one if `input` is one of the last
    /// inputs, else the one `convert` appends to the buffer it is given (remembered when it
    /// succeeds).
    pub fn convert<E, R>(
        &self,
        input: &[u8],
        convert: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        deliver: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, E> {
        let mut recent = self.0.borrow_mut();
        let kept = recent.entries.len();
        // The newest first: the apply worker's second conversion is of the input just converted.
        let mut newest_first = (0..kept).map(|age| (recent.next + kept - 1 - age) % kept);
        if let Some(found) = newest_first.find(|&i| {
            let entry = &recent.entries[i];
            entry.valid && entry.input == input
        }) {
            return Ok(deliver(&recent.entries[found].stored));
        }
        if input.len() > Self::MAX_KEPT {
            drop(recent);
            let mut stored = Vec::new();
            convert(&mut stored)?;
            return Ok(deliver(&stored));
        }
        let slot = recent.next;
        recent.next = (slot + 1) % Self::ENTRIES;
        if slot == kept {
            recent.entries.push(Kept {
                input: Vec::new(),
                stored: Vec::new(),
                valid: false,
            });
        }
        // The buffers are reused: no allocation per row once they are large enough.
        let entry = &mut recent.entries[slot];
        entry.valid = false;
        entry.input.clear();
        entry.input.extend_from_slice(input);
        entry.stored.clear();
        convert(&mut entry.stored)?;
        entry.valid = true;
        Ok(deliver(&entry.stored))
    }
}
