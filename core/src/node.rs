//! Node identity (docs/design.md, "Node ids"): every replica is a UUID.

use std::fmt;
use std::str::FromStr;

/// The namespace under which node ids are derived as UUIDv5 names:
/// `47b959a0-65f5-4145-b2df-fff8d769f8f1`, a random (v4) UUID generated once for this project.
///
/// It must never change: derived node ids are stored in every counter slot and stamp, so a new
/// namespace would turn each existing database into a stranger to its own past writes.
pub const NODE_ID_NAMESPACE: NodeId = NodeId([
    0x47, 0xb9, 0x59, 0xa0, 0x65, 0xf5, 0x41, 0x45, 0xb2, 0xdf, 0xff, 0xf8, 0xd7, 0x69, 0xf8, 0xf1,
]);

/// A replica's identity: 16 bytes, shown as a lowercase hyphenated UUID.
///
/// Ordered by its bytes, which is also the order of its canonical text form, so byte-sorted
/// slots print sorted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId([u8; 16]);

impl NodeId {
    /// The node id with these 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        NodeId(bytes)
    }

    /// The 16 bytes of this node id.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The node id of a database when `crdt.node_id` is not set: a UUIDv5 under
    /// [`NODE_ID_NAMESPACE`] over the 12 bytes `system_identifier || database_oid`, both
    /// big-endian. Deterministic (a restart keeps the identity) and distinct for two databases
    /// of one cluster.
    pub fn derive(system_identifier: u64, database_oid: u32) -> NodeId {
        let mut name = [0u8; 12];
        name[..8].copy_from_slice(&system_identifier.to_be_bytes());
        name[8..].copy_from_slice(&database_oid.to_be_bytes());
        let namespace = uuid::Uuid::from_bytes(NODE_ID_NAMESPACE.0);
        NodeId(*uuid::Uuid::new_v5(&namespace, &name).as_bytes())
    }
}

impl NodeId {
    /// Appends the hyphenated lowercase form (what `Display` writes) without going through a
    /// `fmt::Formatter`.
    pub fn write_text(&self, out: &mut impl fmt::Write) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = *b"00000000-0000-0000-0000-000000000000";
        // The same positions the parser reads: no branch per byte.
        for (byte, &at) in self.0.iter().zip(&HEX_PAIRS) {
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
        }
        // Every byte written above is ASCII.
        out.write_str(crate::codec::utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_text(f)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// Why a string is not a node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeIdParseError {
    /// The text is not 36 bytes long.
    WrongLength {
        /// The length found, in bytes.
        len: usize,
    },
    /// A hyphen is missing at one of the positions 8, 13, 18, 23.
    ExpectedHyphen {
        /// The 0-based byte position.
        position: usize,
    },
    /// A character other than a hex digit where one is expected.
    ExpectedHexDigit {
        /// The 0-based byte position.
        position: usize,
    },
}

impl fmt::Display for NodeIdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        match *self {
            NodeIdParseError::WrongLength { len } => {
                write!(f, "expected {FORM} (36 characters), got {len} bytes")
            }
            NodeIdParseError::ExpectedHyphen { position } => {
                write!(f, "expected '-' at position {position} of {FORM}")
            }
            NodeIdParseError::ExpectedHexDigit { position } => {
                write!(f, "expected a hex digit at position {position} of {FORM}")
            }
        }
    }
}

impl std::error::Error for NodeIdParseError {}

impl FromStr for NodeId {
    type Err = NodeIdParseError;

    /// Parses the standard hyphenated form, hex digits of either case (as PostgreSQL's `uuid`
    /// prints and accepts it). Other UUID spellings are refused: node ids appear as JSON keys
    /// of the canonical text form, where one spelling per node keeps the text canonical.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Ok(text) = <&[u8; 36]>::try_from(s.as_bytes()) else {
            return Err(NodeIdParseError::WrongLength { len: s.len() });
        };
        // Every row clock read from text parses a few of these: decode all 16 bytes without
        // branching per character, then look for what went wrong only if something did.
        let mut bytes = [0u8; 16];
        let mut bad = HYPHENS.iter().any(|&position| text[position] != b'-');
        for (byte, &at) in bytes.iter_mut().zip(&HEX_PAIRS) {
            let (high, low) = (HEX_VALUE[usize::from(text[at])], HEX_VALUE[usize::from(text[at + 1])]);
            bad |= (high | low) > 0x0f;
            *byte = (high << 4) | (low & 0x0f);
        }
        if bad {
            return Err(first_error(text));
        }
        Ok(NodeId(bytes))
    }
}

