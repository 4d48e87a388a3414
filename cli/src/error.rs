//! The CLI's own errors (those that are not failed jobs), each with a stable kind that
//! `--json` reports (docs/api.md, "Errors as JSON"). Below every command module, so each
//! can make one.

/// An error of the CLI's own (not a failed job) with the stable kind `--json` reports.
#[derive(Debug)]
pub(crate) struct CliError {
    /// One of [`CLI_KINDS`].
    pub(crate) kind: &'static str,
    /// What went wrong and what to do.
    pub(crate) message: String,
}

/// The kinds of errors that are not failed jobs (docs/api.md, "Errors as JSON"); all exit
/// with status 1.
pub(crate) const CLI_KINDS: &[&str] = &[
    "bad_uri",          // the URI does not parse
    "usage",            // an option or argument is unusable
    "no_node",          // no node runs in the data directory
    "node_unreachable", // the node's API refuses connections
    "node_timeout",     // the node's API stopped answering
    "node_refused",     // the node's API refused the request (400/401/404/500)
    "exists",           // the command would destroy something it did not create
    "file",             // a local file cannot be read or written
    "other",            // anything else
];

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// An error of kind `kind` (one of [`CLI_KINDS`]).
pub(crate) fn cli_error(kind: &'static str, message: impl Into<String>) -> anyhow::Error {
    debug_assert!(CLI_KINDS.contains(&kind), "{kind}");
    CliError { kind, message: message.into() }.into()
}
