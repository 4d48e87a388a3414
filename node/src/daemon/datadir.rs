//! What a node keeps in its data directory besides its store: its static key, its friends,
//! its routing state (location and swap age), the secret behind its HTL coins, and the
//! client API's token.
//!
//! Secret files are written with mode 0600 and replaced atomically (temp file + rename), so
//! a crash never leaves half a key behind.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::link::{NodeRef, PeerAddr, PublicKey, StaticKeypair};
use crate::location::Location;
use crate::node::NodeSecret;
use zeroize::Zeroize;

/// Why a data-directory file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// Reading or writing failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file's content is not what pamphlet writes there.
    #[error("{path} is damaged: {what}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong with it.
        what: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io { path: path.display().to_string(), source }
}

/// Writes `bytes` to `path` atomically, readable only by the owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    // `api.token` and `api.addr` must not share a temp file: name it after the whole file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    // A leftover temp file from a crash may have looser permissions: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(io(path))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(path))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Files of the data directory that hold secrets (or, for `friends`, who your friends
/// are): owner-only, whoever created them.
pub const SECRET_FILES: [&str; 9] = [
    "identity.key",
    "api.token",
    "state.toml",
    "friends",
    "friends.seen",
    "store/store.header",
    "pins",
    "pins-state.json",
    "offers.keys",
];

/// Makes `dir` owner-only (0700) and every file of [`SECRET_FILES`] in it owner-only
/// (0600), at every start: a directory that existed before pamphlet (created 0755 by a
/// user or a package script) or a file restored from a backup would otherwise stay as
/// readable as it came. Each change is logged as a warning, since it means someone else
/// may already have read the file. Returns the paths it had to tighten.
pub fn secure_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, DataDirError> {
    let mut tightened = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut tighten = |path: &Path, mode: u32| -> Result<(), DataDirError> {
            // symlink_metadata: a planted symlink is neither followed nor chmodded.
            let meta = match std::fs::symlink_metadata(path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io(path)(e)),
            };
            if meta.file_type().is_symlink() || meta.permissions().mode() & 0o077 == 0 {
                return Ok(());
            }
            tracing::warn!(
                path = %path.display(),
                was = format_args!("{:o}", meta.permissions().mode() & 0o777),
                now = format_args!("{mode:o}"),
                "data directory entry was readable by others; tightened (check who could read it)"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))?;
            tightened.push(path.to_path_buf());
            Ok(())
        };
        tighten(dir, 0o700)?;
        for f in SECRET_FILES {
            tighten(&dir.join(f), 0o600)?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(tightened)
}

/// Loads the node's static key from `path`, creating one if the file does not exist.
pub fn load_or_create_keypair(path: &Path) -> Result<StaticKeypair, DataDirError> {
    let damaged = |what: &str| DataDirError::Damaged { path: path.display().to_string(), what: what.into() };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut lines = text.lines();
            let mut field = |name: &str| -> Result<[u8; 32], DataDirError> {
                let line = lines.next().ok_or_else(|| damaged(&format!("missing {name}")))?;
                let v = line.strip_prefix(name).and_then(|l| l.strip_prefix(": ")).ok_or_else(|| damaged(name))?;
                let bytes = URL_SAFE_NO_PAD.decode(v.trim()).map_err(|_| damaged(&format!("{name} is not base64")))?;
                bytes.try_into().map_err(|_| damaged(&format!("{name} is not 32 bytes")))
            };
            let secret = field("secret")?;
            let public = field("public")?;
            // The public half is what friends know us by: a file whose halves disagree
            // (edited, or two files spliced) would make every handshake fail with no
            // clue why, so it is refused here with one.
            let kp = StaticKeypair::from_secret(secret).map_err(|e| damaged(&format!("bad secret: {e}")))?;
            if kp.public() != &PublicKey(public) {
                return Err(damaged("public does not belong to secret"));
            }
            Ok(kp)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kp = StaticKeypair::generate().map_err(|e| damaged(&format!("cannot generate a key: {e}")))?;
            let text = format!(
                "secret: {}\npublic: {}\n",
                URL_SAFE_NO_PAD.encode(kp.expose_secret()),
                URL_SAFE_NO_PAD.encode(kp.public().as_bytes())
            );
            write_private(path, text.as_bytes())?;
            Ok(kp)
        }
        Err(e) => Err(io(path)(e)),
    }
}

/// Reads the friends file: one node reference per line; `#` starts a comment.
pub fn load_friends(path: &Path) -> Result<Vec<NodeRef>, DataDirError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut friends = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        friends.push(line.parse().map_err(|e| DataDirError::Damaged {
            path: path.display().to_string(),
            what: format!("line {}: {e}", n + 1),
        })?);
    }
    Ok(friends)
}

