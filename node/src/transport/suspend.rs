//! Suspending a friend's link: the node asks for it when the friend keeps lying
//! (`LinkAction::Suspend`, `node/misbehaviour.rs`). The link closes at once, the friend is
//! neither dialled nor given a link it dials until the suspension ends, and it stays a
//! friend: afterwards both sides dial as usual.

use std::time::{Duration, Instant};

use super::{LinkError, TransportEvent, TransportHandle};
use crate::id::PeerId;

impl TransportHandle {
    /// Closes the link to friend `peer` (or drops the stranger) and keeps it closed until
    /// `until`. Returns false if `peer` is neither.
    pub fn suspend(&self, peer: PeerId, until: Instant) -> bool {
        let (friend, had_link) = {
            let mut st = self.shared.state();
            let friend = st.friends.by_key.values_mut().find(|f| f.peer == peer);
            let known = friend.map(|f| f.suspended_until = Some(until)).is_some();
            (known, known && st.links.remove(&peer).is_some())
        };
        if !friend {
            // A stranger: dropping it is all there is (it is no one we would dial).
            let stranger = self.shared.state().strangers.by_key.values().any(|s| s.peer == peer);
            self.drop_stranger(peer);
            return stranger;
        }
        tracing::info!(?peer, secs = until.saturating_duration_since(Instant::now()).as_secs(), "link suspended");
        if had_link {
            let events = self.shared.events.clone();
            self.shared.spawn(move |_, done| async move {
                let _ = events.send(TransportEvent::Disconnected { peer, reason: LinkError::Suspended }).await;
                drop(done);
            });
        }
        true
    }
}

/// How long the dialer of a friend suspended until `until` must still wait (zero if not).
pub(super) fn wait_left(until: Option<Instant>) -> Duration {
    until.map_or(Duration::ZERO, |t| t.saturating_duration_since(Instant::now()))
}
