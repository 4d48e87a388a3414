//! A small blocking client for the local node's API (docs/api.md), as the CLI uses it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use pamphlet_node::api::jobs::JobStatus;
use pamphlet_node::Failure;
use serde_json::Value;

use crate::error::cli_error;

/// The API of the node whose data directory is `dir`.
pub(crate) struct ApiClient {
    base: String,
    token: String,
    dir: PathBuf,
    agent: ureq::Agent,
    /// How long the node may stay silent before the CLI gives up on it.
    silence: Duration,
}

/// How long a node may leave one request unanswered (`PAMPHLET_NODE_TIMEOUT`, seconds,
/// overrides it). Jobs report progress at every poll, so a live node answers in
/// milliseconds; one that is stopped, stuck or swapping for minutes does not.
const DEFAULT_SILENCE: Duration = Duration::from_secs(30);

fn silence() -> Duration {
    std::env::var("PAMPHLET_NODE_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_SILENCE, Duration::from_secs)
}

/// Whether a transport error is the node not answering in time (rather than refusing).
fn is_timeout(t: &ureq::Transport) -> bool {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock);
        }
        source = e.source();
    }
    false
}

/// A job that ended in failure: the node's [`Failure`], read back from the job status.
#[derive(Debug)]
pub(crate) struct JobFailed {
    /// The kind and its details.
    pub(crate) failure: Failure,
    /// The node's words for it.
    pub(crate) message: String,
}

impl JobFailed {
    /// Reads a job's final `status` object: `Ok(None)` when it is done, the failure when it
    /// failed.
    pub(crate) fn from_status(status: &Value) -> Result<Option<Self>> {
        let status: JobStatus = serde_json::from_value(status.clone())
            .context("the node reported a job status this pamphlet does not understand (a newer node?)")?;
        Ok(match status {
            JobStatus::Failed { error, failure } => Some(Self { failure, message: error }),
            JobStatus::Done { .. } | JobStatus::Running => None,
        })
    }
}

impl std::fmt::Display for JobFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobFailed {}

impl ApiClient {
    /// Finds the running node of `dir` from `DIR/api.addr` and `DIR/api.token`.
    pub(crate) fn for_dir(dir: &Path) -> Result<Self> {
        let not_running = || {
            cli_error(
                "no_node",
                format!(
                    "no running node in {}: start one with `pamphlet node run --dir {}`",
                    dir.display(),
                    dir.display()
                ),
            )
        };
        let addr = std::fs::read_to_string(dir.join("api.addr")).map_err(|_| not_running())?;
        // A node of a --wan darknet listens inside its own network namespace.
        crate::wan::enter_node_netns(dir)?;
        let token = std::fs::read_to_string(dir.join("api.token"))
            .with_context(|| format!("cannot read the API token {}", dir.join("api.token").display()))?;
        let silence = silence();
        // Read and write time-outs bound each wait for the node, not a whole transfer: a
        // 1 GiB upload or download may take minutes while every read returns promptly.
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10).min(silence))
            .timeout_read(silence)
            .timeout_write(silence)
            .build();
        Ok(Self {
            base: format!("http://{}", addr.trim()),
            token: token.trim().to_owned(),
            dir: dir.to_owned(),
            agent,
            silence,
        })
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
    }

    fn check(&self, r: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response> {
        match r {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(code, resp)) => {
                let body: Value = resp.into_json().unwrap_or(Value::Null);
                let msg = body["error"].as_str().unwrap_or("no message").to_owned();
                Err(cli_error("node_refused", format!("the node refused the request ({code}): {msg}")))
            }
            Err(ureq::Error::Transport(t)) if is_timeout(&t) => Err(cli_error(
                "node_timeout",
                format!(
                    "the node of {} did not answer for {} s: it is stopped, stuck or overloaded (see its log; \
                     `PAMPHLET_NODE_TIMEOUT=SECONDS` waits longer); a job it started goes on if it recovers, and \
                     running the command again resumes a fetch",
                    self.dir.display(),
                    self.silence.as_secs()
                ),
            )),
            Err(ureq::Error::Transport(_)) => Err(cli_error(
                "node_unreachable",
                format!(
                    "cannot reach the node of {} (is it running? start it with `pamphlet node run --dir {}`)",
                    self.dir.display(),
                    self.dir.display()
                ),
            )),
        }
    }

    /// `GET path` as JSON.
    pub(crate) fn get_json(&self, path: &str) -> Result<Value> {
        Ok(self.check(self.request("GET", path).call())?.into_json()?)
    }

    /// `POST path` with raw bytes and extra headers; JSON answer.
    pub(crate) fn post_bytes(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Value> {
        let mut req = self.request("POST", path).set("Content-Type", "application/octet-stream");
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Ok(self.check(req.send_bytes(body))?.into_json()?)
    }

    /// `DELETE path`; JSON answer.
    pub(crate) fn delete_json(&self, path: &str) -> Result<Value> {
        Ok(self.check(self.request("DELETE", path).call())?.into_json()?)
    }

    /// `POST path` with a JSON body; JSON answer.
    pub(crate) fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        Ok(self.check(self.request("POST", path).send_json(body.clone()))?.into_json()?)
    }

    /// Polls job `id` until it ends, calling `progress(done, total)` on the way. Returns
    /// the final status object, or a [`JobFailed`] error.
    pub(crate) fn wait_job(&self, id: u64, progress: &mut dyn FnMut(u64, u64)) -> Result<Value> {
        // A long poll: the node answers as soon as the job ends, or after 200 ms with its
        // progress (for the progress bar). Polling at intervals instead cost up to a whole
        // interval on every job's end, 0.1 s of a one-block fetch's 0.5 s.
        loop {
            let v = self.get_json(&format!("/v1/jobs/{id}?wait_ms=200"))?;
            let p = &v["progress"];
            progress(p["done"].as_u64().unwrap_or(0), p["total"].as_u64().unwrap_or(0));
            match v["status"]["state"].as_str() {
                Some("running") => {}
                _ => {
                    return match JobFailed::from_status(&v["status"])? {
                        Some(failed) => Err(failed.into()),
                        None => Ok(v["status"].clone()),
                    }
                }
            }
        }
    }

    /// Streams a finished fetch's document into `out`.
    pub(crate) fn download(&self, id: u64, out: &mut dyn std::io::Write) -> Result<u64> {
        let resp = self.check(self.request("GET", &format!("/v1/jobs/{id}/data")).call())?;
        let mut reader = resp.into_reader().take(u64::MAX);
        Ok(std::io::copy(&mut reader, out)?)
    }
}
