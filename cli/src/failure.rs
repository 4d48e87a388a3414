//! What the person is told, and the exit status, for each kind of failed transfer. The
//! kind comes from the node as a [`Failure`] (docs/api.md); it is matched here, never
//! compared as a string.

use pamphlet_node::{Failure, RetryCause};

use crate::api_client::JobFailed;
#[cfg(test)]
use crate::error::cli_error;
use crate::error::CliError;

/// Exit status of an error that is not a failed job (bad arguments, no node running, …).
pub(crate) const EXIT_OTHER: u8 = 1;

/// The exit status for a failed job (docs/api.md, "Exit status").
pub(crate) fn exit_code(failure: &Failure) -> u8 {
    match failure {
        Failure::NotFound { .. } => 3,
        Failure::RouteNotFound { .. } => 4,
        Failure::TimedOut { .. } => 5,
        Failure::RetryLater { .. } => 6,
        Failure::InvalidData => 7,
        Failure::Collision => 8,
        Failure::BadInput => 9,
        Failure::Unavailable => 10,
        Failure::Cancelled => 11,
        Failure::Io => 12,
        Failure::Internal => 13,
        // `Failure` is non-exhaustive: a kind added after this CLI was built (a newer node)
        // is not folded into a known one.
        _ => EXIT_OTHER,
    }
}

/// What went wrong and what to do, for a failed fetch or insert.
pub(crate) fn advice(failed: &JobFailed) -> String {
    match &failed.failure {
        Failure::NotFound { .. } => "the document could not be found: check the URI; if it is right, the data may not \
                                     have reached this part of the network yet, or has fallen out of it"
            .to_owned(),
        Failure::RouteNotFound { peers_tried: 0, .. } => {
            "no route: the node has no connected friend to ask (`pamphlet node status`; add friends with \
             `pamphlet node add-friend`)"
                .to_owned()
        }
        Failure::RouteNotFound { peers_tried, .. } => format!(
            "no route: the request reached every node it could through {peers_tried} friend(s) with hops to spare; \
             the document could not be found there (check the URI), or the network is too small or split"
        ),
        Failure::TimedOut { htl_left, .. } => {
            let hops = htl_left.map(|h| format!(" with {h} hops left")).unwrap_or_default();
            format!("the network did not answer in time{hops}: a route is slow or overloaded; try again")
        }
        Failure::RetryLater { cause: RetryCause::RecentlyFailed } => {
            "the key failed moments ago and the network is not asked again so soon: try again in half a minute"
                .to_owned()
        }
        Failure::RetryLater { cause: RetryCause::InProgress } => {
            "this node is already working on that key: wait for that transfer to end, then try again".to_owned()
        }
        Failure::RetryLater { cause: RetryCause::Overloaded } => {
            "the network is overloaded: every friend's route refused the request for now (their upload limits are \
             full); try again in a minute, or fetch fewer documents at once"
                .to_owned()
        }
        Failure::RetryLater { .. } => "the network is busy: try again in a while".to_owned(),
        Failure::InvalidData => "the data does not decode: check the URI (its decryption key); if it is right, \
                                 the document is corrupt or forged"
            .to_owned(),
        Failure::Collision => {
            "that name and edition already hold different content: publish under a new edition (--edition)".to_owned()
        }
        Failure::BadInput => "the node refused the request as invalid".to_owned(),
        Failure::Unavailable => {
            "the node is shutting down: start it again with `pamphlet node run` and retry".to_owned()
        }
        Failure::Cancelled => {
            "the transfer was stopped before it ended (did the node stop?): run the command again; a fetch resumes"
                .to_owned()
        }
        Failure::Io => {
            "the node could not use a local file: see its log, and check disk space and permissions".to_owned()
        }
        Failure::Internal => "this is a bug in pamphlet: the node's log has the details (please report it)".to_owned(),
        _ => "the node reported a kind of failure this pamphlet does not know (is the node newer?)".to_owned(),
    }
}

/// The exit status for any error of a command: per kind for a failed job, else 1.
pub(crate) fn exit_code_of(e: &anyhow::Error) -> u8 {
    e.chain().find_map(|c| c.downcast_ref::<JobFailed>()).map_or(EXIT_OTHER, |f| exit_code(&f.failure))
}

/// The stable kind of any error of a command: a failed job's kind (docs/api.md), else the
/// CLI's own.
pub(crate) fn kind_of(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<JobFailed>() {
            return f.failure.kind();
        }
        if let Some(c) = cause.downcast_ref::<CliError>() {
            return c.kind;
        }
        if cause.downcast_ref::<pamphlet_crypto::UriError>().is_some() {
            return "bad_uri";
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return "file";
        }
    }
    "other"
}

