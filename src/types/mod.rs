//! The extension's SQL types and the varlena plumbing they share.

pub mod counter;
pub mod doc;
pub mod jsonb_text;
pub mod row_clock;

/// A core state with the two forms every SQL type of this extension has: the compact binary
/// encoding (on disk, `send`/`recv`) and the canonical text (`in`/`out`, pg_dump). The
/// conversions between the bytes and the text go through views where the type has them, so
/// replication in either mode builds no state.
pub trait StoredState: Sized {
    fn decode(bytes: &[u8]) -> Result<Self, crdt_core::DecodeError>;
    /// Checks `bytes` as completely as `decode` does, building as little as the type allows.
    /// Decoders accept only the canonical encoding, so valid bytes are stored as they came.
    fn validate(bytes: &[u8]) -> Result<(), crdt_core::DecodeError>;
    /// The text form of `bytes`, checked as completely as `decode` does.
    fn text_of_encoded(bytes: &[u8]) -> Result<String, crdt_core::DecodeError>;
    /// The binary form of a text form, which is read and checked completely.
    fn encode_text(text: &str) -> Result<Vec<u8>, crdt_core::TextError>;
}

macro_rules! stored_state_by_core {
    ($($state:ty, viewed by $parse:path, text encoded by $encode_text:path);*) => {$(
        impl StoredState for $state {
            fn decode(bytes: &[u8]) -> Result<Self, crdt_core::DecodeError> {
                <$state>::decode(bytes)
            }
            fn validate(bytes: &[u8]) -> Result<(), crdt_core::DecodeError> {
                $parse(bytes).map(drop)
            }
            fn text_of_encoded(bytes: &[u8]) -> Result<String, crdt_core::DecodeError> {
                $parse(bytes).map(|view| view.to_text())
            }
            fn encode_text(text: &str) -> Result<Vec<u8>, crdt_core::TextError> {
                $encode_text(text)
            }
        }
    )*};
}
stored_state_by_core!(
    crdt_core::PnCounter, viewed by crdt_core::CounterView::parse, text encoded by crdt_core::PnCounter::encode_text;
    crdt_core::Doc, viewed by crdt_core::DocView::parse, text encoded by crdt_core::Doc::encode_text;
    crdt_core::RowClock, viewed by crdt_core::RowClock::validate, text encoded by crdt_core::RowClock::encode_text
);

