//! `jsonb` arguments and results carried as their text, converted by PostgreSQL's own
//! `jsonb_out`/`jsonb_in`.
//!
//! pgrx's `JsonB` goes through `serde_json::Value`, which would re-format numbers and re-order
//! keys; the core reads and writes JSON text itself, so the exact text is what it needs.

use std::ffi::{CStr, CString};

use pgrx::datum::{FromDatum, IntoDatum};
use pgrx::{direct_function_call, direct_function_call_as_datum, pg_sys};

/// A `jsonb` value as its canonical PostgreSQL text.
pub struct JsonbText(pub String);

pgrx::impl_sql_translatable!(JsonbText, "jsonb");

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _typoid: pg_sys::Oid) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // SAFETY: a non-null jsonb datum; jsonb_out detoasts it and returns a palloc'd C string.
        let text = unsafe { direct_function_call::<&CStr>(pg_sys::jsonb_out, &[Some(datum)]) }?;
        Some(JsonbText(text.to_string_lossy().into_owned()))
    }
}

impl IntoDatum for JsonbText {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // The core only hands out valid JSON without NUL bytes (they are not valid in JSON
        // text); a NUL would be a bug, and jsonb_in reports invalid input as 22P02 anyway.
        let text = CString::new(self.0).unwrap_or_default();
        // SAFETY: jsonb_in takes a C string and returns a new jsonb datum or raises an ERROR.
        unsafe { direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(text.as_ptr()))]) }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

crate::types::call_abi_via_datum!(JsonbText);
