//! The extension's settings. All are named `crdt.<name>`; the prefix is reserved in `_PG_init`.

use std::ffi::{c_char, c_void, CStr, CString};

use crdt_core::NodeId;
use pgrx::{pg_guard, pg_sys, GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};

/// `crdt.node_id`: this node's identity as a UUID. Unset by default, because the derived id
/// (system identifier + database OID) is already unique per database and survives restarts;
/// set it when a node must keep its identity across `pg_dump`/restore into a new cluster.
/// Superuser-only: a node id chosen by an ordinary user could impersonate another node.
pub static NODE_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `crdt.max_clock_skew`: remote stamps further than this ahead of the local clock are still
/// merged (rejecting them would break convergence) but reported with a WARNING. Five minutes is
/// far beyond NTP-synchronised drift, so a warning means a misconfigured clock.
pub static MAX_CLOCK_SKEW_MS: GucSetting<i32> = GucSetting::<i32>::new(5 * 60 * 1000);

/// How a local UPDATE of a CRDT table stamps its columns.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteMode {
    /// Only columns whose value changed (per-property PATCH).
    #[name = c"patch"]
    Patch,
    /// Every column, as a whole-row replace (PUT): the row wins over every older write.
    #[name = c"put"]
    Put,
}

/// `crdt.write_mode`: `patch` by default, because concurrent updates of different columns
/// should all survive; `SET LOCAL crdt.write_mode = put` for a whole-row replace.
pub static WRITE_MODE: GucSetting<WriteMode> = GucSetting::<WriteMode>::new(WriteMode::Patch);

thread_local! {
    /// The parsed `crdt.node_id`, kept in step by the assign hook so readers never re-parse.
    static NODE_ID_OVERRIDE: std::cell::Cell<Option<NodeId>> = const { std::cell::Cell::new(None) };
}

/// The node id set by `crdt.node_id`, if any.
pub fn node_id_override() -> Option<NodeId> {
    NODE_ID_OVERRIDE.with(|cell| cell.get())
}

fn parse_node_id(value: *const c_char) -> Option<Result<NodeId, String>> {
    if value.is_null() {
        return None;
    }
    // SAFETY: PostgreSQL hands GUC hooks a NUL-terminated string that lives for the call.
    let text = unsafe { CStr::from_ptr(value) }.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.parse::<NodeId>().map_err(|err| err.to_string()))
}

#[pg_guard]
unsafe extern "C-unwind" fn check_node_id(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: `newval` points at the candidate value for the duration of the hook.
    match parse_node_id(unsafe { *newval }) {
        Some(Err(err)) => {
            let detail = format!("crdt.node_id must be a UUID: {err}");
            let detail = CString::new(detail).unwrap_or_default();
            // SAFETY: GUC_check_errdetail_string must be palloc'd; pstrdup copies into the
            // current memory context, which the GUC machinery reports from.
            unsafe {
                pg_sys::GUC_check_errcode(pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as i32);
                pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
            }
            false
        }
        _ => true,
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_node_id(newval: *const c_char, _extra: *mut c_void) {
    let parsed = parse_node_id(newval).and_then(Result::ok);
    NODE_ID_OVERRIDE.with(|cell| cell.set(parsed));
}

/// Registers every `crdt.*` setting. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: both hooks are `#[pg_guard]`ed, so a panic becomes a PostgreSQL ERROR.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"crdt.node_id",
            c"This node's identity (a UUID) in CRDT stamps and counter slots.",
            c"Empty means derived from the cluster's system identifier and the database OID.",
            &NODE_ID,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_node_id),
            Some(assign_node_id),
            None,
        );
    }
    GucRegistry::define_int_guc(
        c"crdt.max_clock_skew",
        c"Remote stamps further ahead of the local clock than this are merged with a WARNING.",
        c"Merging still happens: rejecting a stamp would break convergence.",
        &MAX_CLOCK_SKEW_MS,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_enum_guc(
        c"crdt.write_mode",
        c"How local UPDATEs of CRDT tables stamp columns: patch (changed columns) or put (all).",
        c"put makes an UPDATE a whole-row replace that wins over every older write of the row.",
        &WRITE_MODE,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init with a static NUL-terminated prefix.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"crdt".as_ptr()) };
}
