//! Long-running client operations (inserts and fetches) started through the API.
//!
//! An operation runs as a task inside the daemon, so it survives the CLI that started it
//! being interrupted; the CLI polls its progress and downloads the result when done.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    /// Requests sent again for blocks (or USK editions) whose earlier request timed out or
    /// found no route: a count that climbs while the network routes around a bad peer.
    #[serde(default)]
    pub retries: u64,
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
        /// Of the requests, those sent again after a timeout or "no route".
        #[serde(default)]
        retries: u64,
        /// USK fetches: an edition above the one fetched never answered, so a newer one may
        /// exist (the document is the newest found, not surely the latest).
        #[serde(default)]
        may_be_stale: bool,
        /// Inserts: blocks that a sink on their route could not keep for good (its store
        /// area full, or its cache only): the document may not last (issue 15).
        #[serde(default)]
        displaced: u64,
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
    finished: Option<Instant>,
    /// The key of a running fetch (one job per document at a time).
    fetch_key: Option<String>,
}

/// How long a finished job (and a document nobody downloaded) is kept.
pub const JOB_TTL: Duration = Duration::from_secs(15 * 60);

/// The most bytes of finished fetches' documents kept for download at once. A document
/// may be up to 1 GiB (`splitfile::MAX_DOCUMENT_BYTES`); without a bound, a few fetches
/// nobody downloads would hold gigabytes for the whole TTL. When a finished document would
/// take the total past this, the oldest finished jobs are forgotten first.
pub const MAX_HELD_BYTES: u64 = 2 << 30;

/// How often the API layer sweeps expired jobs ([`Jobs::expire`]): a finished job lives at
/// most `JOB_TTL` plus this, whether or not any other job is started.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// All jobs of a daemon.
///
/// Expiry is driven from outside, with the time as an argument ([`Jobs::expire`],
/// [`Jobs::finish_at`]): the API layer sweeps every [`SWEEP_INTERVAL`], and tests pass
/// their own instants instead of sleeping.
#[derive(Debug)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<HashMap<JobId, Job>>,
    /// How long a finished job is kept ([`JOB_TTL`]).
    ttl: Duration,
    /// The most document bytes held for download ([`MAX_HELD_BYTES`]).
    max_held: u64,
    /// One lock per document being fetched ([`Jobs::document_lock`]).
    documents: Mutex<HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
    /// Counts jobs ended, so that a poll can wait for one to end ([`Jobs::wait_end`]).
    ended: tokio::sync::watch::Sender<u64>,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::with_limits(JOB_TTL, MAX_HELD_BYTES)
    }
}

