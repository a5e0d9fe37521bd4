//! What the import wrote to a chromosome array: which chunks, and the CRC32 of each one's stored
//! bytes, kept in the array's `.zattrs`. A reader checks every chunk against it, so a damaged
//! chunk (which blosc may decode to wrong bases without complaint), a deleted one (which would
//! read as gaps) or one the import did not write is an error, not a wrong window.
//!
//! Compact for genome-scale arrays: the written chunks as ranges of indices, and their CRC32s as
//! one base64 string of little-endian `u32`s in index order.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Attribute of a chromosome array's `.zattrs` holding its record.
pub const RECORD_ATTR: &str = "written_chunks";

/// The chunks of one array and their CRC32s.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Runs of consecutive chunk indices `[start, end)`, ascending, each with the index in `crc`
    /// of its first chunk's CRC32.
    runs: Vec<(u64, u64, usize)>,
    crc: Vec<u32>,
}

/// What a chunk's stored bytes say against the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkCheck {
    /// As the import left it: written and unchanged, or never written and absent.
    AsWritten,
    /// Written by the import, and changed since: its CRC32 and the one recorded.
    Damaged { found: u32, recorded: u32 },
    /// Written by the import, and gone.
    Missing,
    /// Present, but the import wrote no such chunk.
    Unrecorded,
}

/// The array and chunk index a chunk key (`chrom/i.0`, as the import writes them) names.
pub fn chunk_of(key: &str) -> Option<(&str, u64)> {
    let (array, chunk) = key.rsplit_once('/')?;
    let (index, _) = chunk.split_once('.')?;
    Some((array, index.parse().ok()?))
}

impl ChunkRecord {
    /// The record of `chunks`: chunk index to CRC32 of its stored bytes.
    pub fn new(chunks: &BTreeMap<u64, u32>) -> Self {
        let mut record = ChunkRecord::default();
        for (&index, &crc) in chunks {
            match record.runs.last_mut() {
                Some((_, end, _)) if *end == index => *end += 1,
                _ => record.runs.push((index, index + 1, record.crc.len())),
            }
            record.crc.push(crc);
        }
        record
    }

    /// The CRC32 of its stored bytes.
    pub fn crc32(bytes: &[u8]) -> u32 {
        crc32fast::hash(bytes)
    }

    /// The recorded CRC32 of chunk `index`, if the import wrote it.
    fn recorded(&self, index: u64) -> Option<u32> {
        let run = self
            .runs
            .partition_point(|&(start, _, _)| start <= index)
            .checked_sub(1)?;
        let (start, end, offset) = self.runs[run];
        (index < end).then(|| self.crc[offset + (index - start) as usize])
    }

    /// Checks chunk `index`, whose stored bytes are `bytes` (`None`: no such chunk).
    pub fn check(&self, index: u64, bytes: Option<&[u8]>) -> ChunkCheck {
        match (self.recorded(index), bytes) {
            (None, None) => ChunkCheck::AsWritten,
            (None, Some(_)) => ChunkCheck::Unrecorded,
            (Some(_), None) => ChunkCheck::Missing,
            (Some(recorded), Some(bytes)) => match Self::crc32(bytes) {
                found if found == recorded => ChunkCheck::AsWritten,
                found => ChunkCheck::Damaged { found, recorded },
            },
        }
    }

