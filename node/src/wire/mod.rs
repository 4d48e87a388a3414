//! The wire protocol, sans-IO: messages, their codec, and fixed-size frames.
//! See docs/wire.md for byte diagrams.
//!
//! - `message`: the [`Message`] enum (every node-to-node message);
//! - `codec`: strict postcard encoding of one message ([`encode`], [`decode`]);
//! - `frame`: messages into equal-sized, interleaved frame bodies and back
//!   ([`FrameWriter`], [`FrameReader`]).
//!
//! Nothing here does I/O, reads a clock or draws randomness; the transport encrypts the
//! frame bodies and moves them.

pub mod codec;
pub mod frame;
pub mod message;
#[cfg(test)]
pub(crate) mod testing;

pub use codec::{decode, encode, CodecError, MAX_MESSAGE_LEN};
pub use frame::{FrameError, FrameReader, FrameWriter, BODY_LEN, FRAME_LEN};
pub use message::Message;
