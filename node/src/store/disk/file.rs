//! One preallocated file of fixed-size slots (one area × one block kind), laid out as in
//! `layout.rs`.
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
use super::layout;
use super::slot::{FileId, SLOT_HEADER_LEN};

/// Zeros are written in chunks of this size when a file grows.
const ZERO_CHUNK: usize = 1 << 20;

/// A slot file and its current number of slots.
#[derive(Debug)]
pub(crate) struct SlotFile {
    pub(crate) id: FileId,
    pub(crate) path: PathBuf,
    file: File,
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
        let slots = layout::slots_in(id.kind, len);
        Ok(Self { id, path, file, slots, dirty: AtomicBool::new(false) })
    }

    fn err(&self, e: io::Error) -> DiskError {
        DiskError::io(&self.path, e)
    }

    /// Calls `f(slot, header_bytes)` for every slot, reading one header page per group.
    pub(crate) fn scan_headers(&self, mut f: impl FnMut(u32, &[u8])) -> Result<(), DiskError> {
        let mut page = vec![0u8; layout::HEADER_PAGE as usize];
        let mut first = 0u32;
        while first < self.slots {
            let n = layout::GROUP_SLOTS.min(self.slots - first);
            let used = (layout::in_page(n - 1) as usize + SLOT_HEADER_LEN).min(page.len());
            let bytes = &mut page[..used];
            self.file.read_exact_at(bytes, layout::header_offset(self.id.kind, first)).map_err(|e| self.err(e))?;
            for i in 0..n {
                let h = layout::in_page(i) as usize;
                f(first + i, &bytes[h..h + SLOT_HEADER_LEN]);
            }
            first += n;
        }
        Ok(())
    }

    /// Reads slot `slot`'s header.
    pub(crate) fn read_header(&self, slot: u32, header: &mut [u8; SLOT_HEADER_LEN]) -> Result<(), DiskError> {
        self.file.read_exact_at(header, layout::header_offset(self.id.kind, slot)).map_err(|e| self.err(e))
    }

    /// Reads slot `slot`'s body (the ciphertext, block length) into `body`.
    pub(crate) fn read_body(&self, slot: u32, body: &mut [u8]) -> Result<(), DiskError> {
        self.file.read_exact_at(body, layout::body_offset(self.id.kind, slot)).map_err(|e| self.err(e))
    }

    /// Writes a whole entry: the body, then the header that makes it visible to a scan.
    /// (Without a sync in between, the disk may persist them in either order; a header
    /// whose body did not make it fails the AEAD check at read and is dropped.)
    pub(crate) fn write_entry(&self, slot: u32, header: &[u8; SLOT_HEADER_LEN], body: &[u8]) -> Result<(), DiskError> {
        self.dirty.store(true, Ordering::Relaxed);
        self.file.write_all_at(body, layout::body_offset(self.id.kind, slot)).map_err(|e| self.err(e))?;
        self.write_header(slot, header)
    }

    /// Writes slot `slot`'s header alone (an LRU stamp, a relocation, a clear).
    pub(crate) fn write_header(&self, slot: u32, header: &[u8; SLOT_HEADER_LEN]) -> Result<(), DiskError> {
        self.dirty.store(true, Ordering::Relaxed);
        self.file.write_all_at(header, layout::header_offset(self.id.kind, slot)).map_err(|e| self.err(e))
    }

    /// Empties slot `slot` by zeroing its header: the MAC no longer verifies, and the nonce
    /// and tag without which the ciphertext cannot be opened are gone.
    pub(crate) fn clear_slot(&self, slot: u32) -> Result<(), DiskError> {
        self.write_header(slot, &[0u8; SLOT_HEADER_LEN])
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

    /// Zeroes the headers of slots `slot..` up to the end of `slot`'s group header page.
    fn zero_headers_from(&self, slot: u32) -> Result<(), DiskError> {
        if slot.is_multiple_of(layout::GROUP_SLOTS) {
            return Ok(());
        }
        let from = layout::header_offset(self.id.kind, slot);
        let page_end = layout::header_offset(self.id.kind, slot - slot % layout::GROUP_SLOTS) + layout::HEADER_PAGE;
        let zeros = vec![0u8; (page_end - from) as usize];
        self.dirty.store(true, Ordering::Relaxed);
        self.file.write_all_at(&zeros, from).map_err(|e| self.err(e))
    }

    /// Grows or shrinks the file to `slots` slots, durably. Growing writes zeros (empty
    /// slots); the caller has moved every live entry out of the tail before shrinking.
    pub(crate) fn set_slots(&mut self, slots: u32) -> Result<(), DiskError> {
        let new_len = layout::file_len(self.id.kind, slots);
        // Headers past the last slot inside a partial group's page must be empty: on a
        // shrink they may hold entries just moved lower (stale duplicates), and on a grow
        // they become live slots.
        self.zero_headers_from(slots.min(self.slots))?;
        if slots > self.slots {
            let zeros = vec![0u8; ZERO_CHUNK];
            let mut at = layout::file_len(self.id.kind, self.slots);
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