    /// The runs of written chunks, `[start, end)` in chunk indices.
    pub fn written(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|&(start, end, _)| (start, end))
    }

    /// The record as the value of [`RECORD_ATTR`].
    pub fn to_json(&self) -> Value {
        let bytes: Vec<u8> = self.crc.iter().flat_map(|crc| crc.to_le_bytes()).collect();
        json!({
            "ranges": self.runs.iter().map(|&(start, end, _)| [start, end]).collect::<Vec<_>>(),
            "crc32": STANDARD.encode(bytes),
        })
    }

    /// Reads an array's `.zattrs`: its record, or `None` for an array written without one.
    pub fn from_attributes(text: &[u8]) -> Result<Option<Self>, String> {
        let attributes: Value = serde_json::from_slice(text).map_err(|err| err.to_string())?;
        let Some(value) = attributes.get(RECORD_ATTR) else {
            return Ok(None);
        };
        let bad = |what: &str| format!("`{RECORD_ATTR}`: {what}");
        let ranges = value
            .get("ranges")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `ranges` list"))?;
        let crc = value
            .get("crc32")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `crc32` string"))?;
        let crc = STANDARD.decode(crc).map_err(|err| bad(&format!("`crc32`: {err}")))?;
        if crc.len() % 4 != 0 {
            return Err(bad("`crc32` is not a whole number of 4-byte values"));
        }
        let crc: Vec<u32> = crc
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut record = ChunkRecord::default();
        let mut offset = 0;
        for range in ranges {
            let (Some(start), Some(end)) = (
                range.get(0).and_then(Value::as_u64),
                range.get(1).and_then(Value::as_u64),
            ) else {
                return Err(bad(&format!("range {range} is not [start, end]")));
            };
            let after_last = record.runs.last().is_none_or(|&(_, last_end, _)| last_end < start);
            if start >= end || !after_last {
                return Err(bad(&format!("range {range} is empty or not after the one before")));
            }
            record.runs.push((start, end, offset));
            offset += (end - start) as usize;
        }
        if offset != crc.len() {
            return Err(bad(&format!("{offset} chunks in `ranges`, {} CRC32s", crc.len())));
        }
        record.crc = crc;
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (BTreeMap<u64, u32>, ChunkRecord) {
        let chunks: BTreeMap<u64, u32> = [(0, 11), (1, 12), (2, 13), (7, 17), (9, 19), (10, 20)].into();
        let record = ChunkRecord::new(&chunks);
        (chunks, record)
    }

    #[test]
    fn a_record_reads_back_from_its_attribute() {
        let (chunks, record) = sample();
        let text = json!({ RECORD_ATTR: record.to_json(), "other": 1 }).to_string();
        let read = ChunkRecord::from_attributes(text.as_bytes()).unwrap().unwrap();
        assert_eq!(read, record);
        assert_eq!(read.written().collect::<Vec<_>>(), [(0, 3), (7, 8), (9, 11)]);
        for index in 0..12 {
            assert_eq!(read.recorded(index), chunks.get(&index).copied(), "chunk {index}");
        }
        assert_eq!(ChunkRecord::from_attributes(b"{}").unwrap(), None);
    }

    #[test]
    fn damaged_missing_and_unrecorded_chunks_are_told_apart() {
        let bytes = b"chunk bytes".as_slice();
        let record = ChunkRecord::new(&[(3, ChunkRecord::crc32(bytes))].into());
        assert_eq!(record.check(3, Some(bytes)), ChunkCheck::AsWritten);
        assert_eq!(record.check(4, None), ChunkCheck::AsWritten);
        assert!(matches!(
            record.check(3, Some(b"chunk bytez")),
            ChunkCheck::Damaged { .. }
        ));
        assert_eq!(record.check(3, None), ChunkCheck::Missing);
        assert_eq!(record.check(4, Some(bytes)), ChunkCheck::Unrecorded);
    }

    #[test]
    fn a_malformed_record_is_refused() {
        for bad in [
            r#"{"written_chunks": {"ranges": [[0, 2]], "crc32": "AAAAAA=="}}"#,
            r#"{"written_chunks": {"ranges": [[2, 1]], "crc32": ""}}"#,
            r#"{"written_chunks": {"ranges": [[0, 1], [0, 1]], "crc32": "AAAAAAAAAAA="}}"#,
            r#"{"written_chunks": {"crc32": ""}}"#,
            r#"{"written_chunks": {"ranges": [], "crc32": "!"}}"#,
        ] {
            assert!(ChunkRecord::from_attributes(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
