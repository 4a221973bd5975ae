//! A row's key as `crdt.deletions` names it — the `jsonb` object of the key's columns, by name
//! — built by PostgreSQL's own `jsonb_build_object`, called through fmgr instead of a query.
//!
//! The SQL that records tombstones builds the key with `jsonb_build_object('col', value, ...)`;
//! an INSERT looks its key's tombstones up by that object. Building it here with the same
//! function (not a look-alike of `to_jsonb`'s rules per type) makes the two equal by
//! construction, without an SPI call per inserted row. `jsonb_build_object` reads its
//! arguments' types from the calling expression, so the builder gives it one: a `FuncExpr` whose
//! arguments are typed NULL constants.

use std::ffi::CString;

use pgrx::pg_sys;

/// Builds the `jsonb` key objects of one table (see the module). Owns a memory context holding
/// the function's lookup data and expression; dropped with the table's shape.
pub(crate) struct KeyJsonBuilder {
    context: pg_sys::MemoryContext,
    function: *mut pg_sys::FmgrInfo,
    /// The key columns' names as `text` datums (in `context`), in the key's order.
    names: Vec<pg_sys::Datum>,
}

impl KeyJsonBuilder {
    /// A builder for a key of `columns`: each one's name (unquoted), type, typmod and collation.
    pub(crate) fn new(columns: &[(String, pg_sys::Oid, i32, pg_sys::Oid)]) -> Option<KeyJsonBuilder> {
        let names = columns
            .iter()
            .map(|(name, ..)| CString::new(name.as_str()).ok())
            .collect::<Option<Vec<_>>>()?;
        // SAFETY: everything is allocated in a context of our own under CacheMemoryContext,
        // which lives as long as the backend; the expression only names types that exist (the
        // table's columns').
        unsafe {
            let context = pg_sys::AllocSetContextCreateInternal(
                pg_sys::CacheMemoryContext,
                c"crdt key json".as_ptr(),
                0,
                8 * 1024,
                8 * 1024 * 1024,
            );
            let previous = pg_sys::MemoryContextSwitchTo(context);
            let mut arguments: *mut pg_sys::List = std::ptr::null_mut();
            let mut name_datums = Vec::with_capacity(columns.len());
            for (name, (_, type_oid, typmod, collation)) in names.iter().zip(columns) {
                let name_datum = pg_sys::Datum::from(pg_sys::cstring_to_text(name.as_ptr()));
                name_datums.push(name_datum);
                let name_argument = pg_sys::makeConst(
                    pg_sys::TEXTOID,
                    -1,
                    pg_sys::DEFAULT_COLLATION_OID,
                    -1,
                    name_datum,
                    false,
                    false,
                );
                arguments = pg_sys::lappend(arguments, name_argument.cast());
                arguments = pg_sys::lappend(arguments, pg_sys::makeNullConst(*type_oid, *typmod, *collation).cast());
            }
            let function_oid = pg_sys::Oid::from(pg_sys::F_JSONB_BUILD_OBJECT_ANY);
            let expression = pg_sys::makeFuncExpr(
                function_oid,
                pg_sys::JSONBOID,
                arguments,
                pg_sys::InvalidOid,
                pg_sys::InvalidOid,
                pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
            );
            let function = pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()).cast::<pg_sys::FmgrInfo>();
            pg_sys::fmgr_info_cxt(function_oid, function, context);
            (*function).fn_expr = expression.cast();
            pg_sys::MemoryContextSwitchTo(previous);
            Some(KeyJsonBuilder {
                context,
                function,
                names: name_datums,
            })
        }
    }

    /// The key object of `values` (the key columns' values, none NULL, in the key's order), in
    /// the current memory context.
    pub(crate) fn build(&self, values: &[pg_sys::Datum]) -> pg_sys::Datum {
        let arguments = self.names.len() * 2;
        // SAFETY: a call frame sized for its arguments, in the current memory context; the
        // function was looked up with the expression that types them.
        unsafe {
            let size = std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
                + arguments * std::mem::size_of::<pg_sys::NullableDatum>();
            let call = pg_sys::palloc0(size).cast::<pg_sys::FunctionCallInfoBaseData>();
            (*call).flinfo = self.function;
            (*call).fncollation = pg_sys::InvalidOid;
            (*call).nargs = arguments as i16;
            let slots = (*call).args.as_mut_slice(arguments);
            for (pair, (name, value)) in slots.chunks_mut(2).zip(self.names.iter().zip(values)) {
                pair[0] = pg_sys::NullableDatum {
                    value: *name,
                    isnull: false,
                };
                pair[1] = pg_sys::NullableDatum {
                    value: *value,
                    isnull: false,
                };
            }
            let function = (*self.function).fn_addr.expect("fmgr_info_cxt set the address");
            // Through pgrx's guard: jsonb_build_object can raise (out of memory), and an
            // ERROR must not longjmp over Rust frames.
            pg_sys::ffi::pg_guard_ffi_boundary(|| function(call))
        }
    }
}

impl Drop for KeyJsonBuilder {
    fn drop(&mut self) {
        // SAFETY: the context this builder made, and nothing else points into it.
        unsafe { pg_sys::MemoryContextDelete(self.context) };
    }
}
