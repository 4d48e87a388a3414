//! `pamphlet insert` and `pamphlet fetch`: thin clients of the node's API jobs.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pamphlet_crypto::Uri;
use serde_json::json;

use crate::api_client::{ApiClient, JobFailed};
use crate::error::cli_error;
use pamphlet_crypto::uri::MAX_EDITION;
use pamphlet_node::Failure;

/// Arguments of `pamphlet insert`.
#[derive(clap::Args, Debug)]
pub(crate) struct InsertArgs {
    /// The file to publish.
    file: PathBuf,
    /// A file name to record for fetchers. Off by default: the local file name could say
    /// who you are, and leaving it out keeps the URI the same for the same bytes.
    #[arg(long, value_name = "NAME")]
    filename: Option<String>,
    /// Publish under this SSK/USK insert URI (from `pamphlet keygen`) instead of as a CHK.
    /// On a shared machine prefer --ssk-file: other users can read a command line.
    #[arg(long, value_name = "INSERT_URI", conflicts_with_all = ["ksk", "ssk_file"])]
    ssk: Option<String>,
    /// Read the SSK/USK insert URI from this file (`-` for standard input).
    #[arg(long, value_name = "PATH", conflicts_with = "ksk")]
    ssk_file: Option<PathBuf>,
    /// Document name inside the SSK subspace (default: the insert URI's own name).
    #[arg(long)]
    name: Option<String>,
    /// Edition to publish (makes the result a USK@…/NAME/EDITION).
    #[arg(long)]
    edition: Option<u64>,
    /// Publish under a keyword (KSK@WORD): anyone who knows the word can fetch it, and
    /// anyone could have claimed it first.
    #[arg(long, value_name = "WORD")]
    ksk: Option<String>,
    /// Check blocks per data block, 0 to 4 (default 0.5).
    #[arg(long)]
    redundancy: Option<f64>,
    /// MIME type to record for fetchers.
    #[arg(long)]
    mime: Option<String>,
    /// Store the file as it is (by default it is compressed when that makes it smaller).
    #[arg(long)]
    no_compress: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// The data directory of the running node that publishes (default: $PAMPHLET_DIR, else
    /// ~/.pamphlet).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Arguments of `pamphlet fetch`.
#[derive(clap::Args, Debug)]
pub(crate) struct FetchArgs {
    /// The URI to fetch (CHK@, SSK@, USK@ or KSK@; a `freenet:` or `pamphlet:` prefix is
    /// fine).
    uri: String,
    /// Where to write the document: a file (a regular file is replaced once the whole
    /// document is in; a FIFO or device is written in place), a directory (the file name
    /// the publisher gave goes in it), or `-` for standard output. Without -o: the
    /// publisher's file name in the current directory, else standard output.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Replace an existing file named by the publisher's file name (without -o, or with
    /// -o DIR). A path given with -o is always replaced.
    #[arg(long)]
    force: bool,
    /// Mirror a whole site: every file of the site URI names, written below -o DIR at its
    /// path in the site (existing files are replaced only with --force; symbolic links are
    /// never followed).
    #[arg(long)]
    site: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// The data directory of the running node that fetches (default: $PAMPHLET_DIR, else
    /// ~/.pamphlet).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Progress on standard error while a job runs: a spinner with the phase until the block
/// count is known, then a bar with rate and time left. Hidden when standard error is not a
/// terminal or the output is JSON.
struct Progress {
    bar: ProgressBar,
    /// Whether the bar (rather than the spinner) is showing.
    counting: bool,
    /// The phase named once blocks are counted ("inserting", "fetching").
    phase: &'static str,
}

impl Progress {
    fn new(json: bool, first_phase: &str, phase: &'static str) -> Self {
        let bar = if json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        };
        bar.set_message(first_phase.to_owned());
        Self { bar, counting: false, phase }
    }

