//! The wire protocol, sans-IO: messages, their codec, and fixed-size frames.
//! See docs/wire.md for byte diagrams.

pub mod message;

pub use message::{Htl, Message, RequestId};
