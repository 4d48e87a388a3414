//! serde support (feature `serde`) so the node's wire codec can carry keys and blocks.
//!
//! Blocks serialize as `(kind: u8, bytes)`; deserializing checks the length against the
//! kind's fixed size, so a peer cannot make the receiver keep a wrongly sized block. It does
//! not verify the block: that needs the routing key it was requested under.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::{Block, BlockKind, RoutingKey};

impl Serialize for RoutingKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RoutingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <[u8; 32]>::deserialize(d).map(RoutingKey)
    }
}

impl Serialize for BlockKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            BlockKind::Chk => 0,
            BlockKind::Ssk => 1,
        })
    }
}

impl<'de> Deserialize<'de> for BlockKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(BlockKind::Chk),
            1 => Ok(BlockKind::Ssk),
            other => Err(de::Error::custom(format_args!("unknown block kind {other}"))),
        }
    }
}

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Owned bytes read with `deserialize_bytes` (no per-element overhead).
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("block bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                // Formats without a bytes type: cap the preallocation at one CHK block.
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(BlockKind::Chk.block_len()));
                while let Some(b) = seq.next_element()? {
                    if v.len() >= BlockKind::Chk.block_len() {
                        return Err(de::Error::custom("block too long"));
                    }
                    v.push(b);
                }
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Serialize for Block {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.kind())?;
        t.serialize_element(&Bytes(self.as_bytes()))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Block;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a (kind, bytes) block")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Block, A::Error> {
                let kind: BlockKind = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let bytes: ByteBuf = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Block::from_bytes(kind, bytes.0).map_err(de::Error::custom)
            }
        }
        d.deserialize_tuple(2, V)
    }
}