    /// A new phase whose length is not known yet.
    fn phase(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// The job's progress as the node reports it.
    fn update(&mut self, done: u64, total: u64) {
        if total == 0 {
            return;
        }
        if !self.counting {
            self.counting = true;
            self.bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} blocks, {per_sec}, {eta} left ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            self.bar.set_message(self.phase);
            self.bar.reset_eta();
        }
        self.bar.set_length(total);
        self.bar.set_position(done);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The node holds an upload in memory; the limit is the API's.
const MAX_UPLOAD_BYTES: u64 = pamphlet_node::api::MAX_UPLOAD_BYTES as u64;

pub(crate) fn insert(dir: &Path, args: &InsertArgs) -> Result<()> {
    let cannot_read = || format!("cannot read {}", args.file.display());
    let size = std::fs::metadata(&args.file).with_context(cannot_read)?.len();
    if size > MAX_UPLOAD_BYTES {
        return Err(cli_error(
            "usage",
            format!("{} is {size} bytes; one insert takes at most {MAX_UPLOAD_BYTES} bytes", args.file.display()),
        ));
    }
    if args.edition.is_some_and(|e| e > MAX_EDITION) {
        return Err(cli_error(
            "usage",
            format!("--edition can be at most {MAX_EDITION}: a fetch looks one edition past the one it finds"),
        ));
    }
    let mut progress = Progress::new(args.json, "reading", "inserting");
    let data = std::fs::read(&args.file).with_context(cannot_read)?;
    let ssk = match (&args.ssk, &args.ssk_file) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("cannot read the insert URI from stdin")?;
            Some(s)
        }
        (None, Some(path)) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?)
        }
        (None, None) => None,
    };
    if ssk.is_none() && (args.name.is_some() || args.edition.is_some()) {
        return Err(cli_error("usage", "--name and --edition go with --ssk or --ssk-file"));
    }
    let api = ApiClient::for_dir(dir)?;
    let mut query = Vec::new();
    if let Some(name) = &args.filename {
        query.push(format!("name={}", query_escape(name)));
    }
    if let Some(m) = &args.mime {
        query.push(format!("mime={}", query_escape(m)));
    }
    if args.no_compress {
        query.push("compress=false".to_owned());
    }
    if let Some(r) = args.redundancy {
        query.push(format!("redundancy={r}"));
    }
    if let Some(n) = &args.name {
        pamphlet_crypto::uri::validate_doc_name(n).with_context(|| format!("bad --name {n:?}"))?;
        query.push(format!("doc={}", query_escape(n)));
    }
    if let Some(e) = args.edition {
        query.push(format!("edition={e}"));
    }
    let key = match (&ssk, &args.ksk) {
        (Some(ssk), _) => match Uri::parse(ssk).context("bad SSK insert URI")? {
            Uri::SskInsert(_) => Some(ssk.trim().to_owned()),
            _ => {
                return Err(cli_error(
                    "usage",
                    "--ssk needs an insert URI (the private one `pamphlet keygen` prints), not a request URI",
                ))
            }
        },
        (None, Some(word)) => {
            let ksk = format!("KSK@{word}");
            Uri::parse(&ksk).context("bad --ksk word")?;
            Some(ksk)
        }
        (None, None) => None,
    };
    let headers: Vec<(&str, &str)> = key.iter().map(|k| ("pamphlet-insert-key", k.as_str())).collect();
    progress.phase("sending to the node");
    let job = api.post_bytes(&format!("/v1/insert?{}", query.join("&")), &headers, &data)?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    progress.phase("encoding");
    // Interrupted now, the insert goes on in the node.
    crate::interrupt::on_interrupt(|| {
        eprintln!("\ninterrupted: the insert goes on in the node (its status shows the traffic); run the same command again to learn its URI");
    });
    let evicted_before = evictions(&api);
    let status = api.wait_job(id, &mut |done, total| progress.update(done, total));
    drop(progress);
    let status = status.map_err(|e| match (&args.ksk, e.downcast_ref::<JobFailed>().map(|f| &f.failure)) {
        // The node's words speak of SSK names and editions; a keyword has neither.
        (Some(word), Some(Failure::Collision)) => JobFailed {
            failure: Failure::Collision,
            message: format!(
                "the keyword {word:?} already holds different content: anyone can publish under a keyword, and \
                 someone did first; choose another word (or publish under your own SSK: `pamphlet keygen`)"
            ),
        }
        .into(),
        _ => with_advice(e, "insert failed"),
    })?;
    // A KSK's URI is its keyword: the SSK it derives is no one's business.
    let uri = match &args.ksk {
        Some(word) => format!("KSK@{word}"),
        None => status["uri"].as_str().unwrap_or_default().to_owned(),
    };
    let evicted = evictions(&api).zip(evicted_before).map(|(after, before)| after.saturating_sub(before));
    if args.json {
        println!(
            "{}",
            json!({ "uri": uri, "size": data.len(), "edition": status["edition"], "evicted_here": evicted,
                    "displaced": status["displaced"] })
        );
    } else {
        eprintln!("inserted {} bytes", data.len());
        if let Some(n) = status["displaced"].as_u64().filter(|&n| n > 0) {
            eprintln!(
                "warning: {n} block(s) of this document reached nodes whose stores are full: they kept them only \
                 by dropping older data, or only in their caches. This document (or others) may not stay \
                 fetchable for long; see docs/durability.md"
            );
        }
        if let Some(n) = evicted.filter(|&n| n > 0) {
            eprintln!(
                "warning: this node's store dropped {n} older block(s) to make room while inserting: stores \
                 that are full forget the least recently used blocks, so older documents (or parts of this \
                 one) may no longer be fetchable; see `pamphlet node status`"
            );
        }
        println!("{uri}");
    }
    Ok(())
}

