//! A file lock (`flock`) that is released explicitly when its guard drops, on every path.
//!
//! Closing the file is not enough: a process that another thread is starting holds a copy
//! of every descriptor from its fork until its exec closes them, and a lock is released
//! only when the last copy closes. So a lock dropped at that moment stayed held for a
//! while and a reopen at once failed (seen in CI twice: a store dropped normally, then a
//! store whose open returned an error after taking the lock). Unlocking releases it for
//! every copy. The store's directory lock and the daemon's `daemon.lock` both use this.

use std::fs::File;
use std::io;

/// A held lock on an open file; unlocked when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Someone else holds it (a conflicting lock).
    Held,
    /// The lock call itself failed.
    Io(io::Error),
}

impl FileLock {
    /// Takes an exclusive lock on `file`, or says it is held.
    pub fn exclusive(file: File) -> Result<Self, LockError> {
        Self::take(file.try_lock(), file)
    }

    /// Takes a shared lock on `file` (readers), or says an exclusive one is held.
    pub fn shared(file: File) -> Result<Self, LockError> {
        Self::take(file.try_lock_shared(), file)
    }

    fn take(result: Result<(), std::fs::TryLockError>, file: File) -> Result<Self, LockError> {
        match result {
            Ok(()) => Ok(Self { file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held),
            Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(e)),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Err(e) = self.file.unlock() {
            tracing::warn!(error = %e, "cannot release a file lock");
        }
    }
}
