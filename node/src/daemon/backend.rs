//! What the daemon gives the API: the node task's handle for blocks and status, the
//! transport for friends, and the data directory's friends file to remember them in.
//! Friend persistence lives here (the daemon's data directory), not in the node task.

use std::future::Future;
use std::path::PathBuf;

use pamphlet_crypto::{Block, BlockKind, RoutingKey};

use super::datadir;
use super::driver::NodeHandle;
use crate::api::{AddFriendError, ApiBackend, FriendAdded, NodeSnapshot};
use crate::client::pipeline::{BlockNetwork, InsertOutcome};
use crate::link::NodeRef;
use crate::node::Failure;
use crate::transport::{TransportError, TransportHandle};

/// The running daemon as the API (and in-process clients) use it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DaemonBackend {
    node: NodeHandle,
    transport: TransportHandle,
    /// `DIR/friends`.
    friends_file: PathBuf,
}

impl DaemonBackend {
    /// The backend over a running node task and transport; friends are remembered in
    /// `friends_file`.
    pub fn new(node: NodeHandle, transport: TransportHandle, friends_file: PathBuf) -> Self {
        Self { node, transport, friends_file }
    }

    /// Adds a friend: the transport accepts and dials it now, and the friends file
    /// remembers it for the next start.
    pub fn add(&self, friend: NodeRef) -> Result<FriendAdded, AddFriendError> {
        if friend.key == self.transport.public_key() {
            return Err(AddFriendError::IsSelf);
        }
        let peer = self.transport.add_friend(friend).map_err(|e| match e {
            TransportError::Conflict(p) => AddFriendError::Conflict(p),
            TransportError::Io(e) => AddFriendError::Transport(e.to_string()),
        })?;
        datadir::append_friend(&self.friends_file, &friend).map_err(|e| AddFriendError::Save(e.to_string()))?;
        Ok(FriendAdded { noderef: friend, peer })
    }
}

impl BlockNetwork for DaemonBackend {
    fn fetch(&self, kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        self.node.fetch(kind, key)
    }

    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.node.insert(block)
    }
}

impl ApiBackend for DaemonBackend {
    fn status(&self) -> NodeSnapshot {
        self.node.snapshot()
    }

    fn add_friend(&self, noderef: &str) -> Result<FriendAdded, AddFriendError> {
        self.add(noderef.parse()?)
    }
}
