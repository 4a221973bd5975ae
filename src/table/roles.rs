//! Who the triggers' own statements run as.
//!
//! A trigger runs as whoever writes its table: the session's user, or an apply worker's role —
//! on PostgreSQL 16 and later the owner of the table being applied (unless the subscription
//! says `run_as_owner`), on 15 the subscription's owner. The triggers write two kinds of table:
//!
//! - `crdt.deletions`, ours, as its owner (`deletions::as_owner`): nobody else holds
//!   any privilege on it.
//! - a user's CRDT table, when a replicated tombstone deletes a row of it. That trigger fires
//!   on `crdt.deletions`, so on 16+ it runs as *our* owner (usually a superuser): the delete, and
//!   every trigger of the user's that it fires, must not. It runs as the user table's owner, as
//!   PostgreSQL 16's apply worker runs a replicated DELETE of that table.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;

/// Runs `work` as `role` in a security-restricted operation, as PostgreSQL runs code on behalf
/// of a table's owner (its foreign-key triggers, its index expressions in VACUUM, the apply
/// worker's switch to a table owner): `SECURITY_LOCAL_USERID_CHANGE` (nothing inside can `SET
/// ROLE` back), `SECURITY_RESTRICTED_OPERATION` (no temporary objects, no `PREPARE`, no session
/// state kept), and a GUC nest level, so a setting changed inside is undone on return. An error
/// inside is fine: (sub)transaction abort restores the user, context and settings.
pub(crate) fn as_role<T>(role: pg_sys::Oid, work: impl FnOnce() -> Result<T, ErrorReport>) -> Result<T, ErrorReport> {
    struct Restore {
        user: pg_sys::Oid,
        context: std::ffi::c_int,
        guc_level: std::ffi::c_int,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: undoes exactly what `as_role` did, in reverse order. While an error
            // unwinds, the abort that follows pops the GUC level itself.
            unsafe {
                if !std::thread::panicking() {
                    pg_sys::AtEOXact_GUC(false, self.guc_level);
                }
                pg_sys::SetUserIdAndSecContext(self.user, self.context);
            }
        }
    }
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads the backend's current user and security context.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let switched = context
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as std::ffi::c_int
        | pg_sys::SECURITY_RESTRICTED_OPERATION as std::ffi::c_int;
    // SAFETY: a role that exists (it owns a relation); undone when `_restore` drops.
    let _restore = unsafe {
        pg_sys::SetUserIdAndSecContext(role, switched);
        Restore {
            user,
            context,
            guc_level: pg_sys::NewGUCNestLevel(),
        }
    };
    work()
}

/// The owner of `relation`.
///
/// # Safety
/// `relation` must be open.
pub(crate) unsafe fn owner_of(relation: pg_sys::Relation) -> pg_sys::Oid {
    // SAFETY: per the contract.
    unsafe { (*(*relation).rd_rel).relowner }
}