/// Appends a friend to the friends file (if it is not there already).
pub fn append_friend(path: &Path, friend: &NodeRef) -> Result<(), DataDirError> {
    if load_friends(path)?.iter().any(|f| f.key == friend.key) {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    // Who your friends are is exactly what an adversary of a darknet wants to learn.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(io(path))?;
    writeln!(f, "{friend}").and_then(|()| f.sync_all()).map_err(io(path))
}

/// Rewrites the friends file line by line: each line holding a reference is passed to
/// `edit` (with its parsed reference), which returns the line to keep (`None` drops it).
/// Comments and blank lines stay. Atomic (temp file + rename, 0600).
fn edit_friends(path: &Path, mut edit: impl FnMut(&NodeRef) -> Option<String>) -> Result<(), DataDirError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(path)(e)),
    };
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        let trimmed = line.trim();
        let kept = match trimmed.parse::<NodeRef>() {
            Ok(r) if !trimmed.starts_with('#') => edit(&r),
            _ => Some(line.to_owned()),
        };
        if let Some(l) = kept {
            out.push_str(&l);
            out.push('\n');
        }
    }
    write_private(path, out.as_bytes())
}

/// Replaces the friend's line with `friend` (its newer reference), or appends it.
pub fn replace_friend(path: &Path, friend: &NodeRef) -> Result<(), DataDirError> {
    let mut found = false;
    edit_friends(path, |r| {
        if r.key == friend.key {
            found = true;
            Some(friend.to_string())
        } else {
            Some(r.to_string())
        }
    })?;
    if !found {
        append_friend(path, friend)?;
    }
    Ok(())
}

/// Drops the friend with `key` from the friends file; whether it was there.
pub fn remove_friend(path: &Path, key: &PublicKey) -> Result<bool, DataDirError> {
    let mut found = false;
    edit_friends(path, |r| {
        if &r.key == key {
            found = true;
            None
        } else {
            Some(r.to_string())
        }
    })?;
    Ok(found)
}

/// Reads `DIR/friends.seen`: when a link to each friend was last up, one `KEY UNIXSECS`
/// line each (written at every clean stop). Missing: nothing known. A line that does not
/// parse is skipped: this is status, not state a node needs to run.
pub fn load_seen(path: &Path) -> Result<std::collections::HashMap<PublicKey, u64>, DataDirError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(io(path)(e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let (key, t) = l.trim().split_once(' ')?;
            let key: [u8; 32] = URL_SAFE_NO_PAD.decode(key).ok()?.try_into().ok()?;
            Some((PublicKey(key), t.parse().ok()?))
        })
        .collect())
}

/// Writes `DIR/friends.seen` (see [`load_seen`]).
pub fn save_seen(path: &Path, seen: &[(PublicKey, u64)]) -> Result<(), DataDirError> {
    let text: String = seen.iter().map(|(k, t)| format!("{} {t}\n", k.to_base64())).collect();
    write_private(path, text.as_bytes())
}

/// The addresses this node last signed, and the sequence number it signed them with:
/// `DIR/advertised.toml`. Kept so a restart with the same addresses keeps the sequence
/// (friends then see the same record, not a new one) and a restart with new ones bumps it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvertisedFile {
    seq: u64,
    addresses: Vec<String>,
}

/// The sequence number to sign `addresses` with: the stored one if they are what was
/// signed last, else the larger of one more and `now` (Unix seconds), saved before it is
/// used so a crash never reuses a sequence number for other addresses. Starting from the
/// clock rather than 1 means a node that lost this file (but kept its key) still signs
/// records its friends take, since theirs came from an earlier second; one more than the
/// stored number keeps it rising if the clock goes back.
pub fn advertised_seq(path: &Path, addresses: &[PeerAddr], now: u64) -> Result<u64, DataDirError> {
    let texts: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    let damaged = |what: String| DataDirError::Damaged { path: path.display().to_string(), what };
    let seq = match std::fs::read_to_string(path) {
        Ok(text) => {
            let f: AdvertisedFile = toml::from_str(&text).map_err(|e| damaged(e.to_string()))?;
            if f.addresses == texts {
                return Ok(f.seq);
            }
            f.seq.checked_add(1).ok_or_else(|| damaged("sequence number exhausted".into()))?.max(now)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => now.max(1),
        Err(e) => return Err(io(path)(e)),
    };
    let body = toml::to_string(&AdvertisedFile { seq, addresses: texts }).map_err(|e| damaged(e.to_string()))?;
    write_private(path, body.as_bytes())?;
    Ok(seq)
}

/// Routing state that survives restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// The node's location (it changes when swapping moves it).
    pub location: u64,
    /// Swaps the node has started (`NodeConfig::swap_age`), so a restart does not make
    /// it swap hot again.
    pub swap_age: u32,
}

