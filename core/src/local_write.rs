//! The policy of a local write to a CRDT table's row, as the stamping trigger applies it, and
//! how NULL takes part in the merge of a counter or doc column. The extension decides none of
//! this itself.

/// How a local write stamps a row's plain columns (`crdt.write_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePolicy {
    /// Per-property PATCH: only the columns whose value changed, so that concurrent writes of
    /// other columns survive.
    Patch,
    /// Whole-row PUT: every column, so the row wins over every older write.
    Put,
}

/// What a plain (last-writer-wins) column is to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnRole {
    /// A column of the primary key. Every copy of a row has the same key: the merge finds rows
    /// by key, and a key is never changed in place (an UPDATE of it is refused; a delete and an
    /// insert replace the row, and the tombstone orders them). So there is no write to order,
    /// and the key is never stamped: the clock is smaller on every write, on disk and in WAL.
    PrimaryKey,
    /// Any other plain column.
    Value,
}

/// Whether a local write stamps a plain column: never a key column; otherwise PATCH stamps a
/// column whose value changed, and PUT, and any write of a row with no clock yet (a fresh
/// insert, or a row from before `crdt.enable`), stamps every column. `value_changed` is asked
/// only when it decides.
pub fn stamps_column(
    policy: WritePolicy,
    role: ColumnRole,
    row_had_clock: bool,
    value_changed: impl FnOnce() -> bool,
) -> bool {
    role == ColumnRole::Value && (!row_had_clock || policy == WritePolicy::Put || value_changed())
}

/// What a local write does with a value written into a doc column: a document is merged with
/// the stored one (so properties written concurrently elsewhere survive the next merge); NULL
/// clears the column, which is the user's to decide. The stored document handed back as it
/// is (what a statement that does not assign the column writes) is not merged: a doc merged
/// with itself is itself, as the merge is idempotent (`doc_properties`).
pub fn merges_written_doc(written_is_null: bool, same_as_stored: impl FnOnce() -> bool) -> bool {
    !written_is_null && !same_as_stored()
}

/// Whether a local write may store what it wrote in a counter or doc column: anything but NULL
/// over a value. NULL merges as absent ([`merge_nullable`]), so the other nodes would keep
/// their value and the node that wrote NULL would never hear of it again: the replicas would
/// end apart. A column may start NULL and get a value later; every write allowed here then
/// only grows the column's state (see the property test), and so replicas converge.
pub fn may_write_merged_column(stored_is_null: bool, written_is_null: bool) -> bool {
    stored_is_null || !written_is_null
}

/// The merge of a counter or doc column where either side may be NULL: NULL merges as absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullableMerge {
    /// Ours is the merge (theirs is NULL, or both are).
    Ours,
    /// Theirs is the merge (ours is NULL).
    Theirs,
    /// Neither is NULL: the type's own merge of the two.
    Both,
}

/// [`NullableMerge`] for `ours` and `theirs` being NULL or not.
pub fn merge_nullable(ours_is_null: bool, theirs_is_null: bool) -> NullableMerge {
    match (ours_is_null, theirs_is_null) {
        (false, false) => NullableMerge::Both,
        (true, false) => NullableMerge::Theirs,
        _ => NullableMerge::Ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeId, PnCounter};
    use proptest::prelude::*;

    #[test]
    fn patch_stamps_changes_put_and_fresh_rows_stamp_everything_but_the_key() {
        for (policy, had_clock, changed, stamped) in [
            (WritePolicy::Patch, true, false, false),
            (WritePolicy::Patch, true, true, true),
            (WritePolicy::Patch, false, false, true),
            (WritePolicy::Put, true, false, true),
            (WritePolicy::Put, false, true, true),
        ] {
            assert_eq!(
                stamps_column(policy, ColumnRole::Value, had_clock, || changed),
                stamped,
                "{policy:?} {had_clock} {changed}"
            );
            // A key column never, whatever the write.
            assert!(!stamps_column(policy, ColumnRole::PrimaryKey, had_clock, || changed));
        }
        assert!(merges_written_doc(false, || false));
        assert!(!merges_written_doc(false, || true));
        assert!(!merges_written_doc(true, || false));
        assert!(may_write_merged_column(true, true));
        assert!(may_write_merged_column(true, false));
        assert!(may_write_merged_column(false, false));
        assert!(!may_write_merged_column(false, true));
    }

    /// A local write of a counter column as the stamping trigger does it: NULL over a value
    /// refused; a value over NULL stored as written; a value over a value by `write_local`.
    fn written_locally(
        stored: &Option<PnCounter>,
        written: &Option<PnCounter>,
        node: NodeId,
    ) -> Option<Option<PnCounter>> {
        if !may_write_merged_column(stored.is_none(), written.is_none()) {
            return None;
        }
        Some(match (stored, written) {
            (Some(stored), Some(written)) => Some(PnCounter::write_local(stored, written, node).ok()?),
            _ => written.clone(),
        })
    }

    /// A nullable counter merged with NULL as absent.
    fn merged(ours: &Option<PnCounter>, theirs: &Option<PnCounter>) -> Option<PnCounter> {
        match merge_nullable(ours.is_none(), theirs.is_none()) {
            NullableMerge::Ours => ours.clone(),
            NullableMerge::Theirs => theirs.clone(),
            NullableMerge::Both => {
                let (mut ours, theirs) = (ours.clone()?, theirs.as_ref()?);
                ours.merge(theirs);
                Some(ours)
            }
        }
    }

    fn arb_nullable_counter() -> impl Strategy<Value = Option<PnCounter>> {
        proptest::option::of(proptest::collection::vec((0u8..3, -50i64..50), 0..4).prop_map(|adds| {
            let mut counter = PnCounter::default();
            for (node, amount) in adds {
                counter
                    .add(NodeId::from_bytes([node + 1; 16]), amount)
                    .expect("small amounts");
            }
            counter
        }))
    }

    proptest! {
        /// NULL as absent keeps the merge a semilattice, so replicas still converge.
        #[test]
        fn null_as_absent_merges_commute_associate_and_are_idempotent(
            a in arb_nullable_counter(), b in arb_nullable_counter(), c in arb_nullable_counter()
        ) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            prop_assert_eq!(merged(&a, &a), a.clone());
        }

        /// Every local write the rule allows grows the column's state: the old state merged into
        /// the new one changes nothing. Writes are inflations of a semilattice, so any delivery
        /// order of them ends in one state on every replica.
        #[test]
        fn allowed_local_writes_of_a_counter_column_only_grow_it(
            stored in arb_nullable_counter(), written in arb_nullable_counter(), node in 0u8..3
        ) {
            let node = NodeId::from_bytes([node + 1; 16]);
            match written_locally(&stored, &written, node) {
                None => prop_assert!(stored.is_some() && written.is_none()),
                Some(result) => {
                    prop_assert_eq!(merged(&result, &stored), result.clone());
                    // And it is what the user wrote: the value assigned, or the state written.
                    prop_assert_eq!(
                        result.as_ref().map(PnCounter::value),
                        written.as_ref().map(PnCounter::value)
                    );
                }
            }
        }
    }
}
