//! The store header file (`store.header`): format version and the store secret.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "PAMSTORE"
//!      8     4  format version, u32 little-endian (this build writes and reads 2)
//!     12     4  reserved, zero
//!     16    32  store secret (random at creation; salt and MAC key derive from it)
//!     48    32  SHA-256 of bytes 0..48
//!     80        total
//! ```
//!
//! Written once, at creation, through a temporary file, fsync and rename, so a crash
//! during creation leaves either no header or a whole one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::DiskError;

/// The header file's name inside the data directory.
pub(crate) const HEADER_FILE: &str = "store.header";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;

const MAGIC: &[u8; 8] = b"PAMSTORE";
const LEN: usize = 80;

/// Reads and checks the header; returns the store secret.
pub(crate) fn read(dir: &Path) -> Result<Option<Zeroizing<[u8; 32]>>, DiskError> {
    let path = dir.join(HEADER_FILE);
    let mut bytes = Zeroizing::new(Vec::with_capacity(LEN));
    match File::open(&path) {
        Ok(mut f) => f.read_to_end(&mut bytes).map_err(|e| DiskError::io(&path, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DiskError::io(&path, e)),
    };
    let bad = |reason| DiskError::BadHeader { path: path.clone(), reason };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(bad("not a pamphlet store header"));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    let found = u32::from_le_bytes(v);
    // The version is checked before the length and checksum: a newer format may lay the
    // rest out differently, and "upgrade" is the useful message then.
    if found > FORMAT_VERSION {
        return Err(DiskError::NewerFormat { path, found, supported: FORMAT_VERSION });
    }
    // Version 1 put each header in front of its body (a pre-release layout, never in a
    // release): reading it as version 2 would silently see an empty store.
    if found < FORMAT_VERSION {
        return Err(bad("an older, pre-release format version; move it aside and start a new store"));
    }
    if bytes.len() != LEN {
        return Err(bad("wrong length"));
    }
    if Sha256::digest(&bytes[..48]).as_slice() != &bytes[48..80] {
        return Err(bad("checksum mismatch"));
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes[16..48]);
    Ok(Some(secret))
}

/// Creates the header with `secret`, durably (temp file, fsync, rename, fsync directory).
pub(crate) fn create(dir: &Path, secret: &[u8; 32]) -> Result<(), DiskError> {
    let path = dir.join(HEADER_FILE);
    let tmp = dir.join("store.header.tmp");
    let mut bytes = Zeroizing::new([0u8; LEN]);
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes[16..48].copy_from_slice(secret);
    let sum = Sha256::digest(&bytes[..48]);
    bytes[48..80].copy_from_slice(&sum);
    // The secret is in this file: owner-only whatever the umask, and a leftover (or
    // planted) temp file is removed rather than written through.
    let _ = fs::remove_file(&tmp);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(|e| DiskError::io(&tmp, e))?;
    f.write_all(bytes.as_slice()).and_then(|()| f.sync_all()).map_err(|e| DiskError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| DiskError::io(&path, e))?;
    sync_dir(dir)
}

/// Makes a directory's entries (new or renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DiskError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| DiskError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage_and_newer_versions() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        create(dir.path(), &[9; 32]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(HEADER_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the store secret is readable by others");
        }
        assert_eq!(*read(dir.path()).unwrap().unwrap(), [9; 32]);

        let path = dir.path().join(HEADER_FILE);
        let good = fs::read(&path).unwrap();
        let mut damaged = good.clone();
        damaged[20] ^= 1;
        fs::write(&path, &damaged).unwrap();
        assert!(matches!(read(dir.path()), Err(DiskError::BadHeader { reason: "checksum mismatch", .. })));

        let mut newer = good.clone();
        newer[8..12].copy_from_slice(&3u32.to_le_bytes());
        newer.truncate(40); // a newer layout may differ entirely
        fs::write(&path, &newer).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, DiskError::NewerFormat { found: 3, supported: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("upgrade"));

        let mut older = good.clone();
        older[8..12].copy_from_slice(&1u32.to_le_bytes());
        fs::write(&path, &older).unwrap();
        assert!(matches!(read(dir.path()), Err(DiskError::BadHeader { .. })), "version 1 is refused, not misread");

        fs::write(&path, b"not a header at all").unwrap();
        assert!(matches!(read(dir.path()), Err(DiskError::BadHeader { .. })));
    }
}
