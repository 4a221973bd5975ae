//! The row clock of a CRDT table (docs/design.md, "The row clock"): for each column, the stamp of
//! its last write and a fingerprint of the value written then.
//!
//! A row clock is a map column name → (stamp, fingerprint) merged per key, last writer wins:
//! exactly a [`Doc`] whose property values are the fingerprints. So it *is* one, and shares the
//! doc's merge, binary form, text form and validation instead of repeating them.
//!
//! The fingerprint is the evidence a remote stamp needs (docs/design.md, "The row clock"): a
//! replicated UPDATE that did not change a TOASTed column carries no value for it, and the apply
//! worker fills in the *local* value. A remote stamp is adopted only with a value whose
//! fingerprint matches the remote's.

use crate::codec::{into_new_buffer, DecodeError};
use crate::doc::{read_written_layout, Doc, DocView, Property};
use crate::hlc::Stamp;
use crate::text::TextError;

/// The fingerprint of SQL NULL; no value hashes to it (see [`value_fingerprint`]).
pub const NULL_FINGERPRINT: u32 = 0;

/// A deterministic 32-bit fingerprint (FNV-1a) of a value's bytes, the same on every node;
/// `None` is SQL NULL. Never [`NULL_FINGERPRINT`] for a non-NULL value.
pub fn value_fingerprint(bytes: Option<&[u8]>) -> u32 {
    let Some(bytes) = bytes else { return NULL_FINGERPRINT };
    let hash = bytes.iter().fold(0x811c_9dc5_u32, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    if hash == NULL_FINGERPRINT {
        1
    } else {
        hash
    }
}

/// Whether a delete stamped `deleted` removes a row whose clock records `seen` as the newest
/// delete its node had seen when the row was inserted (`None`: none). A delete wins over every
/// write its node had not seen, and a row inserted after the delete was seen is a new row
/// (docs/design.md, "Deletes and re-inserts"): the delete wins exactly when it is newer than
/// every delete the row had seen.
pub fn delete_wins(deleted: Stamp, seen: Option<Stamp>) -> bool {
    seen.is_none_or(|seen| deleted > seen)
}

/// The entry of a row clock that records the newest delete of the row's key its node had seen
/// when it (re)inserted the row. No column can have this name: PostgreSQL forbids empty
/// identifiers. It merges like the stamp of a column the table does not have (last writer wins),
/// so a row re-inserted on two nodes keeps the newer of the two.
pub const SEEN_DELETE: &str = "";

/// One column's entry: when it was last written, by whom, and what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnStamp {
    /// The write's stamp.
    pub stamp: Stamp,
    /// [`value_fingerprint`] of the value written.
    pub fingerprint: u32,
}

/// Per-column stamps of one row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowClock {
    columns: Doc,
}

/// Which incarnation of its key a replicated row belongs to, against the local row of the key
/// ([`RowClock::incarnation_against`]). Every insert after a delete of the key begins a new
/// incarnation, recorded as the row's seen-delete entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incarnation {
    /// Both rows belong to one incarnation: they merge column by column.
    Same,
    /// The local row is newer: the delete it had seen ended the replicated row's incarnation,
    /// so the replicated row is ignored. Merged, its writes would bring back state of a row
    /// that was deleted (a counter's old sums, a column written before the delete).
    LocalNewer,
    /// The replicated row is newer: the local row's incarnation was ended by a delete the
    /// replicated row had seen. The replicated row replaces it: every value as it came, its
    /// clock merged into an empty one (so a stamp is adopted only with its value, as
    /// [`RowClock::merge_replicated`] does), its counters and docs taken as they are.
    RemoteNewer,
}

/// What [`RowClock::merge_replicated`] decided for one column of a replicated row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnChoice {
    /// Keep the local value.
    Local,
    /// Take the replicated value.
    Remote,
}

