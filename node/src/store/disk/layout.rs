//! Where slots live inside a slot file: groups of [`GROUP_SLOTS`] slots, each group one
//! page of headers followed by the group's bodies.
//!
//! ```text
//! group g (group_bytes(kind) = 4096 + 40 × body_stride(kind) bytes, at g × group_bytes):
//!   offset 0      header page, 8 sectors of 512 bytes; sector s holds the headers of
//!                 slots 40g+5s … 40g+5s+4 (5 × 96 = 480 bytes, then 32 zero bytes)
//!   offset 4096   body of slot 40g+0   (body_stride bytes)
//!                 body of slot 40g+1   …
//!                 body of slot 40g+39
//! body_stride = block length rounded up to 512: 33280 (CHK), 1536 (SSK)
//! ```
//!
//! Headers are gathered so that the scan at open reads one page per 40 slots instead of
//! touching every slot (a cold open of a large store would otherwise read much of the file
//! through readahead). No header crosses a 512-byte sector, so rewriting one (an LRU stamp)
//! cannot be torn by a power cut. The last group may be partial: its whole header page,
//! then only the bodies of the slots that exist.

use pamphlet_crypto::BlockKind;

use super::slot::SLOT_HEADER_LEN;

/// Headers per 512-byte sector of a header page.
pub const HEADERS_PER_SECTOR: u32 = 5;
/// Slots per group (one header page of 8 sectors).
pub const GROUP_SLOTS: u32 = 40;
/// Bytes of a group's header page.
pub const HEADER_PAGE: u64 = 4096;
/// Bodies are padded to a multiple of this (a sector), so body writes are sector-aligned.
pub const BODY_ALIGN: u64 = 512;

const _: () = assert!(HEADERS_PER_SECTOR as usize * SLOT_HEADER_LEN <= 512);
const _: () = assert!((GROUP_SLOTS / HEADERS_PER_SECTOR) as u64 * 512 <= HEADER_PAGE);

/// Bytes between the starts of two consecutive bodies of `kind`.
pub const fn body_stride(kind: BlockKind) -> u64 {
    (kind.block_len() as u64).div_ceil(BODY_ALIGN) * BODY_ALIGN
}

/// Bytes of one full group of `kind`.
pub const fn group_bytes(kind: BlockKind) -> u64 {
    HEADER_PAGE + GROUP_SLOTS as u64 * body_stride(kind)
}

/// Offset of slot `slot`'s header.
pub fn header_offset(kind: BlockKind, slot: u32) -> u64 {
    u64::from(slot / GROUP_SLOTS) * group_bytes(kind) + in_page(slot % GROUP_SLOTS)
}

/// Offset of the `i`-th header of a group inside its header page.
pub(crate) fn in_page(i: u32) -> u64 {
    u64::from(i / HEADERS_PER_SECTOR) * 512 + u64::from(i % HEADERS_PER_SECTOR) * SLOT_HEADER_LEN as u64
}

/// Offset of slot `slot`'s body (the ciphertext).
pub fn body_offset(kind: BlockKind, slot: u32) -> u64 {
    u64::from(slot / GROUP_SLOTS) * group_bytes(kind) + HEADER_PAGE + u64::from(slot % GROUP_SLOTS) * body_stride(kind)
}

/// Length of a file of `slots` slots of `kind`.
pub fn file_len(kind: BlockKind, slots: u32) -> u64 {
    let full = u64::from(slots / GROUP_SLOTS) * group_bytes(kind);
    match slots % GROUP_SLOTS {
        0 => full,
        rest => full + HEADER_PAGE + u64::from(rest) * body_stride(kind),
    }
}

/// The most slots of `kind` that fit in `bytes` (whole slots, header pages included).
/// Also how many whole slots a file of length `bytes` holds.
pub fn slots_in(kind: BlockKind, bytes: u64) -> u32 {
    let full = bytes / group_bytes(kind);
    let rest = bytes % group_bytes(kind);
    let partial = if rest > HEADER_PAGE { (rest - HEADER_PAGE) / body_stride(kind) } else { 0 };
    u32::try_from(full * u64::from(GROUP_SLOTS) + partial).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_consistent() {
        for kind in [BlockKind::Chk, BlockKind::Ssk] {
            assert!(body_stride(kind) >= kind.block_len() as u64);
            assert_eq!(body_stride(kind) % BODY_ALIGN, 0);
            for n in [0u32, 1, 39, 40, 41, 80, 100, 1000] {
                assert_eq!(slots_in(kind, file_len(kind, n)), n, "{kind:?} {n}");
                assert_eq!(slots_in(kind, file_len(kind, n + 1) - 1), n, "{kind:?} {n}: one byte short");
                if n > 0 {
                    let last = n - 1;
                    assert_eq!(body_offset(kind, last) + body_stride(kind), file_len(kind, n));
                    assert!(header_offset(kind, last) + SLOT_HEADER_LEN as u64 <= body_offset(kind, last));
                }
            }
            // Headers stay inside their page and never cross a sector; bodies follow.
            for slot in 0..2 * GROUP_SLOTS {
                let h = header_offset(kind, slot);
                assert_eq!(h / 512, (h + SLOT_HEADER_LEN as u64 - 1) / 512, "slot {slot} crosses a sector");
                assert!(h % group_bytes(kind) + (SLOT_HEADER_LEN as u64) <= HEADER_PAGE);
                if slot > 0 {
                    assert!(
                        header_offset(kind, slot - 1) + SLOT_HEADER_LEN as u64 <= h || slot.is_multiple_of(GROUP_SLOTS)
                    );
                }
            }
            assert_eq!(header_offset(kind, GROUP_SLOTS), group_bytes(kind));
            assert_eq!(body_offset(kind, 1) - body_offset(kind, 0), body_stride(kind));
        }
        assert_eq!(body_stride(BlockKind::Chk), 33280);
        assert_eq!(body_stride(BlockKind::Ssk), 1536);
    }
}