/// Everything a SQL type `$ty { encoded: Vec<u8> }` holding a core `$state` needs besides its
/// own operations: conversions, pgrx's datum traits, text input/output, and the binary
/// `$recv`/`$send` functions (wired in by `ALTER TYPE ... SET (RECEIVE, SEND)`).
macro_rules! crdt_sql_type {
    ($ty:ident, $state:ty, $sql_name:literal, $recv:ident, $send:ident) => {
        impl $ty {
            fn from_stored(encoded: Vec<u8>) -> Self {
                $ty { encoded }
            }

            fn stored(&self) -> &[u8] {
                &self.encoded
            }

            /// The state in the bytes of a stored datum (`XX001` if this extension did not
            /// write them).
            pub(crate) fn decode_stored(bytes: &[u8]) -> Result<$state, ::pgrx::pg_sys::panic::ErrorReport> {
                <$state as $crate::types::StoredState>::decode(bytes)
                    .map_err(|err| $crate::error::corrupt_datum($sql_name, err))
            }
        }

        $crate::types::stored_as_varlena!($ty, $sql_name);

        impl ::pgrx::InOutFuncs for $ty {
            fn input(input: &::std::ffi::CStr) -> Self {
                thread_local! {
                    static LAST_TEXT: $crate::types::LastInputs = $crate::types::LastInputs::new();
                }
                let encoded = LAST_TEXT.with(|last| {
                    last.stored_form(input.to_bytes(), || {
                        input
                            .to_str()
                            .map_err(|err| $crate::error::invalid_representation($sql_name, err))
                            .and_then(|text| {
                                <$state as $crate::types::StoredState>::encode_text(text)
                                    .map_err(|err| $crate::error::invalid_representation($sql_name, err))
                            })
                    })
                });
                match encoded {
                    Ok(encoded) => $ty::from_stored(encoded),
                    Err(report) => $crate::error::raise(report),
                }
            }

            fn output(&self, buffer: &mut ::pgrx::StringInfo) {
                let text = match <$state as $crate::types::StoredState>::text_of_encoded(&self.encoded) {
                    Ok(text) => text,
                    Err(err) => $crate::error::raise($crate::error::corrupt_datum($sql_name, err)),
                };
                // The text form is larger than the stored one: past 1 GB (with its NUL) it is
                // a 54000, never pgrx's XX000 panic beyond 2 GB.
                if text.len() >= $crate::types::MAX_ALLOC_SIZE {
                    let what = concat!("the text form of a ", $sql_name, " value");
                    $crate::error::raise($crate::error::too_large(what, text.len()));
                }
                buffer.push_str(&text);
            }
        }

        #[doc = concat!("Binary input of ", $sql_name, ": the compact encoding, validated completely and consumed whole.")]
        #[::pgrx::pg_extern(immutable, strict, parallel_safe)]
        fn $recv(mut internal: ::pgrx::Internal) -> Result<$ty, ::pgrx::pg_sys::panic::ErrorReport> {
            thread_local! {
                static LAST_BINARY: $crate::types::LastInputs = $crate::types::LastInputs::new();
            }
            let bytes = $crate::types::unread_message_bytes(&mut internal, $sql_name)?;
            // Valid bytes are stored as they came (decoders accept only the canonical encoding).
            let stored = LAST_BINARY.with(|last| {
                last.stored_form(bytes, || {
                    <$state as $crate::types::StoredState>::validate(bytes)
                        .map(|()| bytes.to_vec())
                        .map_err(|err| $crate::error::invalid_binary($sql_name, err))
                })
            })?;
            Ok($ty::from_stored(stored))
        }

        #[doc = concat!("Binary output of ", $sql_name, ": the compact encoding.")]
        #[::pgrx::pg_extern(immutable, strict, parallel_safe)]
        fn $send(value: $ty) -> Vec<u8> {
            value.encoded
        }
    };
}
pub(crate) use crdt_sql_type;

/// Implements pgrx's datum traits for a type stored as one plain varlena of its core crate's
/// encoding (never pgrx's default CBOR), given the SQL type's qualified name.
///
/// The Rust type must have `fn from_stored(Vec<u8>) -> Self` and `fn stored(&self) -> &[u8]`.
macro_rules! stored_as_varlena {
    ($ty:ty, $sql_name:literal) => {
        impl ::pgrx::datum::IntoDatum for $ty {
            fn into_datum(self) -> Option<::pgrx::pg_sys::Datum> {
                Some($crate::types::bytes_into_varlena_datum(self.stored()))
            }

            fn type_oid() -> ::pgrx::pg_sys::Oid {
                thread_local! {
                    static OID: $crate::catalog_cache::Cached<::pgrx::pg_sys::Oid> =
                        const { $crate::catalog_cache::Cached::new() };
                }
                // Qualified, so it resolves with the apply worker's empty search_path; read
                // again after DROP and CREATE EXTENSION give the type a new OID.
                OID.with(|oid| oid.get_or(|| ::pgrx::wrappers::regtypein($sql_name)))
            }
        }

        impl ::pgrx::datum::FromDatum for $ty {
            unsafe fn from_polymorphic_datum(
                datum: ::pgrx::pg_sys::Datum,
                is_null: bool,
                _typoid: ::pgrx::pg_sys::Oid,
            ) -> Option<Self> {
                if is_null || datum.is_null() {
                    return None;
                }
                // SAFETY: a non-null datum of this type is a (possibly toasted) varlena.
                Some(Self::from_stored(unsafe { $crate::types::varlena_datum_bytes(datum) }))
            }
        }

        $crate::types::call_abi_via_datum!($ty);
    };
}
pub(crate) use stored_as_varlena;

