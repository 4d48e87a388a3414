//! `pamphlet fetch --site URI -o DIR`: mirrors a whole site (every file of its manifest)
//! into a directory.
//!
//! The site's publisher chooses every path written, so the writer trusts none of them:
//! the node checks the manifest (no `..`, `.`, absolute paths, `\`, control characters,
//! duplicates; `client::site`), this module checks each path again, and writes only
//! below DIR, one component at a time: a directory on the way that is a symbolic link (or
//! not a directory) stops the mirror, a file is never written through a symbolic link,
//! and an existing file is replaced only with `--force`. Each file is checked against the
//! manifest's size and SHA-256, written beside its target as a part file created new, and
//! renamed into place, so a file never appears half written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use pamphlet_crypto::Uri;
use pamphlet_node::client::site::{self, SiteBody, SiteManifest};
use serde_json::json;

use crate::api_client::ApiClient;
use crate::error::cli_error;

/// What a mirror wrote.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mirrored {
    /// Files written.
    pub(crate) files: usize,
    /// Their bytes.
    pub(crate) bytes: u64,
}

/// Runs `pamphlet fetch --site URI -o OUT` against the node in `node_dir`.
pub(crate) fn run(node_dir: &Path, uri: &str, out: Option<&Path>, force: bool, json: bool) -> Result<()> {
    let out = out.ok_or_else(|| cli_error("usage", "--site needs the directory to mirror into: -o DIR"))?;
    let (key, path) = pamphlet_crypto::uri::split_site_path(uri).context("bad URI")?;
    if path.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(cli_error("usage", "--site takes the site's own URI (without a path inside it)"));
    }
    // Decided before the network: a bad -o fails at once.
    prepare_root(out)?;
    let api = ApiClient::for_dir(node_dir)?;
    let manifest_bytes = fetch(&api, &json!({ "uri": key.to_string(), "site": true }))?;
    let manifest =
        SiteManifest::from_bytes(&manifest_bytes).context("the node returned a site manifest that does not decode")?;
    let mut done = Mirrored { files: 0, bytes: 0 };
    for file in &manifest.files {
        let data = match &file.body {
            SiteBody::Inline(data) => data.clone(),
            SiteBody::Chk(_) => {
                let chk = file.chk().with_context(|| format!("{}: the manifest holds a bad key", file.path))?;
                fetch(&api, &json!({ "uri": Uri::Chk(chk).to_string() }))
                    .with_context(|| format!("cannot fetch {}", file.path))?
            }
        };
        if data.len() as u64 != file.size || site::sha256(&data) != file.sha256 {
            anyhow::bail!("{}: the fetched bytes do not match the site manifest's size and hash", file.path);
        }
        write_into(out, &file.path, &data, force)?;
        done.files += 1;
        done.bytes += data.len() as u64;
        if !json {
            eprintln!("{}", file.path);
        }
    }
    if json {
        println!("{}", json!({ "uri": uri, "dir": out, "files": done.files, "bytes": done.bytes }));
    } else {
        eprintln!("mirrored {} files ({} bytes) into {}", done.files, done.bytes, out.display());
    }
    Ok(())
}

/// Fetches one document (or, with `"site": true`, a manifest) through the node.
fn fetch(api: &ApiClient, body: &serde_json::Value) -> Result<Vec<u8>> {
    let job = api.post_json("/v1/fetch", body)?;
    let id = job["job"].as_u64().context("the node did not start a job")?;
    api.wait_job(id, &mut |_, _| {})?;
    let mut data = Vec::new();
    api.download(id, &mut data)?;
    Ok(data)
}

/// DIR itself: created if missing; refused if it is a symbolic link or not a directory.
fn prepare_root(root: &Path) -> Result<()> {
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot use {}", root.display())),
        Ok(m) if m.file_type().is_symlink() => {
            Err(cli_error("exists", format!("{} is a symbolic link: mirror into a real directory", root.display())))
        }
        Ok(m) if !m.is_dir() => Err(cli_error("exists", format!("{} exists and is not a directory", root.display()))),
        Ok(_) => Ok(()),
    }
}