/// Blocks this node's store area has evicted since it started (None: an older node).
fn evictions(api: &ApiClient) -> Option<u64> {
    let s = api.get_json("/v1/status").ok()?;
    // The store area only: the cache forgets passing blocks all the time, by design.
    s["store"]["store_evictions"].as_u64()
}

/// Adds what to do to a failed job's error (chosen by its kind), or `what` to any other.
fn with_advice(e: anyhow::Error, what: &'static str) -> anyhow::Error {
    let advice = e.downcast_ref::<JobFailed>().map(crate::failure::advice);
    match advice {
        Some(advice) => e.context(advice),
        None => e.context(what),
    }
}

/// The temporary output file; removed on drop unless it was renamed into place.
struct PartFile(PathBuf);

impl Drop for PartFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Creates the part file, refusing anything already at `path` (a symlink planted there
/// would otherwise redirect the download to a file of the attacker's choosing).
fn create_part(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "it already exists (a file or a symlink): another fetch to the same output may be running; \
             if not, check what it is and remove it"
                .to_string()
        } else {
            e.to_string()
        };
        anyhow::anyhow!("cannot create the temporary file {}: {what}", path.display())
    })
}

/// Where a fetched document goes. The CLI replaces only regular files, and those only
/// whole: it never renames over, truncates or removes anything else.
#[derive(Debug, PartialEq, Eq)]
enum Dest {
    /// Standard output (`-o -`, or no `-o` and no file name from the publisher).
    Stdout,
    /// An existing file that is not a regular file (a FIFO, a device, or a symlink to one):
    /// opened and written in place.
    InPlace(PathBuf),
    /// A regular file, new or existing: written beside it as a part file, renamed over it
    /// once complete. For a symlink to a regular file this is the link's target, so the
    /// link stays.
    Replace(PathBuf),
    /// A directory: the publisher's file name goes inside it.
    Dir(PathBuf),
}

/// Where `-o PATH` writes.
fn dest_for(path: &Path) -> Result<Dest> {
    if path.as_os_str() == "-" {
        return Ok(Dest::Stdout);
    }
    let link = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Dest::Replace(path.to_owned())),
        Err(e) => return Err(e).with_context(|| format!("cannot use {}", path.display())),
        Ok(m) => m,
    };
    let meta = if link.file_type().is_symlink() {
        match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) => {
                return Err(cli_error(
                    "exists",
                    format!(
                        "{} is a symbolic link to nothing: pamphlet will not replace it; remove it or give another -o",
                        path.display()
                    ),
                ))
            }
        }
    } else {
        link.clone()
    };
    Ok(if meta.is_dir() {
        Dest::Dir(path.to_owned())
    } else if meta.is_file() && link.file_type().is_symlink() {
        Dest::Replace(std::fs::canonicalize(path).with_context(|| format!("cannot follow {}", path.display()))?)
    } else if meta.is_file() {
        Dest::Replace(path.to_owned())
    } else {
        Dest::InPlace(path.to_owned())
    })
}