impl crate::StoredForm for RowClock {
    fn decode_stored(bytes: &[u8]) -> Result<Self, DecodeError> {
        RowClock::decode(bytes)
    }
    fn validate_stored(bytes: &[u8]) -> Result<(), DecodeError> {
        RowClock::validate(bytes).map(drop)
    }
    fn write_text_of_stored(bytes: &[u8], out: &mut String) -> Result<(), DecodeError> {
        RowClock::validate(bytes).map(|view| view.write_text(out))
    }
    fn encode_text_into_stored(text: &str, out: &mut Vec<u8>) -> Result<(), TextError> {
        RowClock::encode_text_into(text, out)
    }
}

impl RowClock {
    /// A clock with no column stamped.
    pub fn new() -> Self {
        RowClock::default()
    }

    /// The entry of `column`, if it was ever stamped.
    pub fn column(&self, column: &str) -> Option<ColumnStamp> {
        match self.columns.property(column)? {
            Property::Value { json, stamp } => json.parse().ok().map(|fingerprint| ColumnStamp {
                stamp: *stamp,
                fingerprint,
            }),
            _ => None,
        }
    }

    /// Records a write of `column` with `stamp` (ignored if the clock already holds a newer one).
    pub fn stamp(&mut self, column: &str, fingerprint: u32, stamp: Stamp) {
        self.columns
            .merge_values([(column.to_owned(), fingerprint.to_string(), stamp)]);
    }

    /// The newest delete of the row's key its node had seen when it (re)inserted the row.
    pub fn seen_delete(&self) -> Option<Stamp> {
        self.column(SEEN_DELETE).map(|entry| entry.stamp)
    }

    /// Records that the row is (re)inserted after its node had seen a delete stamped `deleted`
    /// (kept only if newer than the one recorded). Record it before stamping the insert's
    /// columns, so that they come after it.
    pub fn record_seen_delete(&mut self, deleted: Stamp) {
        self.stamp(SEEN_DELETE, NULL_FINGERPRINT, deleted);
    }

    /// Whether a tombstone stamped `deleted` removes the row with this clock: [`delete_wins`]
    /// against the delete the row had seen.
    pub fn is_deleted_by(&self, deleted: Stamp) -> bool {
        delete_wins(deleted, self.seen_delete())
    }

    /// [`Incarnation`] of a replicated row with clock `remote` against this (local) row: the
    /// one that had seen the newer delete is newer — the delete it had seen wins over the
    /// other ([`delete_wins`]).
    pub fn incarnation_against(&self, remote: &RowClock) -> Incarnation {
        let no_delete_settled = || Ok::<u64, std::convert::Infallible>(0);
        match self.incarnation_against_settled(remote, no_delete_settled) {
            Ok(incarnation) => incarnation,
            Err(never) => match never {},
        }
    }

    /// [`RowClock::incarnation_against`] on a node whose `settled` (`crdt_core::stability`) is
    /// what `settled` reads, asked only when the two rows had seen different deletes: deletes
    /// settled there read as none ([`crate::stability::unsettled_seen_delete`]), so a row
    /// written after its node collected a tombstone merges with one written where the tombstone
    /// was still kept.
    pub fn incarnation_against_settled<E>(
        &self,
        remote: &RowClock,
        settled: impl FnOnce() -> Result<u64, E>,
    ) -> Result<Incarnation, E> {
        if self.seen_delete() == remote.seen_delete() {
            return Ok(Incarnation::Same);
        }
        let settled = settled()?;
        let seen = |clock: &RowClock| crate::stability::unsettled_seen_delete(clock.seen_delete(), settled);
        Ok(match seen(self).cmp(&seen(remote)) {
            std::cmp::Ordering::Equal => Incarnation::Same,
            std::cmp::Ordering::Greater => Incarnation::LocalNewer,
            std::cmp::Ordering::Less => Incarnation::RemoteNewer,
        })
    }

    /// The row's own stamp: its newest column stamp (`None` before any write).
    pub fn row_stamp(&self) -> Option<Stamp> {
        self.columns.metadata().map(|info| info.stamp).max()
    }

    /// The largest HLC in the clock (0 if empty), for stamping the next write after it.
    pub fn max_hlc(&self) -> u64 {
        self.columns.max_hlc()
    }

