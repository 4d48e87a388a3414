//! The message codec: postcard over the serde-derived [`Message`], made strict.
//!
//! Strictness, rustls-style: the input length is checked against [`MAX_MESSAGE_LEN`]
//! before anything is decoded (so nothing is allocated for an oversized input), every
//! length prefix inside is bounded by the bytes actually present (postcard borrows, it
//! never preallocates from a claimed length beyond serde's cautious cap), trailing bytes
//! are an error, an unknown variant tag is a typed error, and only the canonical
//! encoding is accepted (no over-long varints). New `Message` variants need
//! no change here: the enum's serde derive is the whole schema.

use thiserror::Error;

use super::message::Message;

/// The largest encoded message accepted or produced: a 32 KiB CHK block plus its
/// envelope, with room for a `LocationUpdate` of a few hundred neighbours.
pub const MAX_MESSAGE_LEN: usize = 36 * 1024;

/// Why a message could not be encoded or decoded.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The input (or the encoding) is longer than [`MAX_MESSAGE_LEN`].
    #[error("message of {len} bytes exceeds the maximum of {MAX_MESSAGE_LEN}")]
    TooLong {
        /// The offending length.
        len: usize,
    },
    /// The message's variant tag names no known message type.
    #[error("unknown message type")]
    UnknownType,
    /// The input ended before the message did.
    #[error("message truncated")]
    Truncated,
    /// A whole message was decoded but bytes were left over.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// The message decoded but is not in canonical form (e.g. an over-long varint):
    /// every message has exactly one accepted encoding.
    #[error("non-canonical encoding")]
    NonCanonical,
    /// The bytes do not form a valid message (bad varint, bad block, bad field).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Encoding failed locally (a serializer error; not the peer's fault).
    #[error("could not encode message: {0}")]
    Encode(String),
}

/// Encodes a message; fails if the encoding would exceed [`MAX_MESSAGE_LEN`].
pub fn encode(msg: &Message) -> Result<Vec<u8>, CodecError> {
    let bytes = postcard::to_allocvec(msg).map_err(|e| CodecError::Encode(e.to_string()))?;
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(CodecError::TooLong { len: bytes.len() });
    }
    Ok(bytes)
}

/// Decodes exactly one message from `bytes`, rejecting oversized input, unknown types
/// and trailing bytes.
pub fn decode(bytes: &[u8]) -> Result<Message, CodecError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(CodecError::TooLong { len: bytes.len() });
    }
    let (msg, rest) = postcard::take_from_bytes::<Message>(bytes).map_err(|e| classify(bytes, e))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes { extra: rest.len() });
    }
    // postcard accepts over-long varints; re-encoding is the cheap way to insist on the one
    // canonical form (a copy per message, small next to decrypting its frames).
    if postcard::to_allocvec(&msg).ok().as_deref() != Some(bytes) {
        return Err(CodecError::NonCanonical);
    }
    Ok(msg)
}

/// Reads the leading varint variant tag, if the input has a well-formed one.
fn leading_tag(bytes: &[u8]) -> Option<u32> {
    let mut tag: u64 = 0;
    for (i, b) in bytes.iter().take(5).enumerate() {
        tag |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(tag).ok();
        }
    }
    None
}

/// Whether `tag` names no variant of this build's [`Message`]. Asked of the decoder itself
/// (the tag alone, minimally encoded): a known tag fails with "unexpected end" or decodes
/// (a unit variant); an unknown one fails in serde's variant lookup. So adding a variant to
/// `Message` needs no change here.
fn is_unknown_tag(tag: u32) -> bool {
    let mut probe = Vec::with_capacity(5);
    let mut t = tag;
    loop {
        let byte = (t & 0x7f) as u8;
        t >>= 7;
        if t == 0 {
            probe.push(byte);
            break;
        }
        probe.push(byte | 0x80);
    }
    matches!(
        postcard::from_bytes::<Message>(&probe),
        Err(postcard::Error::SerdeDeCustom | postcard::Error::DeserializeBadEnum)
    )
}

