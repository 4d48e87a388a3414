//! What can go wrong with the on-disk store, precisely enough to tell the operator what to do.

use std::io;
use std::path::{Path, PathBuf};

/// A failure of the on-disk store, carried by [`crate::store::StoreError::Disk`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// `store_bytes` was lowered below what the store area holds, and dropping blocks was
    /// not allowed ([`super::DiskStoreConfig::shrink_store`]).
    #[error(
        "the configured store size is smaller than the store in {dir}: {blocks} stored blocks would be dropped \
         (the store files take {held_bytes} bytes)"
    )]
    ShrinkRefused {
        /// The store directory.
        dir: PathBuf,
        /// Blocks of the store area that would be dropped.
        blocks: u64,
        /// Bytes the store area's files take now.
        held_bytes: u64,
    },
    /// Another process (another node) holds the data directory's lock.
    #[error(
        "the data directory {dir} is in use by another pamphlet process; stop that node or choose another directory"
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// The store was written by a newer pamphlet whose format this version cannot read.
    #[error("the store at {path} has format version {found}, this pamphlet reads up to {supported}; upgrade pamphlet")]
    NewerFormat {
        /// The header file.
        path: PathBuf,
        /// The version found on disk.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The header file is not a pamphlet store header, or is damaged.
    #[error("the store header {path} is unusable ({reason}); the slots cannot be read without it")]
    BadHeader {
        /// The header file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Slot files exist but the header that holds the store's secret does not.
    #[error("the store in {dir} has slot files but no header file; refusing to overwrite it")]
    MissingHeader {
        /// The data directory.
        dir: PathBuf,
    },
    /// The disk (or quota) is full.
    #[error("no space left for the store at {path}; free space or lower the store size")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// The operating system refused access.
    #[error("permission denied on {path}; check the owner and mode of the data directory")]
    PermissionDenied {
        /// The file or directory.
        path: PathBuf,
    },
    /// The store is open read-only (by request, or because the disk refused writes); it
    /// still serves what it holds.
    #[error("the store in {dir} is read-only; it serves what it holds but accepts no new blocks")]
    ReadOnly {
        /// The data directory.
        dir: PathBuf,
    },
    /// Any other I/O failure.
    #[error("store I/O on {path} failed: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl DiskError {
    /// Classifies an I/O error on `path` into the variant that tells the operator what to do.
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => DiskError::DiskFull { path },
            io::ErrorKind::PermissionDenied => DiskError::PermissionDenied { path },
            io::ErrorKind::ReadOnlyFilesystem => {
                DiskError::ReadOnly { dir: path.parent().map(Path::to_path_buf).unwrap_or(path) }
            }
            _ => DiskError::Io { path, source },
        }
    }

    /// Whether this error means "writing is impossible here", after which the store can
    /// still be opened read-only and serve what it holds.
    pub(crate) fn is_write_refused(&self) -> bool {
        matches!(self, DiskError::PermissionDenied { .. } | DiskError::ReadOnly { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified() {
        let p = Path::new("/data/store-chk.slots");
        let full = DiskError::io(p, io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(full, DiskError::DiskFull { .. }), "{full:?}");
        assert!(full.to_string().contains("no space left"));
        let denied = DiskError::io(p, io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(denied.is_write_refused());
        let ro = DiskError::io(p, io::Error::from(io::ErrorKind::ReadOnlyFilesystem));
        assert!(matches!(&ro, DiskError::ReadOnly { dir } if dir == Path::new("/data")), "{ro:?}");
        let other = DiskError::io(p, io::Error::other("boom"));
        assert!(matches!(other, DiskError::Io { .. }) && !other.is_write_refused());
    }
}