    /// Merges a replicated row's clock into this (local) one and says, per column of
    /// `columns` — `(name, fingerprint of the replicated value)` — which value the row keeps.
    ///
    /// The replicated value wins only if its stamp is newer *and* the value carried is the one
    /// that stamp was given to; otherwise the local value and stamp stay (a newer remote stamp
    /// without its value is not adopted). Columns the table does not have (dropped on one node,
    /// not yet added on another) merge last writer wins, so clocks still converge.
    pub fn merge_replicated(&mut self, remote: &RowClock, columns: &[(&str, u32)]) -> Vec<ColumnChoice> {
        let choices: Vec<ColumnChoice> = columns
            .iter()
            .map(|&(name, fingerprint)| match (self.column(name), remote.column(name)) {
                (local, Some(theirs))
                    if local.is_none_or(|ours| theirs.stamp > ours.stamp) && theirs.fingerprint == fingerprint =>
                {
                    ColumnChoice::Remote
                }
                _ => ColumnChoice::Local,
            })
            .collect();
        // The remote entries adopted, and those of columns the table does not have, merged in
        // as one write.
        let adopted = columns
            .iter()
            .zip(&choices)
            .filter_map(|(&(name, fingerprint), choice)| {
                let theirs = remote.column(name).filter(|_| *choice == ColumnChoice::Remote)?;
                Some((name.to_owned(), fingerprint.to_string(), theirs.stamp))
            });
        let foreign = remote
            .columns
            .properties()
            .filter_map(|(name, property)| match property {
                Property::Value { json, stamp } if !columns.iter().any(|&(column, _)| column == name) => {
                    Some((name.to_owned(), json.clone(), *stamp))
                }
                _ => None,
            });
        let write: Vec<_> = adopted.chain(foreign).collect();
        self.columns.merge_values(write);
        choices
    }

    /// The compact binary form (a doc's).
    pub fn encode(&self) -> Vec<u8> {
        self.columns.encode()
    }

    /// Reads the binary form; rejects anything that is not a row clock.
    pub fn decode(bytes: &[u8]) -> Result<RowClock, DecodeError> {
        let columns = Doc::decode(bytes)?;
        RowClock::from_doc(columns).map_err(|problem| DecodeError::Invalid { offset: 0, problem })
    }

    /// Checks the binary form as completely as [`RowClock::decode`], without building the
    /// clock.
    pub fn validate(bytes: &[u8]) -> Result<DocView<'_>, DecodeError> {
        // The values are checked in the parse's own walk (replication validates every clock
        // it receives), and reported after the doc's own problems, as `decode` reports them.
        let mut bad_value = None;
        let view = DocView::parse_visiting_values(bytes, |value| {
            if bad_value.is_none() {
                bad_value = check_column_value(value).err();
            }
        })?;
        bad_value
            .map_or_else(|| check_no_watermark(view.replaced()), Err)
            .map_err(|problem| DecodeError::Invalid { offset: 0, problem })?;
        Ok(view)
    }

    fn from_doc(columns: Doc) -> Result<RowClock, &'static str> {
        let values = columns.properties().map(|(_, property)| match property {
            Property::Value { json, .. } => Some(json.as_str()),
            _ => None,
        });
        check_clock(columns.replaced(), values)?;
        Ok(RowClock { columns })
    }

    /// The text form (a doc's: `value` maps each column to its fingerprint, `stamps` to its
    /// stamp).
    pub fn to_text(&self) -> String {
        self.columns.to_text()
    }

    /// Reads the text form; rejects anything that is not a row clock.
    pub fn from_text(text: &str) -> Result<RowClock, TextError> {
        RowClock::from_doc(Doc::from_text(text)?).map_err(not_a_clock)
    }

    /// The binary form of a text form: `RowClock::from_text(text)?.encode()`, the same result
    /// and the same errors, without building the clock (see [`Doc::encode_text`]); what the
    /// subscriber does for every row of a text-mode subscription.
    pub fn encode_text(text: &str) -> Result<Vec<u8>, TextError> {
        into_new_buffer(|out| RowClock::encode_text_into(text, out))
    }

    /// [`RowClock::encode_text`], appended to `out` (which holds part of it on error).
    pub fn encode_text_into(text: &str, out: &mut Vec<u8>) -> Result<(), TextError> {
        match read_written_layout(text) {
            Some(layout) => {
                check_clock(layout.replaced(), layout.values()).map_err(not_a_clock)?;
                layout.encode_into(out);
            }
            None => RowClock::from_text(text)?.columns.encode_into(out),
        }
        Ok(())
    }
}