/// Lets pgrx pass `$ty` as an argument and return it as a result through its `FromDatum` and
/// `IntoDatum` impls (the glue pgrx's derive would otherwise generate for CBOR).
macro_rules! call_abi_via_datum {
    ($ty:ty) => {
        unsafe impl ::pgrx::callconv::BoxRet for $ty {
            unsafe fn box_into<'fcx>(
                self,
                fcinfo: &mut ::pgrx::callconv::FcInfo<'fcx>,
            ) -> ::pgrx::datum::Datum<'fcx> {
                match ::pgrx::datum::IntoDatum::into_datum(self) {
                    None => fcinfo.return_null(),
                    // SAFETY: a fresh datum of the function's declared return type.
                    Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
                }
            }
        }

        unsafe impl ::pgrx::datum::UnboxDatum for $ty {
            type As<'dat>
                = Self
            where
                Self: 'dat;
            unsafe fn unbox<'dat>(datum: ::pgrx::datum::Datum<'dat>) -> Self::As<'dat>
            where
                Self: 'dat,
            {
                // SAFETY: callers only unbox non-null datums of this type.
                unsafe { <Self as ::pgrx::datum::FromDatum>::from_datum(datum.sans_lifetime(), false) }
                    .expect("UnboxDatum is only called on non-null datums")
            }
        }

        unsafe impl<'fcx> ::pgrx::callconv::ArgAbi<'fcx> for $ty {
            unsafe fn unbox_arg_unchecked(arg: ::pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                // SAFETY: pgrx only calls this for arguments of this type; strict functions
                // never see NULL here.
                unsafe {
                    arg.unbox_arg_using_from_datum()
                        .unwrap_or_else(|| panic!("argument {index} must not be null"))
                }
            }

            unsafe fn unbox_nullable_arg(
                arg: ::pgrx::callconv::Arg<'_, 'fcx>,
            ) -> ::pgrx::nullable::Nullable<Self> {
                // SAFETY: as above; NULL maps to Nullable::Null.
                unsafe { arg.unbox_arg_using_from_datum().into() }
            }
        }
    };
}
pub(crate) use call_abi_via_datum;

/// The last few inputs (text or binary) one input function of this backend converted, and
/// the stored forms they gave.
///
/// PostgreSQL 15's apply worker converts every column of a replicated UPDATE twice, once to
/// find the local row and once to build the new one (`slot_store_data`, then
/// `slot_modify_data`), each time through a fresh `FmgrInfo`, so `fn_extra` can't keep it. The
/// input functions are pure, so the second conversion of the same input is a copy of the first.
/// A table with several columns of one type converts them in turn (a, b, a, b), so a few
/// inputs are kept, not one. Only small inputs are kept, and only successful conversions.
pub struct LastInputs(std::cell::RefCell<RecentInputs>);

/// [`LastInputs`]' entries: (input, stored form), the oldest replaced first.
struct RecentInputs {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl LastInputs {
    /// Inputs up to this size are remembered: the rows replication carries, not bulk loads of
    /// large documents.
    const MAX_KEPT: usize = 8192;
    /// Columns of one type in one table that stay remembered between the two conversions.
    const ENTRIES: usize = 4;

    pub const fn new() -> Self {
        LastInputs(std::cell::RefCell::new(RecentInputs { entries: Vec::new(), next: 0 }))
    }

