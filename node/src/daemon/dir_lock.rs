//! `DIR/daemon.lock`: one running node per data directory.
//!
//! The lock is an advisory `flock` on the file, taken at start and released when the
//! [`DirLock`] drops: explicitly, by `store::disk::lock::FileLock`, not by closing the
//! file (a process that another thread is starting holds a copy of the descriptor from
//! its fork to its exec; a node stopped then would keep its directory locked for a while,
//! and a restart at once would be refused as "in use").

use std::fs::File;
use std::io;
use std::path::Path;

use crate::store::disk::lock::{self, FileLock};

/// The held lock of a data directory.
#[derive(Debug)]
pub(crate) struct DirLock {
    _lock: FileLock,
}

/// Why the directory could not be locked.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process (or another daemon in this one) holds it.
    InUse,
    /// The lock file could not be created.
    Io(io::Error),
}

impl DirLock {
    /// Takes the lock of `dir` (creating `dir/daemon.lock`), or says it is held.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LockError> {
        let file = File::create(dir.join("daemon.lock")).map_err(LockError::Io)?;
        match FileLock::exclusive(file) {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err(lock::LockError::Held) => Err(LockError::InUse),
            Err(lock::LockError::Io(e)) => Err(LockError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DirLock::acquire(dir.path()), Err(LockError::InUse)));
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }

    /// Fails without the explicit unlock in `Drop` (a process started by the other thread
    /// between fork and exec keeps the lock held after the file is closed).
    #[test]
    fn a_lock_dropped_while_processes_start_can_be_taken_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicU32::new(0));
        let starter = {
            let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    Command::new("true").stdin(Stdio::null()).status().unwrap();
                    started.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Retake the lock for as long as it takes the other thread to start 300 processes
        // (a round is microseconds, a process a millisecond: many rounds fall in a fork).
        let mut failed = None;
        let mut rounds = 0u64;
        while started.load(Ordering::Relaxed) < 300 && rounds < 50_000_000 {
            rounds += 1;
            match DirLock::acquire(dir.path()) {
                Ok(lock) => drop(lock),
                Err(e) => {
                    failed = Some((rounds, e));
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        starter.join().unwrap();
        let started = started.load(Ordering::Relaxed);
        assert!(failed.is_none(), "a retake failed while {started} processes started: {failed:?}");
        assert!(started >= 300, "only {started} processes started in {rounds} rounds");
    }
}
