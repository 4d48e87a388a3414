//! One preallocated file of fixed-size slots (one area × one block kind).
//!
//! Files are preallocated by writing zeros, not by `set_len` (which makes sparse files on
//! most file systems): a disk that is too small fails at creation or when the limit grows,
//! with a clear error, rather than in the middle of a later put. A zeroed slot is empty
//! (its MAC does not verify).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::DiskError;
use super::slot::{slot_stride, FileId, SLOT_HEADER_LEN};

/// Zeros are written in chunks of this size when a file grows.
const ZERO_CHUNK: usize = 1 << 20;
/// Headers of small slots are scanned by reading this much of the file at once.
const SCAN_CHUNK: usize = 1 << 20;

/// A slot file and its current number of slots.
#[derive(Debug)]
pub(crate) struct SlotFile {
    pub(crate) id: FileId,
    pub(crate) path: PathBuf,
    file: File,
    /// Bytes per slot.
    stride: u64,
    /// Whole slots in the file; a partial trailing slot (an interrupted grow) is ignored
    /// and overwritten by the next grow.
    pub(crate) slots: u32,
    /// Written since the last sync: `flush` syncs only dirty files (an `fdatasync` of a
    /// clean file still costs a device cache flush).
    dirty: AtomicBool,
}

impl SlotFile {
    /// Opens the file for `id` in `dir`, creating it empty if absent (and `writable`).
    pub(crate) fn open(dir: &Path, id: FileId, writable: bool) -> Result<Self, DiskError> {
        let path = dir.join(id.file_name());
        let file = if writable {
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)
        } else {
            OpenOptions::new().read(true).open(&path)
        };
        let file = match file {
            Ok(f) => f,
            Err(e) if !writable && e.kind() == io::ErrorKind::NotFound => {
                return Err(DiskError::io(&path, e));
            }
            Err(e) => return Err(DiskError::io(&path, e)),
        };
        let len = file.metadata().map_err(|e| DiskError::io(&path, e))?.len();
        let stride = slot_stride(id.kind) as u64;
        let slots = u32::try_from(len / stride).unwrap_or(u32::MAX);
        Ok(Self { id, path, file, stride, slots, dirty: AtomicBool::new(false) })
    }

    fn offset(&self, slot: u32) -> u64 {
        u64::from(slot) * self.stride
    }

    fn err(&self, e: io::Error) -> DiskError {
        DiskError::io(&self.path, e)
    }

    /// Calls `f(slot, header_bytes)` for every slot, reading as little as it can: whole
    /// chunks for small slots, one header per read for large ones.
    pub(crate) fn scan_headers(&self, mut f: impl FnMut(u32, &[u8])) -> Result<(), DiskError> {
        let stride = self.stride as usize;
        if stride * 4 <= SCAN_CHUNK {
            let per_chunk = (SCAN_CHUNK / stride) as u32;
            let mut buf = vec![0u8; per_chunk as usize * stride];
            let mut first = 0u32;
            while first < self.slots {
                let n = per_chunk.min(self.slots - first);
                let bytes = &mut buf[..n as usize * stride];
                self.file.read_exact_at(bytes, self.offset(first)).map_err(|e| self.err(e))?;
                for i in 0..n {
                    let at = i as usize * stride;
                    f(first + i, &bytes[at..at + SLOT_HEADER_LEN]);
                }
                first += n;
            }
        } else {
            let mut h = [0u8; SLOT_HEADER_LEN];
            for slot in 0..self.slots {
                self.file.read_exact_at(&mut h, self.offset(slot)).map_err(|e| self.err(e))?;
                f(slot, &h);
            }
        }
        Ok(())
    }

    /// Reads slot `slot` (header and ciphertext, without padding) into `buf`.
    pub(crate) fn read_slot(&self, slot: u32, buf: &mut [u8]) -> Result<(), DiskError> {
        self.file.read_exact_at(buf, self.offset(slot)).map_err(|e| self.err(e))
    }

    /// Writes `bytes` at the start of slot `slot` (a whole entry, or just a header).
    pub(crate) fn write_slot(&self, slot: u32, bytes: &[u8]) -> Result<(), DiskError> {
        self.dirty.store(true, Ordering::Relaxed);
        self.file.write_all_at(bytes, self.offset(slot)).map_err(|e| self.err(e))
    }

    /// Empties slot `slot` by zeroing its header: the MAC no longer verifies, and the nonce
    /// and tag without which the ciphertext cannot be opened are gone.
    pub(crate) fn clear_slot(&self, slot: u32) -> Result<(), DiskError> {
        self.write_slot(slot, &[0u8; SLOT_HEADER_LEN])
    }

    /// `fdatasync`: everything written so far is on stable storage.
    pub(crate) fn sync(&self) -> Result<(), DiskError> {
        self.dirty.store(false, Ordering::Relaxed);
        if let Err(e) = self.file.sync_data() {
            self.dirty.store(true, Ordering::Relaxed);
            return Err(self.err(e));
        }
        Ok(())
    }

    /// Syncs the file if anything was written since the last sync.
    pub(crate) fn sync_if_dirty(&self) -> Result<(), DiskError> {
        if self.dirty.load(Ordering::Relaxed) {
            self.sync()
        } else {
            Ok(())
        }
    }

    /// Grows or shrinks the file to `slots` slots, durably. Growing writes zeros (empty
    /// slots); the caller has moved every live entry out of the tail before shrinking.
    pub(crate) fn set_slots(&mut self, slots: u32) -> Result<(), DiskError> {
        let new_len = u64::from(slots) * self.stride;
        if slots > self.slots {
            let zeros = vec![0u8; ZERO_CHUNK];
            let mut at = self.offset(self.slots);
            while at < new_len {
                let n = (new_len - at).min(ZERO_CHUNK as u64) as usize;
                self.file.write_all_at(&zeros[..n], at).map_err(|e| self.err(e))?;
                at += n as u64;
            }
        }
        self.file.set_len(new_len).map_err(|e| self.err(e))?;
        self.file.sync_all().map_err(|e| self.err(e))?;
        self.slots = slots;
        Ok(())
    }
}
