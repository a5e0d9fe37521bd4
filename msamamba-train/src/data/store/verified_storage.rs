//! A store's storage that checks each chunk it hands zarrs against the import's record
//! ([`ChunkRecord`]) of the chunk's array, and, in a zip, each value against the CRC32 of the
//! zip's directory; other values pass through.
//!
//! A checked value is always read whole, even for a partial read: its CRC32 covers all of it.

use std::collections::HashMap;
use std::sync::Arc;

use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytesIterator, ReadableListableStorage, ReadableStorageTraits, StorageError,
    StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
};

use super::chunk_record::{ChunkCheck, ChunkRecord, chunk_of};

/// The wrapped storage, the CRC32 of each of its files when it is a zip (by store key), and per
/// chromosome array, its record.
pub(crate) struct VerifiedStorage {
    inner: ReadableListableStorage,
    zip_crcs: Arc<HashMap<String, u32>>,
    records: HashMap<String, Arc<ChunkRecord>>,
}

impl VerifiedStorage {
    pub(crate) fn new(
        inner: ReadableListableStorage,
        zip_crcs: Arc<HashMap<String, u32>>,
        records: HashMap<String, Arc<ChunkRecord>>,
    ) -> Self {
        VerifiedStorage {
            inner,
            zip_crcs,
            records,
        }
    }

    /// The record and chunk index of `key`, if it names a chunk of a recorded array.
    fn recorded_chunk(&self, key: &StoreKey) -> Option<(&ChunkRecord, u64)> {
        let (array, index) = chunk_of(key.as_str())?;
        Some((self.records.get(array)?.as_ref(), index))
    }
}

impl ReadableStorageTraits for VerifiedStorage {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let zip_crc = self.zip_crcs.get(key.as_str()).copied();
        let recorded = self.recorded_chunk(key);
        if zip_crc.is_none() && recorded.is_none() {
            return self.inner.get_partial_many(key, byte_ranges);
        }
        let bytes = self.inner.get(key)?;
        if let (Some(listed), Some(bytes)) = (zip_crc, &bytes) {
            let found = ChunkRecord::crc32(bytes);
            if found != listed {
                return Err(StorageError::Other(format!(
                    "`{key}` is damaged: its CRC32 is {found:08x}, the zip's directory says {listed:08x}"
                )));
            }
        }
        let check = recorded.map_or(ChunkCheck::AsWritten, |(record, index)| {
            record.check(index, bytes.as_deref())
        });
        let failure = match check {
            ChunkCheck::AsWritten => None,
            ChunkCheck::Damaged { found, recorded } => Some(format!(
                "chunk `{key}` is damaged: its CRC32 is {found:08x}, the import recorded {recorded:08x}"
            )),
            ChunkCheck::Missing => Some(format!("chunk `{key}` is missing: the import wrote it")),
            ChunkCheck::Unrecorded => Some(format!("chunk `{key}` was not written by the import")),
        };
        if let Some(reason) = failure {
            return Err(StorageError::Other(format!("{reason}; import the alignment again")));
        }
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        let parts: Vec<Result<Bytes, StorageError>> = byte_ranges
            .map(|range| {
                let span = range.to_range(size);
                if span.end > size {
                    return Err(StorageError::Other(format!(
                        "chunk `{key}`: {range} is past its {size} bytes"
                    )));
                }
                Ok(bytes.slice(range.to_range_usize(size)))
            })
            .collect();
        Ok(Some(Box::new(parts.into_iter())))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        // Chunks are checked whole, so a partial read saves nothing.
        false
    }
}

impl ListableStorageTraits for VerifiedStorage {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}