/// The publisher's file name made safe to create in a directory of ours: one path
/// component, no separators or control characters, no leading dots (no `..`, no hidden
/// file), at most 200 bytes. `None` when nothing usable is left.
fn safe_file_name(name: &str) -> Option<String> {
    let cleaned: String = name.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    let cleaned = cleaned.trim().trim_start_matches(['.', ' ', '-']).trim_end();
    let mut out = String::new();
    for c in cleaned.chars() {
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    (!out.is_empty() && out.chars().any(|c| c != '.')).then_some(out)
}

/// The publisher's file name inside `dir`, refused when that file exists and `--force`
/// was not given.
fn named_in(dir: &Path, name: Option<&str>, force: bool) -> Result<Dest> {
    let Some(safe) = name.and_then(safe_file_name) else {
        return Err(cli_error(
            "usage",
            format!(
                "the publisher gave no file name: name the output with -o {}/FILE (or -o - for standard output)",
                dir.display()
            ),
        ));
    };
    let path = dir.join(&safe);
    if std::fs::symlink_metadata(&path).is_ok() && !force {
        return Err(cli_error(
            "exists",
            format!("{} exists: pass --force to replace it, or choose the output with -o", path.display()),
        ));
    }
    match dest_for(&path)? {
        Dest::Dir(_) => {
            Err(cli_error("exists", format!("{} is a directory: choose the output with -o", path.display())))
        }
        dest => Ok(dest),
    }
}

/// The part file for a document that will replace `target`, created new (see
/// [`create_part`]), with its open handle. The guard that removes it exists only once the
/// file is ours: a file or symlink already in its place is refused and left alone.
fn part_file(target: &Path) -> Result<(PartFile, std::fs::File)> {
    let out_dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = target.file_name().context("the output path has no file name")?;
    let part_path = out_dir.join(format!(".{}.pamphlet-part", file_name.to_string_lossy()));
    let file = create_part(&part_path).with_context(|| format!("cannot write {}", target.display()))?;
    Ok((PartFile(part_path), file))
}

/// The part file's path, for the Ctrl-C handler to remove.
type SharedPart = std::sync::Arc<std::sync::Mutex<Option<PathBuf>>>;

fn share(shared: &SharedPart, part: Option<&(PartFile, std::fs::File)>) {
    *shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = part.map(|p| p.0 .0.clone());
}

pub(crate) fn fetch(dir: &Path, args: &FetchArgs) -> Result<()> {
    if args.site {
        return crate::mirror::run(dir, &args.uri, args.output.as_deref(), args.force, args.json);
    }
    // Parse here too, so a typo is reported before anything else happens.
    // The message names the key type only: a mistyped insert URI or keyword is a secret.
    let uri = Uri::parse(&args.uri).map_err(|e| {
        let kind = pamphlet_crypto::uri::key_type_of(&args.uri).map(|k| format!("{k} ")).unwrap_or_default();
        anyhow::Error::from(e).context(format!("bad {kind}URI"))
    })?;
    // Decided before the network where it can be: a wrong -o fails at once.
    let mut dest = match &args.output {
        Some(path) => Some(dest_for(path)?),
        None => None,
    };
    let shared: SharedPart = SharedPart::default();
    let mut part = match &dest {
        Some(Dest::Replace(target)) => Some(part_file(target)?),
        _ => None,
    };
    share(&shared, part.as_ref());

    let tidy = std::sync::Arc::clone(&shared);
    crate::interrupt::on_interrupt(move || {
        if let Some(part) = tidy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = std::fs::remove_file(part);
        }
        eprintln!(
            "\ninterrupted: the fetch goes on in the node, which keeps the blocks it has; run the same command \
             again to pick it up where it is"
        );
    });
    let api = ApiClient::for_dir(dir)?;
    let job = api.post_json("/v1/fetch", &json!({ "uri": uri.to_string() }))?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    let mut progress = Progress::new(args.json, "looking for the document", "fetching");
    let status = api.wait_job(id, &mut |done, total| progress.update(done, total));
    drop(progress);
    let status = status.map_err(|e| {
        let missing = matches!(
            e.downcast_ref::<JobFailed>().map(|f| &f.failure),
            Some(Failure::NotFound { .. } | Failure::RouteNotFound { peers_tried: 1.., .. })
        );
        let e = with_advice(e, "fetch failed");
        // What this node knows of full stores: they forget blocks, and a document inserted
        // into a network whose stores cannot hold it is lost without the insert failing.
        match evictions(&api).filter(|&n| missing && n > 0) {
            Some(n) => e.context(format!(
                "this node's store has dropped {n} block(s) to make room since it started: the stores of this \
                 network are full, so blocks of this document may have been evicted after its insert"
            )),
            None => e,
        }
    })?;
    let name = status["name"].as_str();
    let dest = match dest.take() {
        Some(Dest::Dir(d)) => named_in(&d, name, args.force)?,
        Some(d) => d,
        None if name.is_some_and(|n| safe_file_name(n).is_some()) => named_in(Path::new("."), name, args.force)?,
        None if std::io::stdout().is_terminal() => {
            return Err(cli_error(
                "usage",
                "the publisher gave no file name and standard output is a terminal: name the output with -o FILE \
                 (or -o - to print it anyway)",
            ))
        }
        None => Dest::Stdout,
    };
    if part.is_none() {
        if let Dest::Replace(target) = &dest {
            part = Some(part_file(target)?);
            share(&shared, part.as_ref());
        }
    }
    let size = match (&dest, part.take()) {
        (Dest::Replace(target), Some((part, mut file))) => {
            let size = api.download(id, &mut file)?;
            file.sync_all().with_context(|| format!("cannot write to {}", part.0.display()))?;
            drop(file);
            // The node verified the whole-document hash; only now does OUT appear, complete.
            std::fs::rename(&part.0, target).with_context(|| format!("cannot write {}", target.display()))?;
            size
        }
        (Dest::InPlace(path), _) => {
            // No create, no truncate: a FIFO or device is written, never replaced.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot write to {}", path.display()))?;
            let size = api.download(id, &mut file)?;
            file.flush().with_context(|| format!("cannot write to {}", path.display()))?;
            size
        }
        _ => {
            let mut out = std::io::stdout().lock();
            let size = api.download(id, &mut out)?;
            out.flush().context("cannot write to standard output")?;
            size
        }
    };
    share(&shared, None);
    let shown = match &dest {
        Dest::Replace(p) | Dest::InPlace(p) | Dest::Dir(p) => p.display().to_string(),
        Dest::Stdout => "-".to_owned(),
    };
    let edition = status["edition"].as_u64().map(|e| format!(" (edition {e})")).unwrap_or_default();
    let may_be_stale = stale_warning(&status).is_some();
    if args.json {
        let summary = json!({ "uri": args.uri.trim(), "size": size, "output": shown, "name": status["name"],
                              "mime": status["mime"], "edition": status["edition"], "requests": status["requests"],
                              "not_found": status["not_found"], "retries": status["retries"],
                              "may_be_stale": may_be_stale });
        // Standard output holds the document itself when it is the destination.
        if dest == Dest::Stdout {
            eprintln!("{summary}");
        } else {
            println!("{summary}");
        }
    } else if dest == Dest::Stdout {
        eprintln!("wrote {size} bytes to standard output{edition}");
    } else {
        println!("wrote {size} bytes to {shown}{edition}");
    }
    if let Some(warning) = stale_warning(&status).filter(|_| !args.json) {
        eprintln!("{warning}");
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// The warning for a USK fetch whose result may not be the latest edition (a probe for a
/// newer one never answered): never silently (issue 14).
fn stale_warning(status: &serde_json::Value) -> Option<String> {
    if status["may_be_stale"].as_bool() != Some(true) {
        return None;
    }
    let edition = status["edition"].as_u64().map(|e| format!("edition {e}")).unwrap_or_else(|| "this".into());
    Some(format!(
        "warning: {edition} may not be the latest: a newer edition could not be ruled out (its probes \
         did not answer); fetch again later to check"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_possibly_stale_edition_is_said_not_hidden() {
        let stale = json!({ "state": "done", "edition": 4, "may_be_stale": true });
        let warning = stale_warning(&stale).unwrap();
        assert!(warning.contains("edition 4 may not be the latest"), "{warning}");
        assert_eq!(stale_warning(&json!({ "state": "done", "edition": 4, "may_be_stale": false })), None);
        // An older node says nothing about it: no warning.
        assert_eq!(stale_warning(&json!({ "state": "done", "edition": 4 })), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_in_place_of_the_part_file_is_refused_not_followed() {
        let dir = std::env::temp_dir().join(format!("pamphlet-part-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let part = dir.join(".out.pamphlet-part");
        std::os::unix::fs::symlink(&victim, &part).unwrap();
        let err = create_part(&part).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A fresh path is created, owner-only.
        let fresh = dir.join(".other.pamphlet-part");
        create_part(&fresh).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