/// Why a doc's text is not a row clock's.
fn not_a_clock(problem: &'static str) -> TextError {
    TextError::Inconsistent {
        offset: 0,
        key: String::from("value"),
        problem,
    }
}

/// A doc is a row clock when it holds only column stamps with 32-bit fingerprints and no
/// replace watermark: the check behind `decode` and `from_text`, of the watermark and each
/// entry's value (`None` for a tombstone or a counter). `validate` applies the same two rules,
/// [`check_column_value`] during its parse, then [`check_no_watermark`], in the same order.
fn check_clock<'a>(
    replaced: Option<Stamp>,
    mut values: impl Iterator<Item = Option<&'a str>>,
) -> Result<(), &'static str> {
    values.try_for_each(check_column_value)?;
    check_no_watermark(replaced)
}

/// A row clock has no replace watermark.
fn check_no_watermark(replaced: Option<Stamp>) -> Result<(), &'static str> {
    match replaced {
        Some(_) => Err("a row clock has no replace watermark"),
        None => Ok(()),
    }
}

/// One entry of a row clock: a column stamp with a 32-bit fingerprint (`None` is a tombstone
/// or a counter, which a row clock never holds).
fn check_column_value(value: Option<&str>) -> Result<(), &'static str> {
    let Some(json) = value else {
        return Err("a row clock holds only column stamps");
    };
    if json.parse::<u32>().is_err() {
        return Err("a column fingerprint must be a 32-bit number");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_delete_wins_over_rows_that_had_not_seen_it() {
        let node = crate::NodeId::from_bytes([7; 16]);
        let (earlier, later) = (Stamp::new(10, node), Stamp::new(11, node));
        assert!(super::delete_wins(later, None), "a row that saw no delete");
        assert!(
            super::delete_wins(later, Some(earlier)),
            "a row that saw an older delete"
        );
        assert!(
            !super::delete_wins(later, Some(later)),
            "the row was inserted after this very delete"
        );
        assert!(
            !super::delete_wins(earlier, Some(later)),
            "the row was inserted after a newer delete"
        );
    }

    use super::*;
    use crate::node::NodeId;

    #[test]
    fn a_row_records_the_delete_it_was_inserted_after() {
        let mut clock = RowClock::new();
        assert_eq!(clock.seen_delete(), None);
        assert!(clock.is_deleted_by(stamp(5, 1)), "a row that saw no delete");
        clock.record_seen_delete(stamp(5, 1));
        clock.record_seen_delete(stamp(4, 2));
        assert_eq!(clock.seen_delete(), Some(stamp(5, 1)), "the newest is kept");
        assert!(!clock.is_deleted_by(stamp(5, 1)));
        assert!(clock.is_deleted_by(stamp(6, 1)));
        // Stamps written after it are the row's; the entry is not a column's.
        clock.stamp("v", 9, stamp(7, 1));
        assert_eq!(clock.row_stamp(), Some(stamp(7, 1)));
        let mut replica = RowClock::new();
        replica.merge_replicated(&clock, &[("v", 9)]);
        assert_eq!(replica.seen_delete(), Some(stamp(5, 1)), "it replicates with the row");
    }

    #[test]
    fn the_row_that_saw_the_newer_delete_is_the_newer_incarnation() {
        let first = RowClock::new();
        let mut reinserted = RowClock::new();
        reinserted.record_seen_delete(stamp(5, 1));
        let mut again = RowClock::new();
        again.record_seen_delete(stamp(5, 2));
        assert_eq!(first.incarnation_against(&first), Incarnation::Same);
        assert_eq!(reinserted.incarnation_against(&first), Incarnation::LocalNewer);
        assert_eq!(first.incarnation_against(&reinserted), Incarnation::RemoteNewer);
        assert_eq!(again.incarnation_against(&reinserted), Incarnation::LocalNewer);
        // Exactly when the newer one's delete wins over the other row.
        assert!(first.is_deleted_by(reinserted.seen_delete().unwrap()));
        assert!(reinserted.is_deleted_by(again.seen_delete().unwrap()));
    }

    fn stamp(hlc: u64, node: u8) -> Stamp {
        Stamp::new(hlc, NodeId::from_bytes([node; 16]))
    }

    #[test]
    fn fingerprints_distinguish_null_and_are_deterministic() {
        assert_eq!(value_fingerprint(None), NULL_FINGERPRINT);
        assert_ne!(value_fingerprint(Some(b"")), NULL_FINGERPRINT);
        assert_eq!(value_fingerprint(Some(b"abc")), value_fingerprint(Some(b"abc")));
        assert_ne!(value_fingerprint(Some(b"abc")), value_fingerprint(Some(b"abd")));
    }

    #[test]
    fn newer_remote_stamp_with_its_value_wins() {
        let mut local = RowClock::new();
        local.stamp("name", 11, stamp(10, 1));
        local.stamp("qty", 21, stamp(10, 1));
        let mut remote = RowClock::new();
        remote.stamp("name", 12, stamp(20, 2));
        remote.stamp("qty", 22, stamp(5, 2));
        let choices = local.merge_replicated(&remote, &[("name", 12), ("qty", 22)]);
        assert_eq!(choices, vec![ColumnChoice::Remote, ColumnChoice::Local]);
        assert_eq!(
            local.column("name"),
            Some(ColumnStamp {
                stamp: stamp(20, 2),
                fingerprint: 12
            })
        );
        assert_eq!(
            local.column("qty"),
            Some(ColumnStamp {
                stamp: stamp(10, 1),
                fingerprint: 21
            })
        );
        assert_eq!(local.row_stamp(), Some(stamp(20, 2)));
    }

    #[test]
    fn newer_remote_stamp_without_its_value_is_not_adopted() {
        // An unchanged TOASTed column: the apply worker hands us our own value (fingerprint 11)
        // beside a remote stamp given to another value (fingerprint 99).
        let mut local = RowClock::new();
        local.stamp("body", 11, stamp(10, 1));
        let mut remote = RowClock::new();
        remote.stamp("body", 99, stamp(20, 2));
        let choices = local.merge_replicated(&remote, &[("body", 11)]);
        assert_eq!(choices, vec![ColumnChoice::Local]);
        assert_eq!(local.column("body").map(|c| c.stamp), Some(stamp(10, 1)));
    }

    #[test]
    fn ties_keep_local_and_merging_is_idempotent() {
        let mut local = RowClock::new();
        local.stamp("a", 1, stamp(10, 1));
        let before = local.clone();
        let choices = local.merge_replicated(&before, &[("a", 1)]);
        assert_eq!(choices, vec![ColumnChoice::Local]);
        assert_eq!(local, before);
    }

    #[test]
    fn columns_unknown_to_the_table_merge_last_writer_wins() {
        let mut local = RowClock::new();
        let mut remote = RowClock::new();
        remote.stamp("dropped_here", 5, stamp(7, 2));
        local.merge_replicated(&remote, &[]);
        assert_eq!(local.column("dropped_here").map(|c| c.fingerprint), Some(5));
    }

    #[test]
    fn binary_and_text_round_trip_and_reject_non_clocks() {
        let mut clock = RowClock::new();
        clock.stamp("name", 4_000_000_000, stamp(1 << 40, 3));
        clock.stamp("a b \"c\"", 7, stamp(99, 4));
        assert_eq!(RowClock::decode(&clock.encode()), Ok(clock.clone()));
        assert_eq!(RowClock::from_text(&clock.to_text()), Ok(clock.clone()));
        let mut doc = Doc::new();
        doc.patch(r#"{"name": "not a fingerprint"}"#, stamp(1, 1)).unwrap();
        assert!(RowClock::decode(&doc.encode()).is_err());
        assert!(RowClock::from_text(&doc.to_text()).is_err());
    }
}
