//! What the daemon gives the API: the node task's handle for blocks and status, the
//! transport for friends, and the data directory's friends file to remember them in.
//! Friend persistence lives here (the daemon's data directory), not in the node task.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use pamphlet_crypto::{Block, BlockKind, RoutingKey};

use super::datadir;
use super::driver::NodeHandle;
use crate::api::{
    AddFriendError, AddOutcome, ApiBackend, FriendAdded, FriendSnapshot, NodeSnapshot, RemoveFriendError,
};
use crate::client::pipeline::{BlockNetwork, InsertOutcome};
use crate::link::{NodeRef, PublicKey};
use crate::node::Failure;
use crate::transport::{FriendInfo, TransportError, TransportHandle};

/// The running daemon as the API (and in-process clients) use it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DaemonBackend {
    node: NodeHandle,
    transport: TransportHandle,
    /// `DIR/friends`.
    friends_file: PathBuf,
    /// Held while the friends file is rewritten (links save friends' new addresses too).
    friends_lock: Arc<Mutex<()>>,
}

/// A friend as the API shows it.
fn snapshot(f: &FriendInfo) -> FriendSnapshot {
    let (state, since) = match (f.connected_since, f.last_seen) {
        (Some(t), _) => ("connected", Some(t)),
        (None, Some(_)) => ("connecting", f.connecting_since),
        (None, None) => ("never connected", f.connecting_since),
    };
    FriendSnapshot {
        peer: format!("{:016x}", f.peer.0),
        key: f.noderef.key.to_base64(),
        noderef: f.noderef.to_string(),
        addresses: f.noderef.addresses().iter().map(ToString::to_string).collect(),
        seq: f.noderef.record().seq(),
        state: state.into(),
        since,
        last_seen: f.last_seen,
        last_error: f.last_error.as_ref().map(ToString::to_string),
        last_error_kind: f.last_error.as_ref().map(|e| e.kind().to_owned()),
        records_refused: f.records_refused,
    }
}

impl DaemonBackend {
    /// The backend over a running node task and transport; friends are remembered in
    /// `friends_file`, rewritten under `friends_lock`.
    pub fn new(
        node: NodeHandle,
        transport: TransportHandle,
        friends_file: PathBuf,
        friends_lock: Arc<Mutex<()>>,
    ) -> Self {
        Self { node, transport, friends_file, friends_lock }
    }

    /// Adds a friend: the transport accepts and dials it now, and the friends file
    /// remembers it for the next start. A known friend's newer reference replaces its
    /// addresses (in the file too); an older one changes nothing.
    pub fn add(&self, friend: NodeRef) -> Result<FriendAdded, AddFriendError> {
        if friend.key == self.transport.public_key() {
            return Err(AddFriendError::IsSelf);
        }
        let kept = |t: &TransportHandle| t.friends().into_iter().find(|f| f.noderef.key == friend.key);
        let before = kept(&self.transport);
        let peer = self.transport.add_friend(friend.clone()).map_err(|e| match e {
            TransportError::Conflict(p) => AddFriendError::Conflict(p),
            TransportError::Io(e) => AddFriendError::Transport(e.to_string()),
        })?;
        let after = kept(&self.transport).map(|f| f.noderef).unwrap_or_else(|| friend.clone());
        let outcome = match before {
            None => AddOutcome::Added,
            Some(b) if b.noderef != after => AddOutcome::Updated,
            Some(_) => AddOutcome::Known,
        };
        // Written even when nothing changed: an earlier add whose save failed is saved now.
        let _held = self.friends_lock.lock().unwrap_or_else(PoisonError::into_inner);
        datadir::replace_friend(&self.friends_file, &after).map_err(|e| AddFriendError::Save(e.to_string()))?;
        Ok(FriendAdded { noderef: after, peer, outcome })
    }

    /// Removes the friend named by `which` (peer id, key or reference) from the
    /// transport and the friends file.
    pub fn remove(&self, which: &str) -> Result<FriendSnapshot, RemoveFriendError> {
        let which = which.trim();
        let key: Option<PublicKey> = which.parse::<NodeRef>().ok().map(|r| r.key);
        let found = self.transport.friends().into_iter().find(|f| {
            key.as_ref() == Some(&f.noderef.key)
                || f.noderef.key.to_base64() == which
                || format!("{:016x}", f.peer.0).eq_ignore_ascii_case(which)
        });
        let Some(friend) = found else {
            return Err(RemoveFriendError::NotFound(which.to_owned()));
        };
        self.transport.remove_friend(&friend.noderef.key);
        let _held = self.friends_lock.lock().unwrap_or_else(PoisonError::into_inner);
        datadir::remove_friend(&self.friends_file, &friend.noderef.key)
            .map_err(|e| RemoveFriendError::Save(e.to_string()))?;
        Ok(snapshot(&friend))
    }

    /// Every friend with its state.
    pub fn friend_list(&self) -> Vec<FriendSnapshot> {
        self.transport.friends().iter().map(snapshot).collect()
    }
}

impl BlockNetwork for DaemonBackend {
    fn fetch(&self, kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        self.node.fetch(kind, key)
    }

    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.node.insert(block)
    }

    fn insert_top(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.node.insert_top(block)
    }
}

impl ApiBackend for DaemonBackend {
    fn status(&self) -> NodeSnapshot {
        self.node.snapshot()
    }

    fn add_friend(&self, noderef: &str) -> Result<FriendAdded, AddFriendError> {
        self.add(noderef.parse()?)
    }

    fn friends(&self) -> Vec<FriendSnapshot> {
        self.friend_list()
    }

    fn remove_friend(&self, friend: &str) -> Result<FriendSnapshot, RemoveFriendError> {
        self.remove(friend)
    }
}
