//! Downloads the gateway runs in the background, so that a page that takes a while (a
//! large file, a slow route) shows a progress page instead of a browser spinning blank.
//!
//! A request for a key starts (or joins) one [`Download`] per address and waits up to
//! [`PROGRESS_AFTER`] for it. If it is done by then, its response is served as usual. If
//! not, and the request is a navigation (a person waiting on a page), the answer is a
//! progress page that reloads itself every second with `<meta http-equiv="refresh">` (no
//! script: the gateway's own pages run none, and its CSP forbids them); each reload waits
//! up to [`PROGRESS_AFTER`] again and takes the finished response when it is there. A
//! sub-resource (an image, a stylesheet) cannot show a page, so it waits to the end.
//!
//! A finished response is kept until it is taken, at most [`KEEP_FINISHED`]; at most
//! [`MAX_DOWNLOADS`] downloads are tracked at once (a page cannot make the gateway hold
//! unbounded state).

// A driver: waits on tokio timers and reads the wall clock for expiry.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

use crate::client::splitfile::Progress;

/// How long a request waits for its download before a navigation gets the progress page.
pub const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// How long a finished download's response waits for the reload that takes it.
pub const KEEP_FINISHED: Duration = Duration::from_secs(120);

/// The most downloads tracked at once; more are refused (503) until some finish.
pub const MAX_DOWNLOADS: usize = 256;

/// One download in the background.
pub struct Download {
    /// Blocks of the current document: (have, needed, failed).
    blocks: Mutex<(usize, usize, usize)>,
    /// The response once it is ready, until it is taken.
    result: Mutex<Option<Response>>,
    /// When the response became ready.
    finished: Mutex<Option<Instant>>,
    /// Wakes the requests waiting for it.
    ready: Notify,
    /// When it started, for the progress page.
    started: Instant,
}

impl Download {
    fn new() -> Self {
        Self {
            blocks: Mutex::new((0, 0, 0)),
            result: Mutex::new(None),
            finished: Mutex::new(None),
            ready: Notify::new(),
            started: Instant::now(),
        }
    }

    /// Records the pipeline's progress (its callback).
    pub fn progress(&self, p: Progress) {
        *self.blocks.lock().unwrap_or_else(PoisonError::into_inner) = (p.blocks_have, p.blocks_needed, p.blocks_failed);
    }

    /// (blocks have, needed, failed) of the document being fetched now.
    pub fn blocks(&self) -> (usize, usize, usize) {
        *self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds since it started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn is_finished(&self) -> bool {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    fn finish(&self, response: Response) {
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(response);
        *self.finished.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.ready.notify_waiters();
    }

    /// Waits until it is finished, or `limit` has passed; true when finished.
    pub async fn wait(&self, limit: Option<Duration>) -> bool {
        let deadline = limit.map(|l| tokio::time::Instant::now() + l);
        loop {
            // Registered before the check, so a finish in between is not missed.
            let notified = self.ready.notified();
            if self.is_finished() {
                return true;
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        return self.is_finished();
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// The downloads in flight, by gateway address (path and query).
#[derive(Default)]
pub struct Downloads {
    map: Mutex<HashMap<String, Arc<Download>>>,
}

impl Downloads {
    /// The download for `address`: the one running or finished, or a new one that `start`
    /// runs to its response in a task of its own. `None` when [`MAX_DOWNLOADS`] are
    /// tracked already.
    pub fn get_or_start<F, Fut>(&self, address: &str, start: F) -> Option<Arc<Download>>
    where
        F: FnOnce(Arc<Download>) -> Fut,
        Fut: std::future::Future<Output = Response> + Send + 'static,
    {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, d| {
            d.finished.lock().unwrap_or_else(PoisonError::into_inner).is_none_or(|t| t.elapsed() < KEEP_FINISHED)
        });
        if let Some(d) = map.get(address) {
            return Some(Arc::clone(d));
        }
        if map.len() >= MAX_DOWNLOADS {
            return None;
        }
        let download = Arc::new(Download::new());
        map.insert(address.to_owned(), Arc::clone(&download));
        let fut = start(Arc::clone(&download));
        let finisher = Arc::clone(&download);
        tokio::spawn(async move {
            // In a task of its own, so that a panic (a bug) still finishes the download:
            // otherwise its waiters would wait forever and it would hold a place for good.
            let response = tokio::spawn(fut).await.unwrap_or_else(|_| {
                (StatusCode::INTERNAL_SERVER_ERROR, "the gateway failed while fetching this document").into_response()
            });
            finisher.finish(response);
        });
        Some(download)
    }

    /// Takes the finished response of `address` (the download is then forgotten); `None`
    /// if another request took it first.
    pub fn take(&self, address: &str, download: &Arc<Download>) -> Option<Response> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(address).is_some_and(|d| Arc::ptr_eq(d, download)) {
            map.remove(address);
        }
        drop(map);
        download.result.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// How many downloads are tracked (for tests and the home page).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True when none is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_fetch_still_finishes_its_download() {
        let downloads = Downloads::default();
        let d = downloads
            .get_or_start("/CHK@x", |_| async {
                panic!("a bug in a fetch");
                #[allow(unreachable_code)]
                StatusCode::OK.into_response()
            })
            .unwrap();
        assert!(d.wait(Some(Duration::from_secs(10))).await, "finished, not hanging");
        let response = downloads.take("/CHK@x", &d).unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(downloads.is_empty());
    }

    #[tokio::test]
    async fn the_number_of_downloads_is_bounded() {
        let downloads = Downloads::default();
        for i in 0..MAX_DOWNLOADS {
            assert!(downloads.get_or_start(&format!("/KSK@{i}"), |_| std::future::pending::<Response>()).is_some());
        }
        assert!(downloads.get_or_start("/KSK@one-more", |_| std::future::pending::<Response>()).is_none());
        // Joining one already tracked is still fine.
        assert!(downloads.get_or_start("/KSK@0", |_| std::future::pending::<Response>()).is_some());
    }
}
