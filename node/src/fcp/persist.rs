//! `Persistence=forever` requests on disk, so they survive a restart: one record per
//! request in `DIR/fcp/`, and the request's payload beside it.
//!
//! ```text
//! DIR/fcp/<32 hex>.request   JSON Record { version: 1, owner, identifier, request, data, outcome }
//! DIR/fcp/<32 hex>.data      the payload (a put's bytes), checked by its SHA-256 in the record
//! ```
//! The name is a hash of owner and identifier, so one request has one file whatever the
//! identifier holds. Files are written to a temporary name, synced, and renamed (then the
//! directory is synced): a crash leaves the old record or the new one, never half of one.
//! The payload is written before the record that names it.
//!
//! Reading is strict (unknown fields, another version, a message name pamphlet does not
//! start, a name that does not match the record, a payload whose hash differs): such a
//! file is reported in the log and skipped; the node starts without it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::message::Message;
use super::queue::{Key, Owner};
use crate::client::site;

/// Version of the record format this build writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// Requests a record may hold (the ones pamphlet runs).
const REQUEST_NAMES: [&str; 4] = ["ClientPut", "ClientGet", "ClientPutComplexDir", "ClientPutDiskDir"];

/// A message as stored: name and fields (the payload lives in the `.data` file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredMessage {
    /// Message name.
    pub name: String,
    /// Fields in order.
    pub fields: Vec<(String, String)>,
}

impl From<&Message> for StoredMessage {
    fn from(m: &Message) -> Self {
        Self { name: m.name.clone(), fields: m.fields.clone() }
    }
}

impl From<StoredMessage> for Message {
    fn from(s: StoredMessage) -> Self {
        Message { name: s.name, fields: s.fields, data: None }
    }
}

/// The payload's length and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRef {
    /// Bytes.
    pub len: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// One forever request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// Whose request.
    pub owner: Owner,
    /// Its `Identifier`.
    pub identifier: String,
    /// The request as it will be run again (a disk upload is stored as `direct`, with the
    /// bytes read when it was accepted).
    pub request: StoredMessage,
    /// The payload, if the request has one.
    pub data: Option<DataRef>,
    /// The messages that ended it, once it has ended.
    pub outcome: Option<Vec<StoredMessage>>,
}

/// Why a record was skipped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    /// Not a record of this format.
    #[error("it is not a request record: {0}")]
    Malformed(String),
    /// Another version.
    #[error("record version {0} is not supported by this build")]
    Version(u32),
    /// The payload is missing or does not match its hash.
    #[error("its payload is missing or damaged")]
    Data,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file stem of a request: a hash of owner and identifier.
pub fn stem(key: &Key) -> String {
    let owner = match &key.0 {
        Owner::Global => "global\n".to_owned(),
        Owner::Client(c) => format!("client:{c}\n"),
    };
    hex(&site::sha256(format!("{owner}{}", key.1).as_bytes())[..16])
}

/// The directory of forever requests.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    /// Orders "record how it ended" after "forget it": a request removed while it was
    /// finishing must not be written back.
    lock: Arc<Mutex<()>>,
}

/// Writes `bytes` to `path` atomically: temporary file, sync, rename, sync the directory.
/// Owner-only (0600): a record holds the client's insert URI, a private key.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover from a crash may have looser permissions: start afresh.
    let _ = std::fs::remove_file(&tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl Store {
    /// The store in `dir` (created if missing).
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        Ok(Self { dir, lock: Arc::default() })
    }

    fn paths(&self, key: &Key) -> (PathBuf, PathBuf) {
        let s = stem(key);
        (self.dir.join(format!("{s}.request")), self.dir.join(format!("{s}.data")))
    }

    /// Saves a new request and its payload (blocking: call from `spawn_blocking`).
    pub fn save(&self, record: &Record, data: Option<&[u8]>) -> std::io::Result<()> {
        let key = (record.owner.clone(), record.identifier.clone());
        let (req, dat) = self.paths(&key);
        if let Some(d) = data {
            write_atomic(&dat, d)?;
        }
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        write_atomic(&req, &json)
    }

    /// Records how a request ended, if `still()` says it is kept; its payload is no
    /// longer needed.
    pub fn finish(&self, key: &Key, outcome: &[Message], still: impl Fn() -> bool) -> Result<(), RecordError> {
        let _order = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if !still() {
            return Ok(());
        }
        let (req, dat) = self.paths(key);
        let mut record = read_record(&req)?;
        record.outcome = Some(outcome.iter().map(StoredMessage::from).collect());
        record.data = None;
        let json = serde_json::to_vec_pretty(&record).map_err(|e| RecordError::Malformed(e.to_string()))?;
        write_atomic(&req, &json)?;
        let _ = std::fs::remove_file(dat);
        Ok(())
    }

    /// Forgets a request.
    pub fn remove(&self, key: &Key) {
        let _order = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (req, dat) = self.paths(key);
        let _ = std::fs::remove_file(req);
        let _ = std::fs::remove_file(dat);
    }

    /// Reads every record with its payload; damaged ones are logged and skipped.
    pub fn load(&self) -> Vec<(Record, Option<Vec<u8>>)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "request"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for path in paths {
            match self.load_one(&path) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping a persistent FCP request"),
            }
        }
        out
    }

    fn load_one(&self, path: &Path) -> Result<(Record, Option<Vec<u8>>), RecordError> {
        let record = read_record(path)?;
        let key = (record.owner.clone(), record.identifier.clone());
        let (req, dat) = self.paths(&key);
        if req != path {
            return Err(RecordError::Malformed("its name does not match its owner and identifier".into()));
        }
        let data = match &record.data {
            None => None,
            Some(d) => {
                let bytes = std::fs::read(dat).map_err(|_| RecordError::Data)?;
                if bytes.len() as u64 != d.len || hex(&site::sha256(&bytes)) != d.sha256 {
                    return Err(RecordError::Data);
                }
                Some(bytes)
            }
        };
        Ok((record, data))
    }
}

