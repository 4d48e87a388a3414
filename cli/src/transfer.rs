//! `pamphlet insert` and `pamphlet fetch`: thin clients of the node's API jobs.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use pamphlet_crypto::Uri;
use serde_json::json;

use crate::api_client::ApiClient;

/// Arguments of `pamphlet insert`.
#[derive(clap::Args, Debug)]
pub(crate) struct InsertArgs {
    /// The file to publish.
    file: PathBuf,
    /// Publish under this SSK/USK insert URI (from `pamphlet keygen`) instead of as a CHK.
    #[arg(long, value_name = "INSERT_URI", conflicts_with = "ksk")]
    ssk: Option<String>,
    /// Document name inside the SSK subspace (default: the insert URI's own name).
    #[arg(long, requires = "ssk")]
    name: Option<String>,
    /// Edition to publish (makes the result a USK@…/NAME/EDITION).
    #[arg(long, requires = "ssk")]
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

pub(crate) fn insert(dir: &Path, args: &InsertArgs) -> Result<()> {
    let data = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let api = ApiClient::for_dir(dir)?;
    let mut query = Vec::new();
    if let Some(name) = args.file.file_name().and_then(|n| n.to_str()) {
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
    let key = match (&args.ssk, &args.ksk) {
        (Some(ssk), _) => match Uri::parse(ssk).context("bad --ssk insert URI")? {
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
    let status = status.context("insert failed")?;
    let uri = status["uri"].as_str().unwrap_or_default();
    if args.json {
        println!("{}", json!({ "uri": uri, "size": data.len(), "edition": status["edition"] }));
    } else {
        eprintln!("inserted {} bytes", data.len());
        println!("{uri}");
    }
    Ok(())
}

pub(crate) fn fetch(dir: &Path, args: &FetchArgs) -> Result<()> {
    // Parse here too, so a typo is reported before anything else happens.
    Uri::parse(&args.uri).with_context(|| format!("bad URI {:?}", args.uri.chars().take(24).collect::<String>()))?;
    let out_dir = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = args.output.file_name().context("the output path has no file name")?;
    let part = out_dir.join(format!(".{}.pamphlet-part", file_name.to_string_lossy()));
    // Fail on an unwritable output before spending time on the network.
    std::fs::File::create(&part).with_context(|| format!("cannot write to {}", args.output.display()))?;

    let api = ApiClient::for_dir(dir)?;
    let job = api.post_json("/v1/fetch", &json!({ "uri": args.uri.trim() }))?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    let bar = progress_bar("fetching");
    let status = api.wait_job(id, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            let not_found = e.downcast_ref::<crate::api_client::JobFailed>().is_some_and(|f| f.kind == "not_found");
            if not_found {
                return Err(e.context(
                    "the document could not be found: check the URI; if it is right, the data may not have \
                     reached this part of the network yet, or has fallen out of it",
                ));
            }
            return Err(e.context("fetch failed"));
        }
    };
    let mut file = std::fs::File::create(&part).with_context(|| format!("cannot write to {}", part.display()))?;
    let size = api.download(id, &mut file)?;
    file.sync_all().with_context(|| format!("cannot write to {}", part.display()))?;
    drop(file);
    // The node verified the whole-document hash; only now does OUT appear, complete.
    std::fs::rename(&part, &args.output).with_context(|| format!("cannot write {}", args.output.display()))?;
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
