//! The extension's SQL types, one file each, and the plumbing they share.
//!
//! A type is declared once, with `#[derive(SqlType)]` (the `crdt-macros` crate): that declaration
//! generates its `CREATE TYPE`, its I/O functions and their C symbols, and, for types that merge,
//! `crdt.merge` and `crdt.merge_agg`. What it generates calls the code here and in `io`. How to
//! add a type: `docs/adding-a-type.md`.

pub mod counter;
pub mod doc;
pub mod io;
pub mod jsonb_text;
pub mod row_clock;

/// Everything a SQL type `$ty { encoded: Vec<u8> }` holding a core `$state` needs besides its
/// own operations: conversions, pgrx's datum traits and SQL mapping (to `$sql_type`, in the
/// extension's schema), and its four I/O functions exported under the C symbols given (see
/// `io`). Invoked by `#[derive(SqlType)]`, which also writes the SQL.
macro_rules! crdt_sql_type {
    ($ty:ident, $state:ty, $sql_name:literal, $sql_type:literal, $plain_input:path,
     in $in_fn:ident / $in_info:ident, out $out_fn:ident / $out_info:ident,
     recv $recv_fn:ident / $recv_info:ident, send $send_fn:ident / $send_info:ident) => {
        impl $ty {
            fn from_stored(encoded: Vec<u8>) -> Self {
                $ty { encoded }
            }

            fn stored(&self) -> &[u8] {
                &self.encoded
            }

            /// The state in the bytes of a stored datum (`XX001` if this extension did not
            /// write them).
            #[allow(dead_code, reason = "a type whose functions all work on its bytes has no use for it")]
            pub(crate) fn decode_stored(bytes: &[u8]) -> Result<$state, ::pgrx::pg_sys::panic::ErrorReport> {
                <$state as ::crdt_core::StoredForm>::decode_stored(bytes)
                    .map_err(|err| $crate::error::corrupt_datum($sql_name, err))
            }
        }

        $crate::types::stored_as_varlena!($ty, $sql_name);

        // SAFETY: the SQL type of this name is created by the `extension_sql!` of the type's
        // `#[derive(SqlType)]`.
        unsafe impl ::pgrx::pgrx_sql_entity_graph::metadata::SqlTranslatable for $ty {
            const TYPE_IDENT: &'static str = ::pgrx::pgrx_resolved_type!($ty);
            const TYPE_ORIGIN: ::pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
                ::pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::ThisExtension;
            const ARGUMENT_SQL: Result<
                ::pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef,
                ::pgrx::pgrx_sql_entity_graph::metadata::ArgumentError,
            > = Ok(::pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::As($sql_type));
            const RETURN_SQL: Result<
                ::pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef,
                ::pgrx::pgrx_sql_entity_graph::metadata::ReturnsError,
            > = Ok(::pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef::One(
                ::pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::As($sql_type),
            ));
        }

        $crate::types::v1_function!(
            #[doc = concat!("Text input of ", $sql_name, ": read and checked completely.")]
            $in_fn, $in_info, |fcinfo| {
                thread_local! {
                    static LAST_TEXT: $crate::types::io::LastInputs = const { $crate::types::io::LastInputs::new() };
                }
                // SAFETY: PostgreSQL calls this as the type's input function.
                LAST_TEXT.with(|last| unsafe { $crate::types::io::text_input::<$state>(fcinfo, $sql_name, $plain_input, last) })
            }
        );

        $crate::types::v1_function!(
            #[doc = concat!("Text output of ", $sql_name, ": its canonical text form.")]
            $out_fn, $out_info, |fcinfo| {
                // SAFETY: PostgreSQL calls this as the type's output function.
                unsafe { $crate::types::io::text_output::<$state>(fcinfo, $sql_name) }
            }
        );

        $crate::types::v1_function!(
            #[doc = concat!("Binary input of ", $sql_name, ": the compact encoding, validated completely and consumed whole.")]
            $recv_fn, $recv_info, |fcinfo| {
                thread_local! {
                    static LAST_BINARY: $crate::types::io::LastInputs = const { $crate::types::io::LastInputs::new() };
                }
                // SAFETY: PostgreSQL calls this as the type's receive function.
                LAST_BINARY.with(|last| unsafe { $crate::types::io::binary_input::<$state>(fcinfo, $sql_name, last) })
            }
        );

        $crate::types::v1_function!(
            #[doc = concat!("Binary output of ", $sql_name, ": the compact encoding.")]
            $send_fn, $send_info, |fcinfo| {
                // SAFETY: PostgreSQL calls this as the type's send function.
                unsafe { $crate::types::io::binary_output(fcinfo) }
            }
        );
    };
}
pub(crate) use crdt_sql_type;

