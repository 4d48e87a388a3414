//! One address a friend can be dialled at: an IP literal with a port, or a host name with
//! a port (resolved only when dialling, so a friend on a dynamic-DNS name is found again
//! after its IP changes).
//!
//! ```text
//! 192.0.2.7:4000      [2001:db8::7]:4000      node.example.org:4000
//! ```
//!
//! Parsing is strict: a port from 1 to 65535, a host name of letters, digits and hyphens
//! in dot-separated labels of 1 to 63 characters (at most 253 in all), whose last label
//! is not all digits (so a mistyped IPv4 address such as `1.2.3.256` is refused rather
//! than looked up as a name). No scheme, path, user or whitespace.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// The longest host name accepted (RFC 1035).
pub const MAX_HOST_LEN: usize = 253;

/// Where a friend can be dialled.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerAddr {
    /// An IP literal and port.
    Ip(SocketAddr),
    /// A host name and port, resolved when dialling.
    Host {
        /// The name, lower-cased.
        name: String,
        /// The port.
        port: u16,
    },
}

/// Why an address did not parse.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrError {
    /// No `:port` at the end.
    #[error("{0:?} has no port: write HOST:PORT, e.g. 192.0.2.7:4000, [2001:db8::7]:4000 or node.example.org:4000")]
    MissingPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("{0:?} has a bad port: use 1 to 65535")]
    BadPort(String),
    /// The host is neither an IP address nor a valid host name.
    #[error("{0:?} is neither an IP address nor a host name (letters, digits, hyphens and dots)")]
    BadHost(String),
}

impl PeerAddr {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            PeerAddr::Ip(a) => a.port(),
            PeerAddr::Host { port, .. } => *port,
        }
    }

    /// Why nobody else could dial this address, if that can be told from the address
    /// alone: the unspecified address (`0.0.0.0`, `::`) or loopback.
    pub fn unroutable(&self) -> Option<&'static str> {
        match self {
            PeerAddr::Ip(a) if a.ip().is_unspecified() => {
                Some("is the unspecified address (listen on all interfaces), which nobody can dial")
            }
            PeerAddr::Ip(a) if a.ip().is_loopback() => Some("is a loopback address, reachable only from this machine"),
            PeerAddr::Host { name, .. } if name == "localhost" || name.ends_with(".localhost") => {
                Some("names this machine only")
            }
            _ => None,
        }
    }
}

impl serde::Serialize for PeerAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PeerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        PeerAddr::Ip(a)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(a) => write!(f, "{a}"),
            PeerAddr::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

fn valid_host_name(name: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let last_not_numeric = name.rsplit('.').next().is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()));
    name.len() <= MAX_HOST_LEN && name.split('.').all(label_ok) && last_not_numeric
}

impl FromStr for PeerAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            if a.port() == 0 {
                return Err(AddrError::BadPort(s.to_owned()));
            }
            return Ok(PeerAddr::Ip(a));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| AddrError::MissingPort(s.to_owned()))?;
        // A bare IPv6 address (colons, no brackets) lands here with a "port" that is its
        // last group: say it has no port rather than that it is a bad name.
        if host.parse::<IpAddr>().is_err() && host.contains(':') {
            return Err(AddrError::MissingPort(s.to_owned()));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && !port.starts_with('+') && !port.starts_with('0') => p,
            _ => return Err(AddrError::BadPort(s.to_owned())),
        };
        if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
            // An IP with a valid port would have parsed above: it was an unbracketed IPv6
            // address or a malformed bracket.
            return Err(AddrError::BadHost(s.to_owned()));
        }
        if !valid_host_name(host) {
            return Err(AddrError::BadHost(s.to_owned()));
        }
        Ok(PeerAddr::Host { name: host.to_ascii_lowercase(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_host_names_round_trip() {
        for text in ["192.0.2.7:4000", "[2001:db8::7]:4000", "[::1]:9", "node.example.org:4000", "a-b.c1:65535"] {
            let a: PeerAddr = text.parse().unwrap();
            assert_eq!(a.to_string(), text);
            assert_eq!(a.to_string().parse::<PeerAddr>().unwrap(), a);
        }
        assert_eq!("Node.Example.ORG:1".parse::<PeerAddr>().unwrap().to_string(), "node.example.org:1");
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        let bad = |s: &str| s.parse::<PeerAddr>().unwrap_err();
        assert_eq!(bad("192.0.2.7"), AddrError::MissingPort("192.0.2.7".into()));
        assert_eq!(bad("2001:db8::7"), AddrError::MissingPort("2001:db8::7".into()));
        assert_eq!(bad("example.org"), AddrError::MissingPort("example.org".into()));
        for port in ["0", "65536", "x", "", "+5", "04000"] {
            assert!(matches!(bad(&format!("example.org:{port}")), AddrError::BadPort(_)), "{port}");
        }
        assert!(matches!(bad("1.2.3.4:0"), AddrError::BadPort(_)));
        for host in [
            "1.2.3.256",
            "-a.org",
            "a-.org",
            "a..org",
            "",
            "a b.org",
            "http://a.org",
            "a.org/x",
            "[::1",
            "é.org",
            "a_b.org",
        ] {
            assert!(format!("{host}:4000").parse::<PeerAddr>().is_err(), "{host} accepted");
        }
        let long = format!("{}.org:1", "a".repeat(64));
        assert!(long.parse::<PeerAddr>().is_err(), "label over 63");
        let total = format!("{}org:1", "abcdefghi.".repeat(26));
        assert!(total.parse::<PeerAddr>().is_err(), "name over 253");
        let max = format!("{}org:1", "abcdefghi.".repeat(25));
        assert!(max.parse::<PeerAddr>().is_ok(), "253 exactly is allowed");
    }

    #[test]
    fn unroutable_addresses_are_named() {
        for text in ["0.0.0.0:4000", "[::]:4000", "127.0.0.1:4000", "[::1]:4000", "localhost:4000"] {
            assert!(text.parse::<PeerAddr>().unwrap().unroutable().is_some(), "{text}");
        }
        for text in ["10.231.0.1:4000", "[2001:db8::1]:4000", "node.example.org:4000"] {
            assert_eq!(text.parse::<PeerAddr>().unwrap().unroutable(), None, "{text}");
        }
    }
}