impl Jobs {
    /// No jobs yet; finished ones are kept for `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self::with_limits(ttl, MAX_HELD_BYTES)
    }

    /// No jobs yet; finished ones are kept for `ttl`, and their documents up to
    /// `max_held` bytes in all.
    pub fn with_limits(ttl: Duration, max_held: u64) -> Self {
        Self {
            next: AtomicU64::new(0),
            jobs: Mutex::new(HashMap::new()),
            ttl,
            max_held,
            documents: Mutex::default(),
            ended: tokio::sync::watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Job>> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new running job.
    pub fn create(self: &Arc<Self>) -> JobId {
        self.create_keyed(None).0
    }

    /// Registers a new running job unless a running job already has `key` (a fetch of the
    /// same document): then returns that job and `false`.
    pub fn create_keyed(self: &Arc<Self>, key: Option<String>) -> (JobId, bool) {
        let mut jobs = self.lock();
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

    /// The lock of the document whose resume directory is `key`: fetches of two files of
    /// one site (or of a site and its manifest) are different jobs but fetch the same top
    /// document, and must not share its resume directory at the same time. The second
    /// waits for the first's top fetch, then finds its blocks in the node's cache.
    pub fn document_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut docs = self.documents.lock().unwrap_or_else(PoisonError::into_inner);
        docs.retain(|_, w| w.strong_count() > 0);
        if let Some(lock) = docs.get(key).and_then(std::sync::Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        docs.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }

    /// A fetch's progress callback that reports to job `id`.
    pub fn fetch_progress(self: &Arc<Self>, id: JobId) -> impl Fn(crate::client::splitfile::Progress) + Send + Sync {
        let jobs = Arc::clone(self);
        move |p| {
            let progress = JobProgress {
                done: p.blocks_have as u64,
                total: p.blocks_needed as u64,
                failed: p.blocks_failed as u64,
                retries: p.retries as u64,
            };
            jobs.progress(id, progress);
        }
    }

    /// Updates a job's progress.
    pub fn progress(&self, id: JobId, progress: JobProgress) {
        if let Some(j) = self.lock().get_mut(&id) {
            j.progress = progress;
        }
    }

    /// Ends a job now (see [`Jobs::finish_at`]), by tokio's clock, which the sweep
    /// ([`spawn_job_expiry`]) reads too (and tests can pause).
    pub fn finish(&self, id: JobId, status: JobStatus, data: Option<Vec<u8>>) {
        self.finish_at(id, status, data, tokio::time::Instant::now().into_std());
    }

    /// Ends a job at `now`. If its document takes the documents held past the bound, the
    /// oldest finished jobs are forgotten until it fits (this one last: a document larger
    /// than the whole bound is not kept at all).
    pub fn finish_at(&self, id: JobId, status: JobStatus, data: Option<Vec<u8>>, now: Instant) {
        let mut jobs = self.lock();
        let Some(j) = jobs.get_mut(&id) else { return };
        if j.finished.is_some() {
            return;
        }
        j.status = status;
        j.data = data;
        j.finished = Some(now);
        self.ended.send_modify(|n| *n += 1);
        let held = |jobs: &HashMap<JobId, Job>| {
            jobs.values().filter_map(|j| j.data.as_ref()).map(|d| d.len() as u64).sum::<u64>()
        };
        while held(&jobs) > self.max_held {
            let oldest = jobs
                .iter()
                .filter(|(_, j)| j.data.is_some())
                .filter_map(|(i, j)| j.finished.map(|t| (*i == id, t, *i)))
                .min()
                .map(|(_, _, i)| i);
            let Some(oldest) = oldest else { break };
            tracing::info!(job = oldest, "a finished fetch nobody downloaded is dropped to bound memory");
            jobs.remove(&oldest);
        }
    }

    /// Forgets every job that finished more than the TTL before `now`, with its document.
    /// The API layer calls it every [`SWEEP_INTERVAL`]; returns how many were forgotten.
    pub fn expire(&self, now: Instant) -> usize {
        let mut jobs = self.lock();
        let before = jobs.len();
        let ttl = self.ttl;
        jobs.retain(|_, j| j.finished.is_none_or(|t| now.saturating_duration_since(t) < ttl));
        before - jobs.len()
    }

    /// Waits until job `id` is no longer running, or `most` has passed (a long poll: the
    /// client learns of the end at once instead of at its next poll).
    pub async fn wait_end(&self, id: JobId, most: Duration) {
        let mut ended = self.ended.subscribe();
        let running = |jobs: &Self| jobs.lock().get(&id).is_some_and(|j| j.finished.is_none());
        let _ = tokio::time::timeout(most, async {
            // Marked seen before the check: an end after the check wakes `changed`.
            ended.borrow_and_update();
            while running(self) {
                if ended.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
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

/// Sweeps expired jobs every [`SWEEP_INTERVAL`] until the jobs are dropped (the API
/// is gone) or `shutdown` turns true: finished jobs and their documents go after their TTL
/// whether or not anyone starts another job.
pub fn spawn_job_expiry(
    jobs: &Arc<Jobs>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let jobs: std::sync::Weak<Jobs> = Arc::downgrade(jobs);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let Some(jobs) = jobs.upgrade() else { return };
            // Tokio's clock (the real one, or a test's paused one): `Jobs::finish` reads it too.
            let gone = jobs.expire(tokio::time::Instant::now().into_std());
            if gone > 0 {
                tracing::debug!(jobs = gone, "finished jobs expired");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(size: u64) -> JobStatus {
        JobStatus::Done {
            uri: "CHK@x".into(),
            size,
            name: None,
            mime: None,
            edition: None,
            requests: 1,
            not_found: 0,
            retries: 0,
            may_be_stale: false,
            displaced: 0,
        }
    }

    #[test]
    fn a_job_runs_progresses_and_finishes_once() {
        let jobs = Arc::new(Jobs::default());
        let a = jobs.create();
        let b = jobs.create();
        assert_ne!(a, b);
        assert_eq!(jobs.get(a), Some((JobProgress::default(), JobStatus::Running)));
        let p = JobProgress { done: 3, total: 10, failed: 1, retries: 2 };
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

    /// A long poll answers when the job ends, not when its wait runs out (the clock is
    /// tokio's paused one: without the wake-up it would jump to the 30 s limit).
    #[tokio::test(start_paused = true)]
    async fn a_long_poll_ends_with_the_job() {
        let jobs = Arc::new(Jobs::default());
        let id = jobs.create();
        let start = tokio::time::Instant::now();
        let waiter = tokio::spawn({
            let jobs = Arc::clone(&jobs);
            async move { jobs.wait_end(id, Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        jobs.finish(id, done(1), None);
        waiter.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2), "woken by the end, at once");
        // An ended or unknown job does not wait at all.
        jobs.wait_end(id, Duration::from_secs(30)).await;
        jobs.wait_end(999, Duration::from_secs(30)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        // A running one waits its whole limit.
        let other = jobs.create();
        jobs.wait_end(other, Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(7));
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

    /// Expiry is driven by the sweep's `now`, not by the next job: before, a finished job
    /// (and up to 1 GiB of document) was only forgotten when another job was created.
    #[test]
    fn finished_jobs_expire_without_a_new_job_running_ones_do_not() {
        let jobs = Arc::new(Jobs::with_ttl(Duration::from_secs(60)));
        let t0 = Instant::now();
        let finished = jobs.create();
        let running = jobs.create();
        jobs.finish_at(finished, done(1), Some(vec![9]), t0);
        assert_eq!(jobs.expire(t0 + Duration::from_secs(59)), 0);
        assert!(jobs.get(finished).is_some(), "kept within the TTL");
        assert_eq!(jobs.expire(t0 + Duration::from_secs(60)), 1);
        assert_eq!(jobs.get(finished), None, "forgotten after the TTL, document and all");
        assert_eq!(jobs.take_data(finished), None);
        assert_eq!(jobs.expire(t0 + Duration::from_secs(3600)), 0);
        assert_eq!(jobs.get(running), Some((JobProgress::default(), JobStatus::Running)));
    }

    #[test]
    fn documents_held_for_download_are_bounded_oldest_dropped_first() {
        let jobs = Arc::new(Jobs::with_limits(Duration::from_secs(60), 10));
        let t0 = Instant::now();
        let ids: Vec<JobId> = (0..4).map(|_| jobs.create()).collect();
        jobs.finish_at(ids[0], done(4), Some(vec![0; 4]), t0);
        jobs.finish_at(ids[1], done(4), Some(vec![1; 4]), t0 + Duration::from_secs(1));
        jobs.finish_at(ids[2], done(0), None, t0 + Duration::from_secs(2));
        assert!(jobs.get(ids[0]).is_some() && jobs.get(ids[1]).is_some());
        // 4 + 4 + 4 > 10: the oldest document goes; a failed job holding nothing stays.
        jobs.finish_at(ids[3], done(4), Some(vec![3; 4]), t0 + Duration::from_secs(3));
        assert_eq!(jobs.get(ids[0]), None);
        assert_eq!(jobs.take_data(ids[1]), Some(vec![1; 4]));
        assert!(jobs.get(ids[2]).is_some());
        assert_eq!(jobs.take_data(ids[3]), Some(vec![3; 4]));
        // A document larger than the whole bound is not kept at all.
        let big = jobs.create();
        jobs.finish_at(big, done(11), Some(vec![7; 11]), t0 + Duration::from_secs(4));
        assert_eq!(jobs.get(big), None);
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
