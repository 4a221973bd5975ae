//! The two forms every SQL type of the extension stores and shows: the compact binary encoding
//! (on disk, `send`/`recv`) and the canonical text (`in`/`out`, pg_dump).
//!
//! The extension's I/O functions are written once, generic over this trait; each type of the
//! core implements it beside its own code. The conversions between the bytes and the text go
//! through views where the type has them, so replication in either mode builds no state.

use crate::{DecodeError, TextError};

/// A state held by a SQL type: its binary and text forms, and the checks between them.
pub trait StoredForm: Sized {
    /// Reads the binary form into the state; refuses anything that is not its canonical
    /// encoding.
    fn decode_stored(bytes: &[u8]) -> Result<Self, DecodeError>;

    /// Checks `bytes` as completely as [`StoredForm::decode_stored`] does, building as little
    /// as the type allows. Decoders accept only the canonical encoding, so valid bytes can be
    /// stored as they came.
    fn validate_stored(bytes: &[u8]) -> Result<(), DecodeError>;

    /// Appends the text form of `bytes` to `out`, once they are checked as completely as
    /// [`StoredForm::decode_stored`] checks them.
    fn write_text_of_stored(bytes: &[u8], out: &mut String) -> Result<(), DecodeError>;

    /// Appends the binary form of a text form, which is read and checked completely, to `out`
    /// (which holds part of it on error).
    fn encode_text_into_stored(text: &str, out: &mut Vec<u8>) -> Result<(), TextError>;
}