/// Exports `$body` as the version-1 C function `$name` (with its `$info` record), run under
/// pgrx's guard: a Rust panic or a raised error becomes a PostgreSQL ERROR with its SQLSTATE.
macro_rules! v1_function {
    (#[doc = $doc:expr] $name:ident, $info:ident, |$fcinfo:ident| $body:block) => {
        #[doc = $doc]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name($fcinfo: ::pgrx::pg_sys::FunctionCallInfo) -> ::pgrx::pg_sys::Datum {
            let body = || $body;
            // SAFETY: the guard is what pgrx's own wrappers run their functions in.
            unsafe { ::pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(body) }
        }

        #[doc = concat!("fmgr's record for `", stringify!($name), "`: a version-1 function.")]
        #[unsafe(no_mangle)]
        pub extern "C" fn $info() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1_API: ::pgrx::pg_sys::Pg_finfo_record = ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1_API
        }
    };
}
pub(crate) use v1_function;

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
                Some(Self::from_stored(unsafe {
                    $crate::types::varlena_datum_bytes(datum)
                }))
            }
        }

        $crate::types::call_abi_via_datum!($ty);
    };
}
pub(crate) use stored_as_varlena;

/// Lets pgrx pass `$ty` as an argument and return it as a result through its `FromDatum` and
/// `IntoDatum` impls (the glue pgrx's `PostgresType` derive generates for its CBOR types).
macro_rules! call_abi_via_datum {
    ($ty:ty) => {
        unsafe impl ::pgrx::callconv::BoxRet for $ty {
            unsafe fn box_into<'fcx>(self, fcinfo: &mut ::pgrx::callconv::FcInfo<'fcx>) -> ::pgrx::datum::Datum<'fcx> {
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

            unsafe fn unbox_nullable_arg(arg: ::pgrx::callconv::Arg<'_, 'fcx>) -> ::pgrx::nullable::Nullable<Self> {
                // SAFETY: as above; NULL maps to Nullable::Null.
                unsafe { arg.unbox_arg_using_from_datum().into() }
            }
        }
    };
}
pub(crate) use call_abi_via_datum;

/// A core merge over two encodings, appending the merged encoding (`crdt_core::merge_encoded`,
/// `crdt_core::doc::merge_encoded`).
pub(crate) type MergeEncoded = fn(&[u8], &[u8], &mut Vec<u8>) -> Result<(), crdt_core::DecodeError>;

/// The merge of two stored values by a core function over encodings (`merge_encoded`): both
/// are validated first, so bytes this extension did not write are an `XX001` error.
pub(crate) fn merge_stored(
    left: &[u8],
    right: &[u8],
    merge_encoded: MergeEncoded,
    sql_name: &str,
) -> Result<Vec<u8>, pgrx::pg_sys::panic::ErrorReport> {
    let mut merged = Vec::with_capacity(left.len().max(right.len()));
    merge_encoded(left, right, &mut merged).map_err(|err| crate::error::corrupt_datum(sql_name, err))?;
    Ok(merged)
}

/// PostgreSQL's `MaxAllocSize` (1 GB − 1, not exported by pgrx): no datum and no text form can
/// be larger.
pub const MAX_ALLOC_SIZE: usize = 0x3fff_ffff;

/// Copies `bytes` into a new palloc'd varlena with a 4-byte header.
///
/// A value beyond PostgreSQL's 1 GB limit (the merge of two docs of 600 MB each, say) is a
/// `54000` error (from [`crate::no_raise::palloc`]), as for PostgreSQL's own types; unchecked,
/// palloc would refuse it with an `XX000` "invalid memory alloc request size".
pub fn bytes_into_varlena_datum(bytes: &[u8]) -> pgrx::pg_sys::Datum {
    let total = pgrx::pg_sys::VARHDRSZ + bytes.len();
    let varlena = crate::no_raise::palloc(total);
    // SAFETY: `total` writable bytes; the copy stays inside them, and the header written is the
    // length PostgreSQL reads back.
    unsafe {
        pgrx::set_varsize_4b(varlena.cast(), total as i32);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), varlena.add(pgrx::pg_sys::VARHDRSZ), bytes.len());
    }
    pgrx::pg_sys::Datum::from(varlena)
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
