//! Byte-level helpers shared by every type's binary form.
//!
//! Conventions every encoded value follows:
//! - it starts with a format-version byte ([`FORMAT_VERSION`]), so the layout can change later
//!   without guessing what old bytes mean;
//! - integers are unsigned LEB128 varints in their one canonical (shortest) encoding, so equal
//!   states are byte-identical and can be compared or hashed as bytes;
//! - a decoder consumes the whole buffer or fails ([`Reader::finish`]).
//!
//! The input is untrusted (it may come from `recv` or a corrupt page): nothing here panics, and no
//! length read from the input is used to allocate before the bytes it describes are known present.

use std::fmt;

/// The format-version byte that leads every value encoded by this crate today.
pub const FORMAT_VERSION: u8 = 1;

/// The longest canonical varint for a `u64` (10 × 7 bits ≥ 64 bits).
pub const MAX_VARINT_LEN: usize = 10;

/// Why a byte string is not a valid encoding. Every variant carries the byte offset where the
/// problem was found, so an error report can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes remain than the next field needs.
    UnexpectedEnd {
        /// Offset of the field that could not be read.
        offset: usize,
        /// Bytes the field needs (at least).
        needed: usize,
        /// Bytes that remain.
        available: usize,
    },
    /// A varint uses more bytes than its value needs (e.g. `0x80 0x00`); only the shortest
    /// form is accepted so equal values have equal bytes.
    OverlongVarint {
        /// Offset of the varint's first byte.
        offset: usize,
    },
    /// A varint encodes a value larger than `u64::MAX`.
    VarintOverflow {
        /// Offset of the varint's first byte.
        offset: usize,
    },
    /// The leading format-version byte is not one this build understands.
    UnsupportedVersion {
        /// Offset of the version byte.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// An element count cannot be right: even the smallest elements would need more bytes than
    /// remain. Checked before anything is allocated for the elements.
    CountTooLarge {
        /// Offset of the count field.
        offset: usize,
        /// The count found.
        count: u64,
        /// The largest count the remaining bytes could hold.
        max: u64,
    },
    /// Entries must be sorted by key with no duplicates; this one is not greater than the one
    /// before it.
    UnsortedEntries {
        /// Offset of the offending entry.
        offset: usize,
    },
    /// An entry holds nothing (e.g. a counter slot with inc and dec both 0); canonical states
    /// omit such entries.
    EmptyEntry {
        /// Offset of the offending entry.
        offset: usize,
    },
    /// A field holds something no encoder of this format writes (e.g. invalid UTF-8, a value
    /// that is not canonical, a reference to a table entry that does not exist).
    Invalid {
        /// Offset of the offending field.
        offset: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Bytes are left over after a complete value.
    TrailingBytes {
        /// Offset of the first unconsumed byte.
        offset: usize,
        /// How many bytes are left over.
        count: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::UnexpectedEnd { offset, needed, available } => write!(
                f,
                "unexpected end of data at offset {offset}: needed {needed} byte(s), {available} remain"
            ),
            DecodeError::OverlongVarint { offset } => {
                write!(f, "non-canonical (overlong) varint at offset {offset}")
            }
            DecodeError::VarintOverflow { offset } => {
                write!(f, "varint at offset {offset} exceeds the 64-bit range")
            }
            DecodeError::UnsupportedVersion { offset, version } => write!(
                f,
                "unsupported format version {version} at offset {offset} (expected {FORMAT_VERSION})"
            ),
            DecodeError::CountTooLarge { offset, count, max } => write!(
                f,
                "entry count {count} at offset {offset} is larger than the remaining bytes can hold (at most {max})"
            ),
            DecodeError::UnsortedEntries { offset } => write!(
                f,
                "entry at offset {offset} is not greater than the previous one (entries must be strictly sorted, without duplicates)"
            ),
            DecodeError::EmptyEntry { offset } => {
                write!(f, "entry at offset {offset} is empty (all-zero entries are not allowed)")
            }
            DecodeError::Invalid { offset, problem } => {
                write!(f, "invalid data at offset {offset}: {problem}")
            }
            DecodeError::TrailingBytes { offset, count } => {
                write!(f, "{count} trailing byte(s) at offset {offset} after a complete value")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// What an encoder that appends to a buffer writes, in a buffer of its own.
pub(crate) fn into_new_buffer<E>(encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<Vec<u8>, E> {
    let mut out = Vec::new();
    encode(&mut out).map(|()| out)
}

/// `bytes` as text if they are UTF-8. Keys and JSON values are mostly ASCII, which one
/// word-at-a-time check settles; `from_utf8` has a fixed cost that showed on short strings read
/// per property, per row.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

/// Appends `value` as a canonical unsigned LEB128 varint.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation intended: the low 7 bits, with the continuation bit set.
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The number of bytes [`write_varint`] writes for `value` (1 to [`MAX_VARINT_LEN`]).
pub const fn varint_len(value: u64) -> usize {
    // Bits needed (at least 1 for zero), 7 per byte, rounded up.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// A cursor over an untrusted byte slice. Every read checks the bytes are there first; errors
/// carry the offset of the field that failed.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// The offset of the next byte to be read.
    pub const fn offset(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(DecodeError::UnexpectedEnd {
                offset: self.pos,
                needed: 1,
                available: 0,
            }),
        }
    }

    /// Reads the leading format-version byte and checks it is [`FORMAT_VERSION`].
    pub fn version(&mut self) -> Result<u8, DecodeError> {
        let offset = self.pos;
        let version = self.u8()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { offset, version });
        }
        Ok(version)
    }

    /// Reads a canonical unsigned LEB128 varint. Rejects overlong encodings (a final byte of 0
    /// after the first) and values beyond `u64::MAX`.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        // Most varints of the stored forms (lengths, counts, node indexes, kinds) take one
        // byte: read at a glance, without the loop.
        match self.buf.get(self.pos) {
            Some(&byte) if byte < 0x80 => {
                self.pos += 1;
                Ok(u64::from(byte))
            }
            _ => self.multi_byte_varint(),
        }
    }

    /// [`Reader::varint`] past its one-byte case.
    fn multi_byte_varint(&mut self) -> Result<u64, DecodeError> {
        let offset = self.pos;
        let mut value: u64 = 0;
        // The cursor only moves on success, so a failed read leaves the reader where it was.
        for i in 0..MAX_VARINT_LEN {
            let Some(&byte) = self.buf.get(offset + i) else {
                return Err(DecodeError::UnexpectedEnd {
                    offset,
                    needed: i + 1,
                    available: i,
                });
            };
            // The 10th byte holds only bit 63: anything above 1 (including a continuation bit)
            // would not fit in 64 bits.
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(DecodeError::VarintOverflow { offset });
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(DecodeError::OverlongVarint { offset });
                }
                self.pos = offset + i + 1;
                return Ok(value);
            }
        }
        // Unreachable: the 10th byte either ended the varint or was rejected above.
        Err(DecodeError::VarintOverflow { offset })
    }

    /// Borrows the next `n` bytes; errors (without moving) if fewer remain.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// Reads the next `N` bytes as a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Checks that every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, v);
        out
    }

    #[test]
    fn varint_known_encodings() {
        assert_eq!(encode(0), [0x00]);
        assert_eq!(encode(1), [0x01]);
        assert_eq!(encode(127), [0x7f]);
        assert_eq!(encode(128), [0x80, 0x01]);
        assert_eq!(encode(300), [0xac, 0x02]);
        assert_eq!(
            encode(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn varint_round_trip_and_len() {
        let mut samples = vec![0, 1, 127, 128, 16_383, 16_384, u64::MAX - 1, u64::MAX];
        samples.extend((0..64).map(|s| 1u64 << s));
        samples.extend((1..64).map(|s| (1u64 << s) - 1));
        for v in samples {
            let bytes = encode(v);
            assert_eq!(bytes.len(), varint_len(v), "len of {v}");
            let mut r = Reader::new(&bytes);
            assert_eq!(r.varint(), Ok(v));
            assert_eq!(r.finish(), Ok(()));
        }
    }

    #[test]
    fn varint_rejects_overlong() {
        for bad in [&[0x80, 0x00][..], &[0x81, 0x80, 0x00], &[0xff, 0x00]] {
            let mut r = Reader::new(bad);
            assert_eq!(r.varint(), Err(DecodeError::OverlongVarint { offset: 0 }), "{bad:?}");
        }
        // Ten bytes ending in 0x00 is also overlong.
        let mut ten = vec![0x80; 9];
        ten.push(0x00);
        assert_eq!(
            Reader::new(&ten).varint(),
            Err(DecodeError::OverlongVarint { offset: 0 })
        );
    }

    #[test]
    fn varint_rejects_overflow() {
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(
            Reader::new(&too_big).varint(),
            Err(DecodeError::VarintOverflow { offset: 0 })
        );
        let eleven = vec![0xff; 11];
        assert_eq!(
            Reader::new(&eleven).varint(),
            Err(DecodeError::VarintOverflow { offset: 0 })
        );
    }

    #[test]
    fn varint_truncated() {
        assert_eq!(
            Reader::new(&[0x80, 0x80]).varint(),
            Err(DecodeError::UnexpectedEnd {
                offset: 0,
                needed: 3,
                available: 2
            })
        );
        assert_eq!(
            Reader::new(&[]).varint(),
            Err(DecodeError::UnexpectedEnd {
                offset: 0,
                needed: 1,
                available: 0
            })
        );
    }

    #[test]
    fn reader_bytes_and_finish() {
        let data = [1u8, 2, 3, 4, 5];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.bytes(2), Ok(&[2u8, 3][..]));
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { offset: 3, count: 2 }));
        assert_eq!(
            r.bytes(usize::MAX),
            Err(DecodeError::UnexpectedEnd {
                offset: 3,
                needed: usize::MAX,
                available: 2
            })
        );
        // A failed read does not move the cursor.
        assert_eq!(r.array::<2>(), Ok([4, 5]));
        assert_eq!(r.finish(), Ok(()));
        assert!(r.u8().is_err());
    }

    #[test]
    fn version_byte() {
        assert_eq!(Reader::new(&[FORMAT_VERSION]).version(), Ok(FORMAT_VERSION));
        assert_eq!(
            Reader::new(&[7]).version(),
            Err(DecodeError::UnsupportedVersion { offset: 0, version: 7 })
        );
        assert!(Reader::new(&[]).version().is_err());
    }

    #[test]
    fn error_messages_name_offset() {
        let msg = DecodeError::TrailingBytes { offset: 9, count: 2 }.to_string();
        assert!(msg.contains("offset 9") && msg.contains("2 trailing"), "{msg}");
    }
}
