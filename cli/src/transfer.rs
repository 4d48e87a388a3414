//! `pamphlet insert` and `pamphlet fetch`: thin clients of the node's API jobs.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pamphlet_crypto::Uri;
use serde_json::json;

use crate::api_client::{ApiClient, JobFailed};

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
    json: bool,
}

/// Arguments of `pamphlet fetch`.
#[derive(clap::Args, Debug)]
pub(crate) struct FetchArgs {
    /// The URI to fetch (CHK@, SSK@, USK@ or KSK@).
    uri: String,
    /// Where to write the document.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn progress_bar(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} blocks ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
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
    let size = std::fs::metadata(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?.len();
    if size > MAX_UPLOAD_BYTES {
        bail!("{} is {size} bytes; one insert takes at most {MAX_UPLOAD_BYTES} bytes", args.file.display());
    }
    let data = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
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
        bail!("--name and --edition go with --ssk or --ssk-file");
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
            _ => bail!("--ssk needs an insert URI (the private one `pamphlet keygen` prints), not a request URI"),
        },
        (None, Some(word)) => Some(format!("KSK@{word}")),
        (None, None) => None,
    };
    let headers: Vec<(&str, &str)> = key.iter().map(|k| ("pamphlet-insert-key", k.as_str())).collect();
    let job = api.post_bytes(&format!("/v1/insert?{}", query.join("&")), &headers, &data)?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    let bar = progress_bar("inserting");
    let status = api.wait_job(id, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let status = status.map_err(|e| with_advice(e, "insert failed"))?;
    let uri = status["uri"].as_str().unwrap_or_default();
    if args.json {
        println!("{}", json!({ "uri": uri, "size": data.len(), "edition": status["edition"] }));
    } else {
        eprintln!("inserted {} bytes", data.len());
        println!("{uri}");
    }
    Ok(())
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

pub(crate) fn fetch(dir: &Path, args: &FetchArgs) -> Result<()> {
    // Parse here too, so a typo is reported before anything else happens.
    // The message names the key type only: a mistyped insert URI or keyword is a secret.
    let kind: String = args.uri.trim().split('@').next().unwrap_or("").chars().take(8).collect();
    Uri::parse(&args.uri).with_context(|| format!("bad {kind}@ URI"))?;
    let out_dir = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = args.output.file_name().context("the output path has no file name")?;
    let part_path = out_dir.join(format!(".{}.pamphlet-part", file_name.to_string_lossy()));
    // Fail on an unwritable output before spending time on the network. The part file is
    // created new (O_EXCL, which also refuses a symlink in its place): a file or symlink
    // already there is refused, never written through, and left for the user to inspect
    // (so the guard that removes it is made only once the file is ours).
    let mut file = create_part(&part_path).with_context(|| format!("cannot write {}", args.output.display()))?;
    let part = PartFile(part_path);

    let api = ApiClient::for_dir(dir)?;
    let job = api.post_json("/v1/fetch", &json!({ "uri": args.uri.trim() }))?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    let bar = progress_bar("fetching");
    let status = api.wait_job(id, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let status = status.map_err(|e| with_advice(e, "fetch failed"))?;
    let size = api.download(id, &mut file)?;
    file.sync_all().with_context(|| format!("cannot write to {}", part.0.display()))?;
    drop(file);
    // The node verified the whole-document hash; only now does OUT appear, complete.
    std::fs::rename(&part.0, &args.output).with_context(|| format!("cannot write {}", args.output.display()))?;
    if args.json {
        println!(
            "{}",
            json!({ "uri": args.uri.trim(), "size": size, "output": args.output, "name": status["name"],
                    "mime": status["mime"], "edition": status["edition"], "requests": status["requests"],
                    "not_found": status["not_found"] })
        );
    } else {
        let edition = status["edition"].as_u64().map(|e| format!(" (edition {e})")).unwrap_or_default();
        println!("wrote {size} bytes to {}{edition}", args.output.display());
    }
    std::io::stdout().flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
