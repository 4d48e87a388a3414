//! The uptime file (steady backups, issue 20): the node's own sessions, which only the
//! driver can time (wall clock), and each peer's observed uptime, kept across restarts.
//!
//! The `Node` never reads a clock: the driver keeps `DIR/uptime` (`daemon/uptime.rs`), a
//! session per run (start and the last "alive" time, unix seconds, written every few
//! minutes and at a clean stop), and passes the node its own online share over the last
//! [`OWN_WINDOW`] ([`UptimeHistory::own_share`], `Node::set_own_uptime`) and the peers'
//! counters it saved last time (`Node::load_peer_uptimes`). This module is the format and
//! the arithmetic, pure and unit-tested; a file that is too large or does not parse is
//! refused whole with an [`UptimeFileError`] (the driver logs it and starts a fresh history:
//! the node then does not know its own share, and makes no steady backups, until it has
//! one again).
//!
//! Format, text, one record a line (a person can read it; nothing in it is secret beyond
//! what the friends file already says: the peer ids are the first 8 bytes of the friends'
//! keys):
//!
//! ```text
//! pamphlet-uptime 1
//! s START END                  a session: unix seconds, START <= END
//! p PEER KNOWN CONNECTED       a peer (16 hex digits) and its seconds known and connected
//! ```

use crate::id::PeerId;

/// The first line of the file (format version 1).
const HEADER: &str = "pamphlet-uptime 1";
/// The largest file read (a full one is about 40 KiB); a larger one is refused unread.
pub const MAX_UPTIME_FILE: u64 = 64 * 1024;
/// The most sessions kept (the oldest are dropped first).
pub const MAX_SESSIONS: usize = 512;
/// The most peers kept (those seen least recently are dropped first, by the node).
pub const MAX_PEERS: usize = 1024;
/// The window of the node's own share: a week, the model's time constant (the model's
/// uptime is an exponential average of the hours online with a one-week constant).
pub const OWN_WINDOW: u64 = 7 * 24 * 3600;
/// A history shorter than this counts as this long (the time not covered as offline): a
/// node installed an hour ago does not count as always online.
pub const OWN_MIN_COVERED: u64 = 24 * 3600;

/// One run of the node: from its start to the last time the driver saw it alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// Unix seconds at the start.
    pub start: u64,
    /// Unix seconds when last seen alive (the stop, after a clean one).
    pub end: u64,
}

/// A peer's observed uptime, as saved: seconds this node knew it (was running since it
/// first saw it, the oldest forgotten past a week) and seconds it was connected then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerUptime {
    /// The peer.
    pub peer: PeerId,
    /// Seconds this node ran while it knew the peer (at most a week's worth).
    pub known: u64,
    /// Of those, seconds the peer was connected.
    pub connected: u64,
}

/// The contents of the uptime file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UptimeHistory {
    /// The node's runs, oldest first.
    pub sessions: Vec<Session>,
    /// The peers' observed uptimes.
    pub peers: Vec<PeerUptime>,
}

/// Why an uptime file was refused (whole: nothing in it is used).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UptimeFileError {
    /// Larger than [`MAX_UPTIME_FILE`]: not read.
    #[error("the uptime file is {bytes} bytes, more than the {MAX_UPTIME_FILE} allowed")]
    TooLarge {
        /// Its size.
        bytes: u64,
    },
    /// Not text, or not this format's header.
    #[error("not an uptime file (wrong header or not text)")]
    Header,
    /// A line that is no record of this format.
    #[error("line {line} of the uptime file is not a record: {why}")]
    Line {
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        why: &'static str,
    },
    /// More sessions or peers than kept.
    #[error("the uptime file has more than {MAX_SESSIONS} sessions or {MAX_PEERS} peers")]
    TooMany,
}

