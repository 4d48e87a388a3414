//! Direct disk access (`TestDDARequest` → `TestDDAReply` → `TestDDAResponse` →
//! `TestDDAComplete`), as fred does it: before the node reads a file named by a client
//! (`UploadFrom=disk`) or writes one (`ReturnType=disk`), the client proves it can do the
//! same in that directory. For reading, the node leaves a file of random text there and the
//! client must echo it; for writing, the client writes text the node chose and the node
//! reads it back. Grants last as long as the connection and cover subdirectories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::codes::protocol;
use super::fields::{boolean, required, Reject};
use super::message::Message;

/// What one directory's handshake is waiting for.
#[derive(Debug, Default)]
struct Pending {
    /// The file the node wrote, and its content the client must echo.
    read: Option<(PathBuf, String)>,
    /// The file the client must write, and the content.
    write: Option<(PathBuf, String)>,
}

/// One connection's DDA state.
#[derive(Debug, Default)]
pub struct Dda {
    /// Directory (canonical) → (may read, may write).
    grants: HashMap<PathBuf, (bool, bool)>,
    pending: HashMap<PathBuf, Pending>,
}

fn token() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn canonical_dir(dir: &str) -> Result<PathBuf, Reject> {
    let path = Path::new(dir);
    if !path.is_absolute() {
        return Err(Reject::new(protocol::INVALID_FIELD, "Directory must be an absolute path"));
    }
    match tokio::fs::canonicalize(path).await {
        Ok(p) if p.is_dir() => Ok(p),
        _ => Err(Reject::new(protocol::FILE_NOT_FOUND, "Directory does not exist or is not a directory")),
    }
}

impl Dda {
    /// `TestDDARequest` → `TestDDAReply`.
    pub async fn request(&mut self, m: &Message) -> Result<Message, Reject> {
        let dir_text = required(m, "Directory")?;
        let dir = canonical_dir(dir_text).await?;
        let want_read = boolean(m, "WantReadDirectory", false)?;
        let want_write = boolean(m, "WantWriteDirectory", false)?;
        self.forget(&dir).await;
        let mut pending = Pending::default();
        let mut reply = Message::new("TestDDAReply").with("Directory", dir_text);
        if want_read {
            let file = dir.join(format!("DDACheck-{}.tmp", token()));
            let content = token();
            let created = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&file).await;
            if let Ok(mut f) = created {
                use tokio::io::AsyncWriteExt;
                if f.write_all(content.as_bytes()).await.is_ok() && f.flush().await.is_ok() {
                    reply = reply.with("ReadFilename", file.display());
                    pending.read = Some((file, content));
                } else {
                    let _ = tokio::fs::remove_file(&file).await;
                }
            }
        }
        if want_write {
            let file = dir.join(format!("DDACheck-{}.tmp", token()));
            let content = token();
            reply = reply.with("WriteFilename", file.display()).with("ContentToWrite", &content);
            pending.write = Some((file, content));
        }
        self.pending.insert(dir, pending);
        Ok(reply)
    }

    /// `TestDDAResponse` → `TestDDAComplete`.
    pub async fn response(&mut self, m: &Message) -> Result<Message, Reject> {
        let dir_text = required(m, "Directory")?;
        let dir = canonical_dir(dir_text).await?;
        let pending = self.pending.remove(&dir).ok_or_else(|| {
            Reject::new(protocol::INVALID_FIELD, "no TestDDARequest is waiting for an answer about that Directory")
        })?;
        let mut read_ok = false;
        if let Some((file, content)) = &pending.read {
            read_ok = m.get("ReadContent").is_some_and(|c| c.trim() == content);
            let _ = tokio::fs::remove_file(file).await;
        }
        let mut write_ok = false;
        if let Some((file, content)) = &pending.write {
            // Only the file this node named is read, and only a few bytes of it.
            if let Ok(got) = tokio::fs::read(file).await {
                write_ok = got.len() < 256 && String::from_utf8_lossy(&got).trim() == content;
            }
        }
        let grant = self.grants.entry(dir).or_default();
        grant.0 |= read_ok;
        grant.1 |= write_ok;
        Ok(Message::new("TestDDAComplete")
            .with("Directory", dir_text)
            .with("ReadDirectoryAllowed", read_ok)
            .with("WriteDirectoryAllowed", write_ok))
    }

    /// The canonical path of `file` if this connection may read it (`write == false`) or
    /// create it (`write == true`); the directory must be granted.
    pub async fn check(&self, file: &str, write: bool) -> Result<PathBuf, Reject> {
        let denied = || {
            Reject::new(
                protocol::DIRECT_DISK_ACCESS_DENIED,
                "run TestDDARequest/TestDDAResponse for this file's directory on this connection first",
            )
        };
        let path = Path::new(file);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return Err(denied()) };
        if !path.is_absolute() {
            return Err(Reject::new(protocol::INVALID_FIELD, "Filename must be an absolute path"));
        }
        let parent = tokio::fs::canonicalize(parent)
            .await
            .map_err(|_| Reject::new(protocol::FILE_NOT_FOUND, "the file's directory does not exist"))?;
        let ok = self.grants.iter().any(|(d, (r, w))| parent.starts_with(d) && if write { *w } else { *r });
        if ok {
            Ok(parent.join(name))
        } else {
            Err(denied())
        }
    }

    /// The canonical path of directory `dir` if this connection may read it
    /// (`ClientPutDiskDir`).
    pub async fn check_dir(&self, dir: &str) -> Result<PathBuf, Reject> {
        let dir = canonical_dir(dir).await?;
        if self.grants.iter().any(|(d, (r, _))| *r && dir.starts_with(d)) {
            Ok(dir)
        } else {
            Err(Reject::new(
                protocol::DIRECT_DISK_ACCESS_DENIED,
                "run TestDDARequest/TestDDAResponse for this directory on this connection first",
            ))
        }
    }

    /// Grants a directory without a handshake: for a resumed persistent request, whose
    /// client proved access when it asked.
    pub fn grant(&mut self, dir: PathBuf, read: bool, write: bool) {
        let g = self.grants.entry(dir).or_default();
        g.0 |= read;
        g.1 |= write;
    }

    async fn forget(&mut self, dir: &Path) {
        if let Some(Pending { read: Some((file, _)), .. }) = self.pending.remove(dir) {
            let _ = tokio::fs::remove_file(file).await;
        }
    }
}