/// An error as people read it: the message, then its causes, never a backtrace (which
/// `RUST_BACKTRACE=1` would add to anyhow's `Debug` form: a user error is not a crash).
pub(crate) fn human(e: &anyhow::Error) -> String {
    let mut out = format!("Error: {e}");
    let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
    if !causes.is_empty() {
        out.push_str("\n\nCaused by:");
        for (i, c) in causes.iter().enumerate() {
            if causes.len() == 1 {
                out.push_str(&format!("\n    {c}"));
            } else {
                out.push_str(&format!("\n    {i}: {c}"));
            }
        }
    }
    out
}

/// An error as `--json` prints it: `{"error": "…", "kind": "…"}`, with the failed job's
/// details (htl, peers tried, cause) beside them.
pub(crate) fn json(e: &anyhow::Error) -> serde_json::Value {
    let message: Vec<String> = e.chain().map(ToString::to_string).collect();
    let mut v = e
        .chain()
        .find_map(|c| c.downcast_ref::<JobFailed>())
        .and_then(|f| serde_json::to_value(&f.failure).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    v["error"] = message.join(": ").into();
    v["kind"] = kind_of(e).into();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Failure> {
        vec![
            Failure::NotFound { htl: Some(18), peers_tried: Some(2) },
            Failure::RouteNotFound { htl_left: Some(3), peers_tried: 1 },
            Failure::TimedOut { htl_left: Some(4), peers_tried: 2 },
            Failure::RetryLater { cause: RetryCause::RecentlyFailed },
            Failure::InvalidData,
            Failure::Collision,
            Failure::BadInput,
            Failure::Unavailable,
            Failure::Cancelled,
            Failure::Io,
            Failure::Internal,
        ]
    }

    #[test]
    fn each_kind_has_its_own_exit_status() {
        let codes: Vec<u8> = every_kind().iter().map(exit_code).collect();
        assert_eq!(codes, (3..=13).collect::<Vec<u8>>(), "docs/api.md lists these");
    }

    #[test]
    fn a_timed_out_job_reaches_the_person_as_timed_out() {
        // The job status exactly as the API serialises it.
        let status = serde_json::json!({ "state": "failed", "error": "the document could not be fetched: timed out",
                                         "kind": "timed_out", "htl_left": 7, "peers_tried": 2 });
        let failed = JobFailed::from_status(&status).unwrap().unwrap();
        assert_eq!(failed.failure, Failure::TimedOut { htl_left: Some(7), peers_tried: 2 });
        assert!(advice(&failed).contains("did not answer in time with 7 hops left"), "{}", advice(&failed));
        let e = anyhow::Error::from(failed).context("fetch failed");
        assert_eq!(exit_code_of(&e), 5);
        assert_eq!(exit_code_of(&anyhow::anyhow!("no running node")), EXIT_OTHER);
        let done = serde_json::json!({ "state": "done", "uri": "CHK@x", "size": 1, "name": null, "mime": null,
                                       "edition": null, "requests": 1, "not_found": 0 });
        assert!(JobFailed::from_status(&done).unwrap().is_none());
    }

    #[test]
    fn errors_as_json_carry_a_stable_kind() {
        let failed =
            JobFailed { failure: Failure::TimedOut { htl_left: Some(2), peers_tried: 1 }, message: "t".into() };
        let v = json(&anyhow::Error::from(failed).context("fetch failed"));
        assert_eq!((v["kind"].as_str(), v["htl_left"].as_u64()), (Some("timed_out"), Some(2)), "{v}");
        assert_eq!(v["error"], "fetch failed: t");
        assert_eq!(json(&cli_error("exists", "x"))["kind"], "exists");
        let bad = anyhow::Error::from(pamphlet_crypto::Uri::parse("XYZ@a").unwrap_err()).context("bad URI");
        assert_eq!(json(&bad)["kind"], "bad_uri");
        assert_eq!(json(&anyhow::anyhow!("?"))["kind"], "other");
    }

    #[test]
    fn no_route_says_whether_any_friend_was_there() {
        let lonely =
            JobFailed { failure: Failure::RouteNotFound { htl_left: Some(18), peers_tried: 0 }, message: "".into() };
        assert!(advice(&lonely).contains("no connected friend"));
        let tried =
            JobFailed { failure: Failure::RouteNotFound { htl_left: Some(5), peers_tried: 2 }, message: "".into() };
        assert!(advice(&tried).contains("could not be found"));
    }
}
