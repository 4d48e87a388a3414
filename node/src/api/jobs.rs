//! Long-running client operations (inserts and fetches) started through the API.
//!
//! An operation runs as a task inside the daemon, so it survives the CLI that started it
//! being interrupted; the CLI polls its progress and downloads the result when done.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::node::Failure;

/// Identifies a job to the API.
pub type JobId = u64;

/// What a job is doing, as the API reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Blocks done.
    pub done: u64,
    /// Blocks needed in all (0 while unknown).
    pub total: u64,
    /// Blocks that could not be found (fetches).
    pub failed: u64,
}

/// The outcome of a job. This is where a [`Failure`] is serialised, once: its `kind`
/// and details sit beside `state` and `error`; clients deserialise it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
        /// What went wrong, in words.
        error: String,
        /// The kind (serialised as `kind`, a stable string) and its details.
        #[serde(flatten)]
        failure: Failure,
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
#[derive(Debug)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<HashMap<JobId, Job>>,
    /// How long a finished job is kept ([`JOB_TTL`]).
    ttl: std::time::Duration,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::with_ttl(JOB_TTL)
    }
}

impl Jobs {
    /// No jobs yet; finished ones are kept for `ttl`.
    pub fn with_ttl(ttl: std::time::Duration) -> Self {
        Self { next: AtomicU64::new(0), jobs: Mutex::new(HashMap::new()), ttl }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Job>> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new running job (and forgets jobs that ended more than the TTL ago).
    pub fn create(self: &Arc<Self>) -> JobId {
        self.create_keyed(None).0
    }

    /// Registers a new running job unless a running job already has `key` (a fetch of the
    /// same document): then returns that job and `false`.
    pub fn create_keyed(self: &Arc<Self>, key: Option<String>) -> (JobId, bool) {
        let mut jobs = self.lock();
        let ttl = self.ttl;
        jobs.retain(|_, j| j.finished.is_none_or(|t| t.elapsed() < ttl));
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn done(size: u64) -> JobStatus {
        JobStatus::Done { uri: "CHK@x".into(), size, name: None, mime: None, edition: None, requests: 1, not_found: 0 }
    }

    #[test]
    fn a_job_runs_progresses_and_finishes_once() {
        let jobs = Arc::new(Jobs::default());
        let a = jobs.create();
        let b = jobs.create();
        assert_ne!(a, b);
        assert_eq!(jobs.get(a), Some((JobProgress::default(), JobStatus::Running)));
        let p = JobProgress { done: 3, total: 10, failed: 1 };
        jobs.progress(a, p.clone());
        assert_eq!(jobs.get(a), Some((p.clone(), JobStatus::Running)));
        jobs.finish(a, done(7), Some(vec![1, 2, 3]));
        // A second end (the panic watcher after a normal end) changes nothing.
        jobs.finish(a, JobStatus::Failed { error: "x".into(), failure: Failure::Internal }, None);
        assert_eq!(jobs.get(a), Some((p, done(7))));
        assert_eq!(jobs.take_data(a), Some(vec![1, 2, 3]));
        assert_eq!(jobs.get(a), None, "a downloaded job is forgotten");
        assert_eq!(jobs.take_data(b), None, "a running job has nothing to download");
        assert!(jobs.get(b).is_some());
        assert_eq!(jobs.get(999), None);
    }

    #[test]
    fn one_running_fetch_per_key() {
        let jobs = Arc::new(Jobs::default());
        let (a, new) = jobs.create_keyed(Some("doc".into()));
        assert!(new);
        assert_eq!(jobs.create_keyed(Some("doc".into())), (a, false), "a second fetch joins the first");
        let (other, new) = jobs.create_keyed(Some("other".into()));
        assert!(new && other != a);
        jobs.finish(a, done(1), None);
        let (again, new) = jobs.create_keyed(Some("doc".into()));
        assert!(new && again != a, "after the first ends, the key starts a new job");
    }

    #[test]
    fn finished_jobs_expire_running_ones_do_not() {
        let jobs = Arc::new(Jobs::with_ttl(Duration::from_millis(20)));
        let finished = jobs.create();
        let running = jobs.create();
        jobs.finish(finished, done(1), Some(vec![9]));
        jobs.create();
        assert!(jobs.get(finished).is_some(), "kept within the TTL");
        std::thread::sleep(Duration::from_millis(40));
        jobs.create();
        assert_eq!(jobs.get(finished), None, "forgotten after the TTL, document and all");
        assert_eq!(jobs.get(running), Some((JobProgress::default(), JobStatus::Running)));
    }

    #[test]
    fn a_failed_status_serialises_its_kind_once_and_reads_back() {
        let status = JobStatus::Failed {
            error: "the document could not be fetched: timed out".into(),
            failure: Failure::TimedOut { htl_left: Some(5), peers_tried: 2 },
        };
        let v = serde_json::to_value(&status).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "state": "failed", "error": "the document could not be fetched: timed out",
                                "kind": "timed_out", "htl_left": 5, "peers_tried": 2 })
        );
        assert_eq!(serde_json::from_value::<JobStatus>(v).unwrap(), status);
        let v = serde_json::to_value(done(4)).unwrap();
        assert_eq!(v["state"], "done");
        assert_eq!(serde_json::from_value::<JobStatus>(v).unwrap(), done(4));
    }
}