/// Writes `data` at the site path `rel` below `root`, creating directories on the way.
/// Refuses (kind `usage` for a bad path, `exists` for what is in the way) rather than
/// writing anywhere but below `root`.
pub(crate) fn write_into(root: &Path, rel: &str, data: &[u8], force: bool) -> Result<PathBuf> {
    site::check_path(rel)
        .map_err(|e| cli_error("usage", format!("the site names a path {rel:?} that is unsafe: {e}")))?;
    let mut segments: Vec<&str> = rel.split('/').collect();
    let name = segments.pop().unwrap_or_default();
    let mut dir = root.to_path_buf();
    for segment in segments {
        dir.push(segment);
        match std::fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot use {}", dir.display())),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(cli_error(
                    "exists",
                    format!("{} is a symbolic link: the mirror writes only into real directories", dir.display()),
                ))
            }
            Ok(m) if !m.is_dir() => {
                return Err(cli_error("exists", format!("{} is in the way: not a directory", dir.display())))
            }
            Ok(_) => {}
        }
    }
    let target = dir.join(name);
    match std::fs::symlink_metadata(&target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot use {}", target.display())),
        Ok(m) if m.file_type().is_symlink() => {
            return Err(cli_error(
                "exists",
                format!("{} is a symbolic link: pamphlet will not write through it", target.display()),
            ))
        }
        Ok(m) if m.is_dir() => {
            return Err(cli_error("exists", format!("{} is a directory in the way", target.display())))
        }
        Ok(_) if !force => {
            return Err(cli_error("exists", format!("{} exists: pass --force to replace it", target.display())))
        }
        Ok(_) => {}
    }
    // Created new (never an existing file or link), filled, synced, renamed over the target:
    // rename replaces a directory entry and never follows a link at the destination.
    let part = dir.join(format!(".{name}.pamphlet-part"));
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&part)
        .with_context(|| format!("cannot create {} (a stale part file? remove it)", part.display()))?;
    let written = file.write_all(data).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&part, &target)) {
        let _ = std::fs::remove_file(&part);
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_below_the_root_in_their_directories() {
        let root = tempfile::tempdir().unwrap();
        let path = write_into(root.path(), "about/team/page.html", b"hi", false).unwrap();
        assert_eq!(path, root.path().join("about/team/page.html"));
        assert_eq!(std::fs::read(&path).unwrap(), b"hi");
        // No part file is left behind.
        assert_eq!(std::fs::read_dir(root.path().join("about/team")).unwrap().count(), 1);
    }

    #[test]
    fn paths_that_climb_or_start_at_the_root_are_refused() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("mirror");
        std::fs::create_dir(&root).unwrap();
        for bad in ["../escape.html", "a/../../escape.html", "/etc/escape", "a//b", "./a", "a\\..\\b", ""] {
            assert!(write_into(&root, bad, b"x", true).is_err(), "{bad:?} refused");
        }
        assert!(!outer.path().join("escape.html").exists());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0, "nothing written");
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_never_followed() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("mirror");
        let elsewhere = outer.path().join("elsewhere");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("victim.html"), b"keep").unwrap();
        // A directory on the way that is a link out of the mirror.
        std::os::unix::fs::symlink(&elsewhere, root.join("about")).unwrap();
        assert!(write_into(&root, "about/victim.html", b"evil", true).is_err());
        assert!(write_into(&root, "about/new.html", b"evil", true).is_err());
        // The file itself a link out of the mirror, even with --force.
        std::os::unix::fs::symlink(elsewhere.join("victim.html"), root.join("index.html")).unwrap();
        assert!(write_into(&root, "index.html", b"evil", true).is_err());
        assert_eq!(std::fs::read(elsewhere.join("victim.html")).unwrap(), b"keep");
        assert!(!elsewhere.join("new.html").exists());
        // The root a link: refused too.
        let linked_root = outer.path().join("linked");
        std::os::unix::fs::symlink(&elsewhere, &linked_root).unwrap();
        assert!(prepare_root(&linked_root).is_err());
    }

    #[test]
    fn an_existing_file_is_replaced_only_with_force() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("index.html"), b"mine").unwrap();
        assert!(write_into(root.path(), "index.html", b"theirs", false).is_err());
        assert_eq!(std::fs::read(root.path().join("index.html")).unwrap(), b"mine");
        write_into(root.path(), "index.html", b"theirs", true).unwrap();
        assert_eq!(std::fs::read(root.path().join("index.html")).unwrap(), b"theirs");
    }
}