impl NodeState {
    /// The location as a [`Location`].
    pub fn location(&self) -> Location {
        Location(self.location)
    }
}

/// The state file's form: TOML integers are signed 64-bit, so the u64s are hex strings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    location: String,
    /// Written before 2026-12 (the RNG seed, then persisted): read and ignored. The RNG is
    /// now seeded from the OS at every start and the link coins have `link.secret`.
    #[serde(default, skip_serializing)]
    #[allow(dead_code)]
    seed: Option<String>,
    /// Absent in files written before swap ages existed: such a node counts as new.
    #[serde(default)]
    swap_age: u32,
}

/// Loads the routing state, drawing a fresh random one if there is none.
pub fn load_or_create_state(path: &Path) -> Result<NodeState, DataDirError> {
    let damaged = |what: String| DataDirError::Damaged { path: path.display().to_string(), what };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let f: StateFile = toml::from_str(&text).map_err(|e| damaged(e.to_string()))?;
            let hex = |s: &str| u64::from_str_radix(s, 16).map_err(|_| damaged(format!("{s:?} is not a hex number")));
            Ok(NodeState { location: hex(&f.location)?, swap_age: f.swap_age })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut rng = rand::rngs::OsRng;
            let state = NodeState { location: rng.next_u64(), swap_age: 0 };
            save_state(path, &state)?;
            Ok(state)
        }
        Err(e) => Err(io(path)(e)),
    }
}

/// Saves the routing state.
pub fn save_state(path: &Path, state: &NodeState) -> Result<(), DataDirError> {
    let text = format!("location = \"{:016x}\"\nswap_age = {}\n", state.location, state.swap_age);
    write_private(path, text.as_bytes())
}

/// Loads the secret behind the node's HTL coins (`NodeConfig::link_secret`), drawing it
/// from the OS and saving it (0600) the first time. It is created once and never changes:
/// a new secret would redraw every link's coins, and a neighbour that sees both outcomes
/// of its link's coin learns what the coin hides.
pub fn load_or_create_link_secret(path: &Path) -> Result<NodeSecret, DataDirError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let damaged = || DataDirError::Damaged { path: path.display().to_string(), what: "not 32 bytes".into() };
            let mut bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| damaged())?;
            let secret = <[u8; 32]>::try_from(&bytes[..]).map(NodeSecret::new).map_err(|_| damaged());
            bytes.zeroize();
            secret
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let secret = NodeSecret::new(b);
            b.zeroize();
            let mut text = URL_SAFE_NO_PAD.encode(secret.expose());
            let written = write_private(path, text.as_bytes());
            text.zeroize();
            written.map(|()| secret)
        }
        Err(e) => Err(io(path)(e)),
    }
}