fn classify(bytes: &[u8], e: postcard::Error) -> CodecError {
    if leading_tag(bytes).is_some_and(is_unknown_tag) {
        return CodecError::UnknownType;
    }
    match e {
        postcard::Error::DeserializeUnexpectedEnd => CodecError::Truncated,
        other => CodecError::Malformed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_round_trips() {
        let b = encode(&Message::Keepalive).unwrap();
        assert_eq!(decode(&b).unwrap(), Message::Keepalive);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut b = encode(&Message::RejectedLoop { id: 7 }).unwrap();
        b.push(0);
        assert_eq!(decode(&b), Err(CodecError::TrailingBytes { extra: 1 }));
    }

    #[test]
    fn unknown_type_is_typed() {
        assert_eq!(decode(&[0x7f]), Err(CodecError::UnknownType));
        assert_eq!(decode(&[0xff, 0x7f]), Err(CodecError::UnknownType));
    }

    #[test]
    fn truncated_and_empty_are_typed() {
        let b = encode(&Message::RejectedLoop { id: 1 << 40 }).unwrap();
        assert_eq!(decode(&b[..b.len() - 1]), Err(CodecError::Truncated));
        assert_eq!(decode(&[]), Err(CodecError::Truncated));
    }

    #[test]
    fn overlong_varints_are_rejected() {
        // RejectedLoop (tag 4) with id 0 written as a two-byte varint.
        assert_eq!(decode(&[4, 0]), Ok(Message::RejectedLoop { id: 0 }));
        assert_eq!(decode(&[4, 0x80, 0]), Err(CodecError::NonCanonical));
    }

    #[test]
    fn oversized_input_is_rejected_before_decoding() {
        let big = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert_eq!(decode(&big), Err(CodecError::TooLong { len: MAX_MESSAGE_LEN + 1 }));
    }

    #[test]
    fn an_over_long_reference_is_refused() {
        use crate::wire::message::{Reference, MAX_REFERENCE_LEN};
        let ok = Message::AnnounceDone { id: 3 };
        assert_eq!(decode(&encode(&ok).unwrap()).unwrap(), ok);
        // A FoldOffer whose reference is one byte too long, built by hand: the encoder
        // cannot make one (Reference::new refuses it).
        let at_max = Message::FoldOffer {
            id: 1,
            location: crate::location::Location(2),
            reference: Reference::new(vec![7; MAX_REFERENCE_LEN]).unwrap(),
        };
        let mut bytes = encode(&at_max).unwrap();
        assert_eq!(decode(&bytes).unwrap(), at_max);
        // The length varint of 2048 is [0x80, 0x10]; 2049 is [0x81, 0x10].
        let at = bytes.len() - MAX_REFERENCE_LEN - 2;
        assert_eq!(&bytes[at..at + 2], &[0x80, 0x10]);
        bytes[at] = 0x81;
        bytes.push(7);
        assert!(matches!(decode(&bytes), Err(CodecError::Malformed(_))), "{:?}", decode(&bytes));
    }

    #[test]
    fn a_full_key_offer_fits_and_a_huge_claimed_one_fails() {
        use crate::wire::message::MAX_OFFERED_KEYS;
        use pamphlet_crypto::{BlockKind, RoutingKey};
        let keys = (0..MAX_OFFERED_KEYS).map(|i| (BlockKind::Ssk, RoutingKey([i as u8 | 0x80; 32]))).collect();
        let full = Message::OfferKeys { id: u64::MAX, keys };
        let bytes = encode(&full).unwrap();
        assert!(bytes.len() < MAX_MESSAGE_LEN / 3, "{}", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), full);
        // OfferKeys (tag 22), id 0, then a key count of 2^32-1 with no keys.
        assert!(decode(&[22, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // WantKeys (tag 23), id 0, one key of an unknown kind.
        let mut want = vec![23, 0, 1, 9];
        want.extend([0; 32]);
        assert!(matches!(decode(&want), Err(CodecError::Malformed(_))), "{:?}", decode(&want));
    }

    #[test]
    fn huge_claimed_vector_length_does_not_allocate_or_panic() {
        // LocationUpdate (tag 13), location 0, then a neighbour count of 2^32-1 with no data.
        let bytes = [13u8, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode(&bytes).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::wire::testing::{arb_message, variant_index, VARIANTS};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_message_round_trips(m in arb_message()) {
            prop_assert!(variant_index(&m) < VARIANTS);
            let b = encode(&m).unwrap();
            prop_assert!(b.len() <= MAX_MESSAGE_LEN);
            prop_assert_eq!(decode(&b).unwrap(), m);
        }

        #[test]
        fn strict_prefixes_and_extensions_fail(m in arb_message(), cut in any::<prop::sample::Index>(), extra in any::<u8>()) {
            let b = encode(&m).unwrap();
            let n = cut.index(b.len());
            prop_assert!(decode(&b[..n]).is_err());
            let mut longer = b.clone();
            longer.push(extra);
            prop_assert_eq!(decode(&longer), Err(CodecError::TrailingBytes { extra: 1 }));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn the_strategy_covers_every_variant() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut seen = [false; VARIANTS];
        let mut runner = TestRunner::deterministic();
        let strat = arb_message();
        for _ in 0..2000 {
            seen[variant_index(&strat.new_tree(&mut runner).unwrap().current())] = true;
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }
}