impl UptimeHistory {
    /// Parses a file's bytes (the whole file or nothing).
    pub fn decode(bytes: &[u8]) -> Result<Self, UptimeFileError> {
        if bytes.len() as u64 > MAX_UPTIME_FILE {
            return Err(UptimeFileError::TooLarge { bytes: bytes.len() as u64 });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| UptimeFileError::Header)?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(UptimeFileError::Header);
        }
        let mut h = UptimeHistory::default();
        for (i, line) in lines.enumerate() {
            let bad = |why| UptimeFileError::Line { line: i + 2, why };
            let fields: Vec<&str> = line.split(' ').collect();
            let num = |s: &str| s.parse::<u64>().map_err(|_| bad("a number does not parse"));
            match fields.as_slice() {
                ["s", start, end] => {
                    let (start, end) = (num(start)?, num(end)?);
                    if end < start {
                        return Err(bad("a session ends before it starts"));
                    }
                    h.sessions.push(Session { start, end });
                }
                ["p", peer, known, connected] => {
                    let peer = u64::from_str_radix(peer, 16).map_err(|_| bad("a peer id is not hex"))?;
                    let (known, connected) = (num(known)?, num(connected)?);
                    if connected > known {
                        return Err(bad("a peer connected longer than known"));
                    }
                    h.peers.push(PeerUptime { peer: PeerId(peer), known, connected });
                }
                [""] => {}
                _ => return Err(bad("unknown record")),
            }
            if h.sessions.len() > MAX_SESSIONS || h.peers.len() > MAX_PEERS {
                return Err(UptimeFileError::TooMany);
            }
        }
        Ok(h)
    }

    /// The file's bytes (at most [`MAX_SESSIONS`] and [`MAX_PEERS`], the newest sessions).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from(HEADER);
        out.push('\n');
        let skip = self.sessions.len().saturating_sub(MAX_SESSIONS);
        for s in &self.sessions[skip..] {
            out.push_str(&format!("s {} {}\n", s.start, s.end));
        }
        for p in self.peers.iter().take(MAX_PEERS) {
            out.push_str(&format!("p {:016x} {} {}\n", p.peer.0, p.known, p.connected));
        }
        out.into_bytes()
    }

    /// The node's online share at `now` (unix seconds): seconds online within the last
    /// [`OWN_WINDOW`] over the time its history covers in it (from its first session's
    /// start), at least [`OWN_MIN_COVERED`]. `None` without any session before `now`.
    /// Sessions in the future (a clock set back) count for nothing; overlaps are clamped
    /// by the result's bound of 1.
    pub fn own_share(&self, now: u64) -> Option<f64> {
        let from = now.saturating_sub(OWN_WINDOW);
        let first = self.sessions.iter().map(|s| s.start).filter(|&t| t < now).min()?;
        let covered = now - first.max(from);
        let online: u64 = self.sessions.iter().map(|s| s.end.min(now).saturating_sub(s.start.max(from))).sum();
        Some((online as f64 / covered.max(OWN_MIN_COVERED) as f64).min(1.0))
    }

    /// Starts a session at `now` and drops what is too old to matter (sessions that ended
    /// before the window) and the oldest past [`MAX_SESSIONS`]. A session that starts in
    /// the future is dropped, and one that ends there (a clock that jumped ahead during a
    /// run and was set right, or an edited file) counts for nothing, as its real end is
    /// unknown: kept as it is, a session ending a year ahead would count this node as
    /// always online, and never leave the window.
    pub fn start_session(&mut self, now: u64) {
        let from = now.saturating_sub(OWN_WINDOW);
        self.sessions.retain(|s| s.start <= now);
        for s in &mut self.sessions {
            if s.end > now {
                s.end = s.start;
            }
        }
        self.sessions.retain(|s| s.end >= from);
        self.sessions.push(Session { start: now, end: now });
        let skip = self.sessions.len().saturating_sub(MAX_SESSIONS);
        self.sessions.drain(..skip);
    }

    /// The running session was alive at `now`.
    pub fn alive(&mut self, now: u64) {
        if let Some(s) = self.sessions.last_mut() {
            s.end = now.max(s.start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    /// A session that ends in the future (the clock jumped ahead, or the file was edited)
    /// counts for nothing from the next start: the node is not counted always online for
    /// it; the day it really ran afterwards counts.
    #[test]
    fn a_session_ending_in_the_future_counts_for_nothing() {
        let now = 100 * DAY;
        let mut h = UptimeHistory {
            sessions: vec![
                Session { start: now - 10 * DAY, end: now + 365 * DAY },
                Session { start: now + DAY, end: now + 2 * DAY },
            ],
            peers: Vec::new(),
        };
        h.start_session(now + 8 * DAY);
        let share = h.own_share(now + 8 * DAY + 3600).unwrap();
        assert!(share < 0.2, "{share}");
        assert_eq!(h.sessions.len(), 2, "the session of unknown end is gone from the window");
    }

    #[test]
    fn a_history_round_trips() {
        let h = UptimeHistory {
            sessions: vec![Session { start: 10, end: 20 }, Session { start: 30, end: 30 }],
            peers: vec![PeerUptime { peer: PeerId(u64::MAX), known: 100, connected: 40 }],
        };
        assert_eq!(UptimeHistory::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn the_share_is_the_time_online_in_the_last_week() {
        let now = 100 * DAY;
        let mut h = UptimeHistory::default();
        assert_eq!(h.own_share(now), None, "no history: unknown");
        // Four hours a day for the last ten days: a sixth of the week.
        for d in 0..10 {
            h.sessions.push(Session { start: now - (10 - d) * DAY, end: now - (10 - d) * DAY + 4 * 3600 });
        }
        let share = h.own_share(now).unwrap();
        assert!((share - 1.0 / 6.0).abs() < 1e-9, "{share}");
        // Always on since it was installed two days ago: 1.
        let h = UptimeHistory { sessions: vec![Session { start: now - 2 * DAY, end: now }], peers: vec![] };
        assert_eq!(h.own_share(now), Some(1.0));
        // An hour since install counts as an hour of a day.
        let h = UptimeHistory { sessions: vec![Session { start: now - 3600, end: now }], peers: vec![] };
        assert!((h.own_share(now).unwrap() - 1.0 / 24.0).abs() < 1e-9);
        // A session in the future (clock set back) counts for nothing.
        let h = UptimeHistory { sessions: vec![Session { start: now + DAY, end: now + 2 * DAY }], peers: vec![] };
        assert_eq!(h.own_share(now), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let mut h = UptimeHistory::default();
        for t in 0..2 * MAX_SESSIONS as u64 {
            h.start_session(t);
            h.alive(t);
        }
        assert_eq!(h.sessions.len(), MAX_SESSIONS);
        h.start_session(OWN_WINDOW * 3);
        assert_eq!(h.sessions.len(), 1, "sessions older than the window are dropped");
    }
}
