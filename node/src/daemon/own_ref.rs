//! This node's own reference: which addresses it advertises (`advertise` in config.toml,
//! else the address it listens on), the sequence number they are signed with
//! (`DIR/advertised.toml`, bumped when they change) and the signature; and the warnings
//! `pamphlet node noderef` prints when a reference would hand out an address nobody else
//! can dial.

use std::net::SocketAddr;
use std::path::Path;

use super::config::Config;
use super::datadir;
use super::DaemonError;
use crate::link::{NodeRef, PeerAddr};

/// The addresses this node advertises: `advertise`, or the address it listens on
/// (`bound`: the listener's real address, so a port 0 is the one picked).
pub fn advertised_addresses(config: &Config, bound: SocketAddr) -> Vec<PeerAddr> {
    if config.advertise.is_empty() {
        vec![PeerAddr::Ip(bound)]
    } else {
        config.advertise.clone()
    }
}

/// This node's reference, signed: its key, its advertised addresses and their sequence
/// number (raised, to at least the clock's Unix seconds, and saved first if they changed
/// since the last signature).
pub fn own_noderef(dir: &Path, config: &Config, bound: SocketAddr) -> Result<NodeRef, DaemonError> {
    let keypair = datadir::load_or_create_keypair(&dir.join("identity.key"))?;
    let addresses = advertised_addresses(config, bound);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let seq = datadir::advertised_seq(&dir.join("advertised.toml"), &addresses, now)?;
    let udp = config.transport == super::config::LinkTransport::Udp;
    let own = NodeRef::signed(&keypair, addresses, seq).map_err(|e| DaemonError::Advertise(e.to_string()))?;
    Ok(own.with_udp(udp))
}

/// What is wrong with handing out `noderef` from a node listening on `listen`, one
/// sentence per address nobody else could dial: the unspecified address always; a
/// loopback address (or `localhost`) only while the node listens elsewhere (a node on
/// 127.0.0.1 is a local test, and its loopback reference is right for it).
pub fn unroutable_warnings(noderef: &NodeRef, listen: SocketAddr) -> Vec<String> {
    let local_only = listen.ip().is_loopback();
    noderef
        .addresses()
        .iter()
        .filter_map(|a| {
            let why = a.unroutable()?;
            let unspecified = matches!(a, PeerAddr::Ip(ip) if ip.ip().is_unspecified());
            (unspecified || !local_only).then(|| {
                format!(
                    "this reference lists {a}, which {why}: friends on other machines cannot dial it. Set \
                     `advertise = [\"ADDRESS:PORT\"]` in config.toml to the address they can reach (your public IP \
                     or host name, with the port forwarded to {listen})"
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::StaticKeypair;

    fn reference(addrs: &[&str]) -> NodeRef {
        let kp = StaticKeypair::generate().unwrap();
        NodeRef::signed(&kp, addrs.iter().map(|a| a.parse().unwrap()).collect(), 1).unwrap()
    }

    #[test]
    fn warns_of_unspecified_always_and_loopback_only_when_listening_elsewhere() {
        let all = "0.0.0.0:4000".parse().unwrap();
        let lo = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(unroutable_warnings(&reference(&["0.0.0.0:4000"]), all).len(), 1);
        assert_eq!(unroutable_warnings(&reference(&["[::]:4000"]), lo).len(), 1, "unspecified even on loopback");
        assert_eq!(unroutable_warnings(&reference(&["127.0.0.1:4000"]), all).len(), 1);
        assert_eq!(unroutable_warnings(&reference(&["localhost:4000"]), all).len(), 1);
        assert!(unroutable_warnings(&reference(&["127.0.0.1:4000"]), lo).is_empty(), "a local test node");
        let fine = reference(&["10.231.0.1:4000", "node.example.org:4000", "[2001:db8::1]:4000"]);
        assert!(unroutable_warnings(&fine, all).is_empty());
        let w = &unroutable_warnings(&reference(&["10.231.0.1:4000", "0.0.0.0:4000"]), all)[0];
        assert!(w.contains("0.0.0.0:4000") && w.contains("advertise"), "{w}");
    }

    #[test]
    fn the_own_reference_is_signed_and_its_sequence_follows_advertise() {
        let dir = tempfile::tempdir().unwrap();
        let bound = "127.0.0.1:4000".parse().unwrap();
        let mut config = Config::default();
        let first = own_noderef(dir.path(), &config, bound).unwrap();
        assert_eq!(first.addresses(), &[PeerAddr::Ip(bound)], "no advertise: the listen address");
        assert!(first.record().seq() > 1_700_000_000, "starts at the clock");
        let again = own_noderef(dir.path(), &config, bound).unwrap();
        assert_eq!(again, first, "a restart with the same addresses hands out the same reference");
        config.advertise = vec!["10.231.0.1:4000".parse().unwrap()];
        let moved = own_noderef(dir.path(), &config, bound).unwrap();
        assert!(moved.record().seq() > first.record().seq());
        assert_eq!(moved.to_string().parse::<NodeRef>().unwrap(), moved, "verifies");
        assert!(moved.record().supersedes(first.record()));
    }
}
