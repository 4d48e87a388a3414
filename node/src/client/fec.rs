//! Forward error correction: Reed-Solomon over 32 KiB shards (`reed-solomon-simd`).
//!
//! A file of `d` data blocks is cut into segments of at most [`MAX_SEGMENT_DATA`] data blocks,
//! sized as evenly as possible; each segment of `k` data blocks gets `ceil(k · redundancy)`
//! check blocks, and any `k` of its blocks rebuild it. Segments bound the work and memory of
//! one decode (k · 32 KiB) and let a fetch finish segment by segment.

use std::collections::HashMap;

use pamphlet_crypto::CHK_PAYLOAD_LEN;

use super::ClientError;

/// Bytes per shard: one CHK payload.
pub const SHARD_LEN: usize = CHK_PAYLOAD_LEN;
/// Most data blocks per segment (4 MiB of data), as in Hyphanet.
pub const MAX_SEGMENT_DATA: usize = 128;
/// Most blocks (data + check) one segment may have; bounds what a manifest can demand.
pub const MAX_SHARDS: usize = 1024;
/// Default redundancy: half as many check blocks as data blocks, so any third of a
/// segment's blocks can vanish. Hyphanet uses 1.0 (twice the storage); see docs/client.md.
pub const DEFAULT_REDUNDANCY: f64 = 0.5;
/// Largest redundancy accepted (check blocks per data block).
pub const MAX_REDUNDANCY: f64 = 4.0;

/// `(data blocks, check blocks)` for each segment of a file of `blocks` data blocks.
pub fn plan(blocks: usize, redundancy: f64) -> Vec<(usize, usize)> {
    if blocks == 0 {
        return Vec::new();
    }
    let segments = blocks.div_ceil(MAX_SEGMENT_DATA);
    let (base, extra) = (blocks / segments, blocks % segments);
    (0..segments)
        .map(|i| {
            let k = base + usize::from(i < extra);
            let m = (k as f64 * redundancy).ceil() as usize;
            (k, m.min(MAX_SHARDS - k))
        })
        .collect()
}

/// The `m` check shards of a segment's data shards (each [`SHARD_LEN`] bytes).
pub fn encode(data: &[Vec<u8>], m: usize) -> Result<Vec<Vec<u8>>, ClientError> {
    if m == 0 {
        return Ok(Vec::new());
    }
    reed_solomon_simd::encode(data.len(), m, data).map_err(|e| ClientError::Fec(e.to_string()))
}

/// Rebuilds all `k` data shards of a segment from any `k` shards: `data` and `check` map
/// shard index to shard bytes.
pub fn recover(
    k: usize,
    m: usize,
    data: &HashMap<usize, Vec<u8>>,
    check: &HashMap<usize, Vec<u8>>,
) -> Result<Vec<Vec<u8>>, ClientError> {
    if data.len() == k {
        return (0..k).map(|i| data.get(&i).cloned().ok_or(ClientError::Fec("missing shard".into()))).collect();
    }
    if data.len() + check.len() < k {
        return Err(ClientError::Fec(format!("{} of {k} blocks needed to rebuild", data.len() + check.len())));
    }
    let restored =
        reed_solomon_simd::decode(k, m, data.iter().map(|(i, s)| (*i, s)), check.iter().map(|(i, s)| (*i, s)))
            .map_err(|e| ClientError::Fec(e.to_string()))?;
    (0..k)
        .map(|i| {
            data.get(&i).or_else(|| restored.get(&i)).cloned().ok_or(ClientError::Fec("decoder lost a shard".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_balances_segments() {
        assert!(plan(0, 0.5).is_empty());
        assert_eq!(plan(1, 0.5), vec![(1, 1)]);
        assert_eq!(plan(128, 0.5), vec![(128, 64)]);
        assert_eq!(plan(129, 0.5), vec![(65, 33), (64, 32)]);
        assert_eq!(plan(3, 0.0), vec![(3, 0)]);
        let p = plan(1000, 1.0);
        assert_eq!(p.iter().map(|s| s.0).sum::<usize>(), 1000);
        assert!(p.iter().all(|&(k, m)| k <= MAX_SEGMENT_DATA && m == k));
    }

    #[test]
    fn any_k_of_n_rebuild() {
        let k = 4;
        let data: Vec<Vec<u8>> = (0..k).map(|i| vec![i as u8 * 3 + 1; SHARD_LEN]).collect();
        let check = encode(&data, 2).unwrap();
        // Lose data shards 0 and 2, keep both check shards.
        let have_data: HashMap<_, _> = [(1, data[1].clone()), (3, data[3].clone())].into();
        let have_check: HashMap<_, _> = [(0, check[0].clone()), (1, check[1].clone())].into();
        assert_eq!(recover(k, 2, &have_data, &have_check).unwrap(), data);
        // One shard short: a clear error, not garbage.
        let have_check: HashMap<_, _> = [(0, check[0].clone())].into();
        assert!(matches!(recover(k, 2, &have_data, &have_check), Err(ClientError::Fec(_))));
    }
}