/// Positions of the hyphens in the hyphenated form.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// Positions of the two hex digits of each byte in the hyphenated form.
const HEX_PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// The value of each hex digit (either case); 0xff for any other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        let upper = b"0123456789ABCDEF"[i];
        let lower = b"0123456789abcdef"[i];
        table[upper as usize] = i as u8;
        table[lower as usize] = i as u8;
        i += 1;
    }
    table
};

/// The first problem of 36 bytes that are not a hyphenated UUID.
fn first_error(text: &[u8]) -> NodeIdParseError {
    for (position, &c) in text.iter().enumerate() {
        if HYPHENS.contains(&position) {
            if c != b'-' {
                return NodeIdParseError::ExpectedHyphen { position };
            }
        } else if HEX_VALUE[usize::from(c)] > 0x0f {
            return NodeIdParseError::ExpectedHexDigit { position };
        }
    }
    // Unreachable for text the decoder refused; any answer beats a panic.
    NodeIdParseError::WrongLength { len: text.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let text = "47b959a0-65f5-4145-b2df-fff8d769f8f1";
        let id: NodeId = text.parse().expect("valid uuid");
        assert_eq!(id, NODE_ID_NAMESPACE);
        assert_eq!(id.to_string(), text);
        assert_eq!(format!("{id:?}"), format!("NodeId({text})"));
        let upper: NodeId = text.to_uppercase().parse().expect("uppercase accepted");
        assert_eq!(upper, id);
        assert_eq!(NodeId::from_bytes(*id.as_bytes()), id);
        assert_eq!(NodeId::default().to_string(), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn parse_errors() {
        assert_eq!("".parse::<NodeId>(), Err(NodeIdParseError::WrongLength { len: 0 }));
        assert_eq!(
            "47b959a065f54145b2dffff8d769f8f1".parse::<NodeId>(),
            Err(NodeIdParseError::WrongLength { len: 32 })
        );
        assert_eq!(
            "47b959a0_65f5-4145-b2df-fff8d769f8f1".parse::<NodeId>(),
            Err(NodeIdParseError::ExpectedHyphen { position: 8 })
        );
        assert_eq!(
            "47b959a0-65f5-4145-b2df-fff8d769f8fg".parse::<NodeId>(),
            Err(NodeIdParseError::ExpectedHexDigit { position: 35 })
        );
        // Multi-byte characters count as bytes and never panic.
        assert!("é7b959a0-65f5-4145-b2df-fff8d769f8f".parse::<NodeId>().is_err());
        let msg = NodeIdParseError::WrongLength { len: 3 }.to_string();
        assert!(msg.contains("expected a UUID"), "{msg}");
    }

    #[test]
    fn order_matches_text_order() {
        let ids = [[0u8; 16], [0x0f; 16], [0xa0; 16], [0xff; 16]].map(NodeId::from_bytes);
        for w in ids.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_string() < w[1].to_string());
        }
    }

    #[test]
    fn derive_is_deterministic_and_distinct() {
        let a = NodeId::derive(7_300_000_000_000_000_001, 16_384);
        assert_eq!(a, NodeId::derive(7_300_000_000_000_000_001, 16_384));
        assert_ne!(a, NodeId::derive(7_300_000_000_000_000_001, 16_385));
        assert_ne!(a, NodeId::derive(7_300_000_000_000_000_002, 16_384));
        // A version-5, RFC 4122 variant UUID.
        assert_eq!(a.as_bytes()[6] >> 4, 5);
        assert_eq!(a.as_bytes()[8] >> 6, 0b10);
    }

    #[test]
    fn derive_matches_independent_uuid_v5() {
        // Expected values computed outside Rust: SHA-1(namespace || name) truncated and tagged
        // as version 5 (Python's hashlib + uuid.UUID(bytes=.., version=5)).
        assert_eq!(NodeId::derive(1, 5).to_string(), "c7a317a1-6dce-5f33-a511-7677c770f4f7");
        assert_eq!(
            NodeId::derive(7_300_000_000_000_000_001, 16_384).to_string(),
            "e3f922e3-dcb3-5b47-9e39-2b6a7a8a01e8"
        );
    }
}