impl Drop for Dda {
    fn drop(&mut self) {
        // A client that left mid-handshake: remove the files this node wrote.
        for p in self.pending.values() {
            if let Some((file, _)) = &p.read {
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handshake_grants_only_what_was_shown() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_owned();
        let mut dda = Dda::default();
        let file = format!("{d}/a.bin");
        assert_eq!(dda.check(&file, false).await.unwrap_err().code, 25);

        let req = Message::new("TestDDARequest").with("Directory", &d).with("WantReadDirectory", "True");
        let reply = dda.request(&req).await.unwrap();
        let read = reply.get("ReadFilename").unwrap().to_owned();
        let content = std::fs::read_to_string(&read).unwrap();
        // A wrong answer grants nothing.
        let bad = Message::new("TestDDAResponse").with("Directory", &d).with("ReadContent", "guess");
        assert_eq!(dda.response(&bad).await.unwrap().get("ReadDirectoryAllowed"), Some("false"));
        assert!(!Path::new(&read).exists(), "the check file is removed");
        assert!(dda.check(&file, false).await.is_err());

        let reply = dda.request(&req).await.unwrap();
        let content2 = std::fs::read_to_string(reply.get("ReadFilename").unwrap()).unwrap();
        assert_ne!(content, content2);
        let good = Message::new("TestDDAResponse").with("Directory", &d).with("ReadContent", &content2);
        let done = dda.response(&good).await.unwrap();
        assert_eq!(done.get("ReadDirectoryAllowed"), Some("true"));
        assert_eq!(done.get("WriteDirectoryAllowed"), Some("false"));
        assert!(dda.check(&file, false).await.is_ok());
        assert_eq!(dda.check(&file, true).await.unwrap_err().code, 25, "reading does not grant writing");

        let req = Message::new("TestDDARequest").with("Directory", &d).with("WantWriteDirectory", "true");
        let reply = dda.request(&req).await.unwrap();
        std::fs::write(reply.get("WriteFilename").unwrap(), reply.get("ContentToWrite").unwrap()).unwrap();
        let resp = Message::new("TestDDAResponse").with("Directory", &d);
        assert_eq!(dda.response(&resp).await.unwrap().get("WriteDirectoryAllowed"), Some("true"));
        assert!(dda.check(&file, true).await.is_ok());

        let none = Message::new("TestDDAResponse").with("Directory", &d);
        assert_eq!(dda.response(&none).await.unwrap_err().code, 8, "no handshake pending");
        let rel = Message::new("TestDDARequest").with("Directory", "relative/dir");
        assert_eq!(dda.request(&rel).await.unwrap_err().code, 8);
    }
}
