//! Long-running client operations (inserts and fetches) started through the API.
//!
//! An operation runs as a task inside the daemon, so it survives the CLI that started it
//! being interrupted; the CLI polls its progress and downloads the result when done.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// Identifies a job to the API.
pub type JobId = u64;

/// What a job is doing, as the API reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobProgress {
    /// Blocks done.
    pub done: u64,
    /// Blocks needed in all (0 while unknown).
    pub total: u64,
    /// Blocks that could not be found (fetches).
    pub failed: u64,
}

/// The outcome of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobStatus {
    /// Still working.
    Running,
    /// Finished.
    Done {
        /// The URI inserted (inserts) or fetched (fetches).
        uri: String,
        /// Document size in bytes.
        size: u64,
        /// File name recorded by the publisher (fetches).
        name: Option<String>,
        /// MIME type recorded by the publisher (fetches).
        mime: Option<String>,
        /// Edition fetched or inserted (USKs).
        edition: Option<u64>,
        /// Block requests sent to the network.
        requests: u64,
        /// Of those, blocks the network could not find (FEC filled in; fetches).
        not_found: u64,
    },
    /// Failed; the message is for the person who started it.
    Failed {
        /// What went wrong and, where it helps, what to do.
        error: String,
        /// A stable machine-readable kind (`not_found`, `collision`, `bad_input`, `internal`).
        kind: &'static str,
    },
}

#[derive(Debug)]
struct Job {
    progress: JobProgress,
    status: JobStatus,
    /// The fetched document, until it is downloaded.
    data: Option<Vec<u8>>,
    /// When it ended, for expiry.
    finished: Option<std::time::Instant>,
    /// The key of a running fetch (one job per document at a time).
    fetch_key: Option<String>,
}

/// How long a finished job (and a document nobody downloaded) is kept.
pub const JOB_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// All jobs of a daemon.
#[derive(Debug, Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<HashMap<JobId, Job>>,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Job>> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new running job (and forgets jobs that ended more than [`JOB_TTL`] ago).
    pub fn create(self: &Arc<Self>) -> JobId {
        self.create_keyed(None).0
    }

    /// Registers a new running job unless a running job already has `key` (a fetch of the
    /// same document): then returns that job and `false`.
    pub fn create_keyed(self: &Arc<Self>, key: Option<String>) -> (JobId, bool) {
        let mut jobs = self.lock();
        jobs.retain(|_, j| j.finished.is_none_or(|t| t.elapsed() < JOB_TTL));
        if let Some(k) = &key {
            if let Some((id, _)) = jobs.iter().find(|(_, j)| j.finished.is_none() && j.fetch_key.as_ref() == Some(k)) {
                return (*id, false);
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Job {
            progress: JobProgress::default(),
            status: JobStatus::Running,
            data: None,
            finished: None,
            fetch_key: key,
        };
        jobs.insert(id, job);
        (id, true)
    }

    /// Updates a job's progress.
    pub fn progress(&self, id: JobId, progress: JobProgress) {
        if let Some(j) = self.lock().get_mut(&id) {
            j.progress = progress;
        }
    }

    /// Ends a job.
    pub fn finish(&self, id: JobId, status: JobStatus, data: Option<Vec<u8>>) {
        if let Some(j) = self.lock().get_mut(&id) {
            if j.finished.is_none() {
                j.status = status;
                j.data = data;
                j.finished = Some(std::time::Instant::now());
            }
        }
    }

    /// A job's progress and status.
    pub fn get(&self, id: JobId) -> Option<(JobProgress, JobStatus)> {
        self.lock().get(&id).map(|j| (j.progress.clone(), j.status.clone()))
    }

    /// Takes a finished fetch's document (once) and forgets the job.
    pub fn take_data(&self, id: JobId) -> Option<Vec<u8>> {
        let mut jobs = self.lock();
        let data = jobs.get_mut(&id)?.data.take();
        if data.is_some() {
            jobs.remove(&id);
        }
        data
    }
}