/// Loads the API token, creating a random one if there is none.
pub fn load_or_create_token(path: &Path) -> Result<String, DataDirError> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().len() >= 32 => Ok(t.trim().to_owned()),
        Ok(_) => Err(DataDirError::Damaged { path: path.display().to_string(), what: "token too short".into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let token: String = b.iter().map(|x| format!("{x:02x}")).collect();
            write_private(path, token.as_bytes())?;
            Ok(token)
        }
        Err(e) => Err(io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friends_are_replaced_and_removed_in_place_keeping_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("friends");
        let a = StaticKeypair::generate().unwrap();
        let b = StaticKeypair::generate().unwrap();
        let ra = NodeRef::v1("127.0.0.1:1".parse().unwrap(), *a.public());
        let rb = NodeRef::v1("127.0.0.1:2".parse().unwrap(), *b.public());
        std::fs::write(&p, format!("# my friends\n{ra}\n\n{rb}\n")).unwrap();
        let moved = NodeRef::signed(&a, vec!["10.231.0.3:1".parse().unwrap()], 2).unwrap();
        replace_friend(&p, &moved).unwrap();
        assert_eq!(load_friends(&p).unwrap(), vec![moved.clone(), rb.clone()]);
        assert!(std::fs::read_to_string(&p).unwrap().starts_with("# my friends\n"));
        assert!(remove_friend(&p, &rb.key).unwrap());
        assert!(!remove_friend(&p, &rb.key).unwrap(), "gone already");
        assert_eq!(load_friends(&p).unwrap(), vec![moved]);
        // Replacing a friend not in the file appends it.
        replace_friend(&p, &rb).unwrap();
        assert_eq!(load_friends(&p).unwrap().len(), 2);
    }

    #[test]
    fn last_seen_times_round_trip_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("friends.seen");
        assert!(load_seen(&p).unwrap().is_empty());
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        save_seen(&p, &[(a, 100), (b, u64::MAX)]).unwrap();
        let seen = load_seen(&p).unwrap();
        assert_eq!((seen[&a], seen[&b]), (100, u64::MAX));
        std::fs::write(&p, format!("garbage\n{} x\n{} 7\n", a.to_base64(), b.to_base64())).unwrap();
        assert_eq!(load_seen(&p).unwrap().into_iter().collect::<Vec<_>>(), vec![(b, 7)]);
    }

    #[test]
    fn the_advertised_sequence_moves_only_when_the_addresses_do() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("advertised.toml");
        let a: Vec<PeerAddr> = vec!["10.231.0.1:4000".parse().unwrap()];
        let b: Vec<PeerAddr> = vec!["10.231.0.2:4000".parse().unwrap(), "n.example.org:4000".parse().unwrap()];
        assert_eq!(advertised_seq(&p, &a, 1000).unwrap(), 1000, "the first record starts at the clock");
        assert_eq!(advertised_seq(&p, &a, 2000).unwrap(), 1000, "same addresses, same record");
        assert_eq!(advertised_seq(&p, &b, 1000).unwrap(), 1001, "the clock went back: one more");
        assert_eq!(advertised_seq(&p, &a, 5000).unwrap(), 5000, "going back is a change too");
        // The file lost: the clock still puts the new record above what friends hold.
        std::fs::remove_file(&p).unwrap();
        assert_eq!(advertised_seq(&p, &b, 6000).unwrap(), 6000);
        assert_eq!(advertised_seq(&dir.path().join("other"), &a, 0).unwrap(), 1, "never 0");
        std::fs::write(&p, "seq = \"x\"\n").unwrap();
        assert!(matches!(advertised_seq(&p, &a, 1), Err(DataDirError::Damaged { .. })));
    }

    #[test]
    fn state_round_trips_full_u64_range() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.toml");
        let s = NodeState { location: u64::MAX - 1, swap_age: u32::MAX };
        save_state(&p, &s).unwrap();
        assert_eq!(load_or_create_state(&p).unwrap(), s);
        assert!(!std::fs::read_to_string(&p).unwrap().contains("seed"), "no seed is persisted any more");
        // A file from before swap ages, with the RNG seed then persisted: the node counts as
        // new and the seed is ignored.
        std::fs::write(&p, "location = \"05\"\nseed = \"07\"\n").unwrap();
        assert_eq!(load_or_create_state(&p).unwrap(), NodeState { location: 5, swap_age: 0 });
        std::fs::write(&p, "location = \"05\"\nseed = \"07\"\nswap_age = 3\n").unwrap();
        assert_eq!(load_or_create_state(&p).unwrap(), NodeState { location: 5, swap_age: 3 });
        std::fs::write(&p, "location = 5\n").unwrap();
        assert!(matches!(load_or_create_state(&p), Err(DataDirError::Damaged { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_loose_directory_and_its_secret_files_are_tightened_at_start() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("node");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.join("store")).unwrap();
        for f in ["friends", "store/store.header"] {
            std::fs::write(dir.join(f), b"# planted 0644\n").unwrap();
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        // Init on the pre-existing 0755 directory: the daemon's start path.
        crate::daemon::init(&dir, None).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for f in SECRET_FILES {
            if dir.join(f).exists() {
                assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
            }
        }
        // Nothing left to tighten the second time.
        assert!(secure_dir(&dir).unwrap().is_empty());
    }

    #[test]
    fn link_secret_is_created_once_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("link.secret");
        let a = load_or_create_link_secret(&p).unwrap();
        assert_eq!(load_or_create_link_secret(&p).unwrap(), a, "created once, then kept");
        assert_ne!(a.expose(), &[0; 32]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let other = load_or_create_link_secret(&dir.path().join("other")).unwrap();
        assert_ne!(other, a, "drawn from the OS");
        std::fs::write(&p, "c2hvcnQ\n").unwrap();
        assert!(matches!(load_or_create_link_secret(&p), Err(DataDirError::Damaged { .. })));
    }

    #[test]
    fn keypair_persists_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("identity.key");
        let a = load_or_create_keypair(&p).unwrap();
        let b = load_or_create_keypair(&p).unwrap();
        assert_eq!(a.public(), b.public());
        std::fs::write(&p, "secret: !!\npublic: x\n").unwrap();
        assert!(load_or_create_keypair(&p).unwrap_err().to_string().contains("damaged"));
        // Halves from two different key files: refused, naming the mismatch.
        let other = StaticKeypair::generate().unwrap();
        let spliced = format!(
            "secret: {}\npublic: {}\n",
            URL_SAFE_NO_PAD.encode(a.expose_secret()),
            URL_SAFE_NO_PAD.encode(other.public().as_bytes())
        );
        std::fs::write(&p, spliced).unwrap();
        let e = load_or_create_keypair(&p).unwrap_err().to_string();
        assert!(e.contains("public does not belong to secret"), "{e}");
    }
}