    /// The stored form of `input`: the remembered one if `input` is one of the last inputs,
    /// else `convert()` (remembered when it succeeds).
    pub fn stored_form<E>(&self, input: &[u8], convert: impl FnOnce() -> Result<Vec<u8>, E>) -> Result<Vec<u8>, E> {
        if let Some((_, stored)) = self.0.borrow().entries.iter().find(|(kept, _)| kept.as_slice() == input) {
            return Ok(stored.clone());
        }
        let stored = convert()?;
        if input.len() <= Self::MAX_KEPT {
            let mut recent = self.0.borrow_mut();
            if recent.entries.len() < Self::ENTRIES {
                recent.entries.push((input.to_vec(), stored.clone()));
            } else {
                // The buffers are reused: no allocation per row once they are large enough.
                let oldest = recent.next;
                let (kept_input, kept_stored) = &mut recent.entries[oldest];
                kept_input.clear();
                kept_input.extend_from_slice(input);
                kept_stored.clear();
                kept_stored.extend_from_slice(&stored);
            }
            recent.next = (recent.next + 1) % Self::ENTRIES;
        }
        Ok(stored)
    }
}

/// PostgreSQL's `MaxAllocSize` (1 GB − 1, not exported by pgrx): no datum and no text form can
/// be larger.
pub const MAX_ALLOC_SIZE: usize = 0x3fff_ffff;

/// Copies `bytes` into a new palloc'd varlena with a 4-byte header.
///
/// A value beyond PostgreSQL's 1 GB limit (the merge of two docs of 600 MB each, say) is a
/// `54000` error, as for PostgreSQL's own types; unchecked, palloc would refuse it with an
/// `XX000` "invalid memory alloc request size".
pub fn bytes_into_varlena_datum(bytes: &[u8]) -> pgrx::pg_sys::Datum {
    let total = pgrx::pg_sys::VARHDRSZ + bytes.len();
    if total > MAX_ALLOC_SIZE {
        crate::error::raise(crate::error::too_large("a crdt value", total));
    }
    // SAFETY: palloc either returns `total` writable bytes or raises an ERROR; the copy stays
    // inside them, and the header written is the length PostgreSQL reads back.
    unsafe {
        let varlena = pgrx::pg_sys::palloc(total) as *mut pgrx::pg_sys::varlena;
        pgrx::set_varsize_4b(varlena, total as i32);
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (varlena as *mut u8).add(pgrx::pg_sys::VARHDRSZ),
            bytes.len(),
        );
        pgrx::pg_sys::Datum::from(varlena)
    }
}

/// The payload of a varlena datum, detoasted and decompressed, copied into Rust memory.
///
/// # Safety
/// `datum` must be a non-null varlena datum.
pub unsafe fn varlena_datum_bytes(datum: pgrx::pg_sys::Datum) -> Vec<u8> {
    // SAFETY: per the contract.
    unsafe { varlena_datum_slice(datum) }.to_vec()
}

/// The payload of a varlena datum, detoasted and decompressed, in place.
///
/// # Safety
/// `datum` must be a non-null varlena datum, and the slice must not outlive it nor the
/// current memory context (where a detoasted copy lives).
pub unsafe fn varlena_datum_slice<'a>(datum: pgrx::pg_sys::Datum) -> &'a [u8] {
    // SAFETY: per the contract. A value stored in line and uncompressed (a 1-byte or an
    // uncompressed 4-byte header) is read where it is, as pg_detoast_datum_packed would return
    // it, without a call through pgrx's FFI guard (a sigsetjmp per call, per column, per row);
    // only external and compressed values go through PostgreSQL.
    unsafe {
        let mut varlena = datum.cast_mut_ptr::<pgrx::pg_sys::varlena>();
        if pgrx::varatt_is_1b_e(varlena) || pgrx::varatt_is_4b_c(varlena) {
            varlena = pgrx::pg_sys::pg_detoast_datum_packed(varlena);
        }
        pgrx::varlena_to_byte_slice(varlena)
    }
}

/// The not yet consumed bytes of a receive function's message buffer, marked as consumed:
/// a type's binary input is always the whole rest of its field.
pub fn unread_message_bytes<'a>(
    internal: &'a mut pgrx::Internal,
    type_name: &str,
) -> Result<&'a [u8], pgrx::pg_sys::panic::ErrorReport> {
    // SAFETY: PostgreSQL calls a type's receive function with a StringInfo as `internal`.
    let buf = unsafe { internal.get_mut::<pgrx::pg_sys::StringInfoData>() }
        .ok_or_else(|| crate::error::invalid_binary(type_name, "no input buffer"))?;
    let start = usize::try_from(buf.cursor).unwrap_or(0);
    let len = usize::try_from(buf.len - buf.cursor).unwrap_or(0);
    buf.cursor = buf.len;
    // SAFETY: `data[cursor..len]` are the message bytes not yet consumed; the buffer outlives
    // the call.
    Ok(unsafe { std::slice::from_raw_parts(buf.data.add(start) as *const u8, len) })
}
