//! Writing a store chunk by chunk (used by the MAF import).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use zarrs::array::{Array, ArrayMetadata};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::{Bytes, StoreKey, WritableStorageTraits};

use super::StoreError;
use super::chunk_record::RECORD_ATTR;
use super::layout::{self, CHUNK_ROWS, FILL_BYTE};
use super::unsynced::UnsyncedStore;

/// A store directory being written. Chunks go out as they are finished; the metadata is
/// written last, so an interrupted import leaves no store that looks complete.
pub(crate) struct StoreWriter {
    path: PathBuf,
    storage: Arc<UnsyncedStore>,
}

impl StoreWriter {
    /// Creates the store directory; it must not exist or be empty.
    pub(crate) fn create(path: &Path) -> Result<Self, StoreError> {
        let io_error = |err: &dyn std::fmt::Display| StoreError::Storage {
            path: path.to_path_buf(),
            reason: format!("cannot create: {err}"),
        };
        if path.exists() {
            let mut entries = std::fs::read_dir(path).map_err(|err| io_error(&err))?;
            if entries.next().is_some() {
                return Err(StoreError::OutputExists {
                    path: path.to_path_buf(),
                });
            }
        }
        std::fs::create_dir_all(path).map_err(|err| io_error(&err))?;
        let storage = Arc::new(UnsyncedStore::new(
            FilesystemStore::new(path).map_err(|err| io_error(&err))?,
        ));
        Ok(StoreWriter {
            path: path.to_path_buf(),
            storage,
        })
    }

    /// A handle writing `chrom`'s chunks as they are while `width` species are known.
    pub(crate) fn chunks(&self, chrom: &str, len: u64, width: usize) -> Result<ChunkSink, StoreError> {
        Ok(ChunkSink {
            array: self.array(chrom, len, width)?,
            path: self.path.clone(),
            chrom: chrom.to_string(),
            width,
        })
    }

    /// Rewrites the written chunks in `chunks`, stored `from` species wide, as `to` wide, the new
    /// columns gaps: species first seen after those chunks were flushed.
    pub(crate) fn widen(
        &self,
        chrom: &str,
        len: u64,
        chunks: Range<u64>,
        from: usize,
        to: usize,
    ) -> Result<(), StoreError> {
        let narrow = self.array(chrom, len, from)?;
        let wide = self.chunks(chrom, len, to)?;
        for index in chunks {
            let Some(bytes) = narrow
                .retrieve_chunk_if_exists::<Vec<u8>>(&[index, 0])
                .map_err(|source| self.array_error(chrom, source))?
            else {
                continue;
            };
            let mut widened = vec![FILL_BYTE; CHUNK_ROWS as usize * to];
            for (old, new) in bytes.chunks(from).zip(widened.chunks_mut(to)) {
                new[..from].copy_from_slice(old);
            }
            wide.store(index, widened)?;
        }
        Ok(())
    }

    /// Writes the group, array and species metadata, and each array's record of its chunks,
    /// making the store readable.
    pub(crate) fn finish(&self, chromosomes: &[(String, u64)], species: &[String]) -> Result<(), StoreError> {
        for (chrom, len) in chromosomes {
            let json = layout::array_json(*len, species.len());
            self.set_json(&format!("{chrom}/.zarray"), &json)?;
            let record = self.storage.record(chrom);
            self.set_json(&format!("{chrom}/.zattrs"), &json!({ RECORD_ATTR: record.to_json() }))?;
        }
        self.set_json(".zattrs", &json!({ layout::SPECIES_ATTR: species }))?;
        self.set_json(".zgroup", &json!({"zarr_format": 2}))
    }

    /// The array object for `chrom` at a given width; its metadata is not written.
    fn array(&self, chrom: &str, len: u64, width: usize) -> Result<Array<UnsyncedStore>, StoreError> {
        let metadata_error = |reason: String| StoreError::Metadata {
            path: self.path.clone(),
            key: format!("{chrom}/.zarray"),
            reason,
        };
        let json = layout::array_json(len, width).to_string();
        let (_, _, metadata) = layout::parse_array_json(json.as_bytes()).map_err(metadata_error)?;
        Array::new_with_metadata(self.storage.clone(), &format!("/{chrom}"), ArrayMetadata::V2(metadata))
            .map_err(|err| metadata_error(err.to_string()))
    }

    fn set_json(&self, key: &str, json: &serde_json::Value) -> Result<(), StoreError> {
        let storage_error = |reason: String| StoreError::Storage {
            path: self.path.clone(),
            reason: format!("cannot write `{key}`: {reason}"),
        };
        let text = serde_json::to_vec_pretty(json).map_err(|err| storage_error(err.to_string()))?;
        let store_key = StoreKey::new(key).map_err(|err| storage_error(err.to_string()))?;
        self.storage
            .set(&store_key, Bytes::from(text))
            .map_err(|err| storage_error(err.to_string()))
    }

    fn array_error(&self, chrom: &str, source: zarrs::array::ArrayError) -> StoreError {
        StoreError::Array {
            path: self.path.clone(),
            chrom: chrom.to_string(),
            source: Box::new(source),
        }
    }
}

/// Writes the chunks of one chromosome array at one width.
pub(crate) struct ChunkSink {
    array: Array<UnsyncedStore>,
    path: PathBuf,
    chrom: String,
    width: usize,
}

impl ChunkSink {
    /// Species columns of the chunks this sink writes.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Writes chunk `index`: `CHUNK_ROWS` x `width` bytes, position-major. A chunk of gaps
    /// only (the fill value) is not written.
    pub(crate) fn store(&self, index: u64, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.array
            .store_chunk(&[index, 0], bytes)
            .map_err(|source| StoreError::Array {
                path: self.path.clone(),
                chrom: self.chrom.clone(),
                source: Box::new(source),
            })
    }
}
