//! The resume directory of a fetch: blocks an interrupted run already had.

use std::path::{Path, PathBuf};

use pamphlet_crypto::ChkBlock;

use super::PipelineError;

/// Blocks already fetched by an interrupted run, one file per block named by its index in
/// arrival order (not by its key, so a directory listing names nothing).
#[derive(Debug)]
pub struct PartialDir {
    dir: PathBuf,
    next: usize,
}

impl PartialDir {
    /// Opens (creating if needed) the resume directory.
    pub fn open(dir: &Path) -> Result<(Self, Vec<ChkBlock>), PipelineError> {
        let err = |source| PipelineError::Partial { path: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut blocks = Vec::new();
        let mut next = 0;
        for entry in std::fs::read_dir(dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            if let Some(i) = entry.file_name().to_str().and_then(|n| n.parse::<usize>().ok()) {
                next = next.max(i + 1);
                // A torn write from a crash is simply not a valid block: skip it.
                if let Ok(block) = std::fs::read(entry.path()).map_err(err).and_then(|b| {
                    ChkBlock::from_bytes(b).map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
                }) {
                    blocks.push(block);
                }
            }
        }
        Ok((Self { dir: dir.to_owned(), next }, blocks))
    }

    pub(super) fn save(&mut self, block: &ChkBlock) -> Result<(), PipelineError> {
        let path = self.dir.join(self.next.to_string());
        self.next += 1;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, block.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| PipelineError::Partial { path: self.dir.clone(), source })
    }

    /// Deletes the directory after the fetch completed.
    pub fn remove(self) -> Result<(), PipelineError> {
        std::fs::remove_dir_all(&self.dir).map_err(|source| PipelineError::Partial { path: self.dir, source })
    }
}
