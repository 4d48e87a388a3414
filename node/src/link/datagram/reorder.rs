//! Delivery without head-of-line blocking: a frame goes up as soon as it arrives, unless it
//! continues a message stream whose previous frame has not (`wire::frame::FrameReader`
//! reassembles a message from its frames in order). Each frame names the frame it follows
//! (`previous`, 0 for none), so a lost frame holds back only later frames of its own stream.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::wire::frame::BODY_LEN;

use super::packet::FrameHeader;
use super::{PeerError, FRAME_WINDOW};

/// The receiving side's frames: which arrived, which wait, which are ready.
#[derive(Debug)]
pub struct Reorder {
    /// Every frame number below this arrived (frame numbers start at 1).
    received_below: u64,
    /// Frame numbers at or above `received_below` that arrived.
    received_above: BTreeSet<u64>,
    /// Frames waiting for their predecessor, keyed by it.
    held: HashMap<u64, (u64, Box<[u8; BODY_LEN]>)>,
    /// The numbers of the frames in `held`.
    held_numbers: HashSet<u64>,
    /// Frames ready for the layer above, in delivery order.
    ready: VecDeque<Box<[u8; BODY_LEN]>>,
}

impl Default for Reorder {
    fn default() -> Self {
        Self {
            received_below: 1,
            received_above: BTreeSet::new(),
            held: HashMap::new(),
            held_numbers: HashSet::new(),
            ready: VecDeque::new(),
        }
    }
}

impl Reorder {
    fn received(&self, n: u64) -> bool {
        n < self.received_below || self.received_above.contains(&n)
    }

    fn delivered(&self, n: u64) -> bool {
        self.received(n) && !self.held_numbers.contains(&n)
    }

    /// Frames waiting for an earlier one.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Frame numbers remembered above the contiguous prefix.
    pub fn received_above(&self) -> usize {
        self.received_above.len()
    }

    /// Frames ready and not yet taken.
    pub fn ready(&self) -> usize {
        self.ready.len()
    }

    /// Takes an arriving frame; returns whether it was new (a duplicate is dropped).
    pub fn on_frame(&mut self, h: &FrameHeader, body: Box<[u8; BODY_LEN]>) -> Result<bool, PeerError> {
        if h.number >= self.received_below + FRAME_WINDOW {
            return Err(PeerError::BeyondWindow(h.number));
        }
        if self.received(h.number) {
            return Ok(false);
        }
        if h.previous != 0 && !self.delivered(h.previous) {
            if self.held.contains_key(&h.previous) {
                // Two frames cannot follow the same frame.
                return Err(PeerError::BadChain(h.number));
            }
            self.held.insert(h.previous, (h.number, body));
            self.held_numbers.insert(h.number);
        } else {
            self.ready.push_back(body);
            let mut last = h.number;
            while let Some((n, body)) = self.held.remove(&last) {
                self.held_numbers.remove(&n);
                self.ready.push_back(body);
                last = n;
            }
        }
        self.received_above.insert(h.number);
        while self.received_above.remove(&self.received_below) {
            self.received_below += 1;
        }
        Ok(true)
    }

    /// The next frame for the layer above.
    pub fn pop(&mut self) -> Option<Box<[u8; BODY_LEN]>> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(number: u64, previous: u64) -> FrameHeader {
        FrameHeader { number, previous }
    }

    fn body(n: u8) -> Box<[u8; BODY_LEN]> {
        Box::new([n; BODY_LEN])
    }

    fn drain(r: &mut Reorder) -> Vec<u8> {
        std::iter::from_fn(|| r.pop()).map(|b| b[0]).collect()
    }

    #[test]
    fn a_gap_holds_back_only_its_own_stream() {
        let mut r = Reorder::default();
        // Stream A: 1 -> 3 -> 5; stream B: 2 -> 4; frame 6 alone. Frame 1 is late.
        for (h, b) in [(f(2, 0), 2), (f(3, 1), 3), (f(4, 2), 4), (f(5, 3), 5), (f(6, 0), 6)] {
            assert!(r.on_frame(&h, body(b)).unwrap());
        }
        assert_eq!(drain(&mut r), vec![2, 4, 6]);
        assert_eq!(r.held(), 2);
        assert!(r.on_frame(&f(1, 0), body(1)).unwrap());
        assert_eq!(drain(&mut r), vec![1, 3, 5]);
        assert!(!r.on_frame(&f(3, 1), body(3)).unwrap(), "a duplicate is dropped");
        assert!(!r.on_frame(&f(1, 0), body(1)).unwrap());
        assert_eq!(drain(&mut r), Vec::<u8>::new());
    }

    #[test]
    fn a_peer_cannot_make_us_hold_unbounded_frames() {
        let mut r = Reorder::default();
        assert!(r.on_frame(&f(FRAME_WINDOW - 1, 0), body(1)).is_ok());
        assert_eq!(r.on_frame(&f(FRAME_WINDOW + 1, 0), body(1)), Err(PeerError::BeyondWindow(FRAME_WINDOW + 1)));
        assert!(r.on_frame(&f(7, 5), body(1)).unwrap());
        assert_eq!(r.on_frame(&f(8, 5), body(1)), Err(PeerError::BadChain(8)));
    }
}