fn read_record(path: &Path) -> Result<Record, RecordError> {
    let bytes = std::fs::read(path)?;
    if bytes.len() > 16 << 20 {
        return Err(RecordError::Malformed("larger than 16 MiB".into()));
    }
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if record.version != RECORD_VERSION {
        return Err(RecordError::Version(record.version));
    }
    if !REQUEST_NAMES.contains(&record.request.name.as_str()) || record.identifier.is_empty() {
        return Err(RecordError::Malformed("not a request pamphlet runs".into()));
    }
    Ok(record)
}

/// A record for a new request.
pub fn record(key: &Key, request: StoredMessage, data: Option<&[u8]>) -> Record {
    Record {
        version: RECORD_VERSION,
        owner: key.0.clone(),
        identifier: key.1.clone(),
        request,
        data: data.map(|d| DataRef { len: d.len() as u64, sha256: hex(&site::sha256(d)) }),
        outcome: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("fcp")).unwrap();
        let key = (Owner::Global, "up/1".to_owned());
        let put = Message::new("ClientPut").with("Identifier", "up/1").with("URI", "CHK@");
        let r = record(&key, StoredMessage::from(&put), Some(b"payload"));
        store.save(&r, Some(b"payload")).unwrap();
        let other = (Owner::Client("c".into()), "g".to_owned());
        let get = Message::new("ClientGet").with("Identifier", "g").with("URI", "KSK@x");
        store.save(&record(&other, StoredMessage::from(&get), None), None).unwrap();
        let loaded = store.load();
        assert_eq!(loaded.len(), 2);
        // Records hold insert URIs: only the owner may read them.
        use std::os::unix::fs::PermissionsExt;
        let req = dir.path().join(format!("fcp/{}.request", stem(&key)));
        assert_eq!(std::fs::metadata(&req).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("fcp")).unwrap().permissions().mode() & 0o777, 0o700);
        let (back, data) = loaded.iter().find(|(r, _)| r.owner == Owner::Global).unwrap();
        assert_eq!((back, data.as_deref()), (&r, Some(b"payload".as_slice())));

        store.finish(&key, &[Message::new("PutSuccessful").with("URI", "CHK@x")], || true).unwrap();
        let (done, data) = store.load().into_iter().find(|(r, _)| r.owner == Owner::Global).unwrap();
        assert_eq!(done.outcome.unwrap()[0].name, "PutSuccessful");
        assert!(data.is_none() && !dir.path().join(format!("fcp/{}.data", stem(&key))).exists());

        // Damage: garbage, an unknown field, another version, a payload that changed, a
        // record under another request's name. Each is skipped; the good one stays.
        let fcp = dir.path().join("fcp");
        std::fs::write(fcp.join("garbage.request"), b"\x00\xffnot json").unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fcp.join(format!("{}.request", stem(&other)))).unwrap()).unwrap();
        json["surprise"] = 1.into();
        json["identifier"] = "u".into();
        let unknown = (Owner::Client("c".into()), "u".to_owned());
        std::fs::write(fcp.join(format!("{}.request", stem(&unknown))), json.to_string()).unwrap();
        let mut v2 = r.clone();
        v2.version = 2;
        std::fs::write(fcp.join(format!("{}.request", stem(&key))), serde_json::to_vec(&v2).unwrap()).unwrap();
        let moved = (Owner::Client("d".into()), "h".to_owned());
        store.save(&record(&moved, StoredMessage::from(&put), Some(b"abc")), Some(b"abc")).unwrap();
        std::fs::write(fcp.join(format!("{}.data", stem(&moved))), b"abd").unwrap();
        let mut elsewhere = record(&other, StoredMessage::from(&get), None);
        elsewhere.identifier = "renamed".into();
        std::fs::write(fcp.join("0000.request"), serde_json::to_vec(&elsewhere).unwrap()).unwrap();
        let odd = (Owner::Global, "x".to_owned());
        let mut evil = record(&odd, StoredMessage::from(&get), None);
        evil.request.name = "Shutdown".into();
        std::fs::write(fcp.join(format!("{}.request", stem(&odd))), serde_json::to_vec(&evil).unwrap()).unwrap();
        let survivors = store.load();
        assert_eq!(survivors.len(), 1, "{survivors:?}");
        assert_eq!(survivors[0].0.identifier, "g");
    }
}
