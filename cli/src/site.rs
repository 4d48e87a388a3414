//! `pamphlet insert --site DIR [--ssk INSERT_URI --name NAME --edition N]`: publishes a
//! directory as a site through the node's `POST /v1/insert-site`.
//!
//! The `insert` subcommand's arguments live in transfer.rs; so that the two stay
//! independent, `main` asks [`is_site_insert`] first and hands a command line with
//! `--site` to this module's own parser.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use pamphlet_crypto::Uri;
use pamphlet_node::client::site;
use serde_json::json;

use crate::api_client::ApiClient;

/// `pamphlet [--dir DIR] insert --site DIR …`
#[derive(Parser, Debug)]
#[command(name = "pamphlet")]
struct SiteCli {
    /// The node's data directory (default: $PAMPHLET_DIR, else ~/.pamphlet).
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: SiteCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SiteCommand {
    /// Publish a directory as a site; prints the URI that opens it (last line).
    Insert(SiteInsertArgs),
}

#[derive(clap::Args, Debug)]
struct SiteInsertArgs {
    /// The directory to publish (`index.html` is the default document).
    #[arg(long, value_name = "DIR")]
    site: PathBuf,
    /// Publish under this SSK/USK insert URI instead of as a CHK.
    #[arg(long, value_name = "INSERT_URI")]
    ssk: Option<String>,
    /// Site name inside the SSK subspace.
    #[arg(long)]
    name: Option<String>,
    /// Edition to publish (makes the result a USK@…/NAME/EDITION).
    #[arg(long)]
    edition: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// True when the command line is `insert` with `--site`.
pub(crate) fn is_site_insert(args: &[OsString]) -> bool {
    let has = |s: &str| args.iter().any(|a| a == s);
    has("insert") && args.iter().any(|a| a == "--site" || a.to_string_lossy().starts_with("--site="))
}

/// Reads every regular file under `root` as (relative path with `/`, bytes). Symbolic
/// links are refused: they could pull a file from outside the directory into the site.
fn read_site(root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                bail!("{} is a symbolic link; a site holds only regular files", path.display());
            } else if kind.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root)?;
                let rel: Vec<&str> = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().with_context(|| format!("{} is not UTF-8", path.display())))
                    .collect::<Result<_>>()?;
                let rel = rel.join("/");
                site::check_path(&rel).with_context(|| format!("cannot publish {}", path.display()))?;
                files.push((rel, std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs `pamphlet insert --site …`; `default_dir` is the data directory when `--dir` is
/// not given.
pub(crate) fn run(args: Vec<OsString>, default_dir: impl FnOnce() -> PathBuf) -> Result<()> {
    let cli = SiteCli::parse_from(args);
    let SiteCommand::Insert(args) = cli.command;
    let dir = cli.dir.unwrap_or_else(default_dir);
    if args.ssk.is_none() && (args.name.is_some() || args.edition.is_some()) {
        bail!("--name and --edition go with --ssk");
    }
    let files = read_site(&args.site)?;
    if files.is_empty() {
        bail!("{} holds no files", args.site.display());
    }
    let mut query = Vec::new();
    if let Some(n) = &args.name {
        pamphlet_crypto::uri::validate_doc_name(n).with_context(|| format!("bad --name {n:?}"))?;
        query.push(format!("doc={n}"));
    }
    if let Some(e) = args.edition {
        query.push(format!("edition={e}"));
    }
    let key = match &args.ssk {
        Some(ssk) => match Uri::parse(ssk).context("bad SSK insert URI")? {
            Uri::SskInsert(_) => Some(ssk.trim().to_owned()),
            _ => bail!("--ssk needs an insert URI (the private one `pamphlet keygen` prints)"),
        },
        None => None,
    };
    let headers: Vec<(&str, &str)> = key.iter().map(|k| ("pamphlet-insert-key", k.as_str())).collect();
    let api = ApiClient::for_dir(&dir)?;
    let bundle = site::encode_bundle(&files);
    let job = api.post_bytes(&format!("/v1/insert-site?{}", query.join("&")), &headers, &bundle)?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    let status = api.wait_job(id, &mut |_, _| {}).context("site insert failed")?;
    let uri = status["uri"].as_str().unwrap_or_default();
    if args.json {
        println!(
            "{}",
            json!({ "uri": uri, "files": files.len(), "blocks": status["requests"], "edition": status["edition"] })
        );
    } else {
        eprintln!("inserted a site of {} files ({} blocks)", files.len(), status["requests"]);
        println!("{uri}/");
    }
    Ok(())
}
