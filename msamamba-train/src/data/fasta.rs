//! One region of a FASTA file: by random access through a samtools-style `.fai` index (noodles;
//! plain or bgzip with its `.gzi`), or by streaming a file without one (plain or gzip).

use std::io;
use std::path::{Path, PathBuf};

use noodles_core::{Position, Region};
use noodles_fasta as fasta;
use thiserror::Error;

use super::input;

/// A FASTA file that cannot supply the requested region.
#[derive(Debug, Error)]
pub enum FastaError {
    /// The file could not be opened, read or decompressed.
    #[error("{}:{line}: cannot read: {source}", path.display())]
    Io {
        /// The FASTA file.
        path: PathBuf,
        /// 1-based line where reading failed (0: opening failed).
        line: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// Sequence text before the first `>` header.
    #[error("{}:{line}: sequence before the first `>` header", path.display())]
    NoHeader {
        /// The FASTA file.
        path: PathBuf,
        /// 1-based line of the stray sequence.
        line: u64,
    },
    /// No record carries any of the accepted names.
    #[error("{}: no record named {}", path.display(), names.join(" or "))]
    NotFound {
        /// The FASTA file.
        path: PathBuf,
        /// The names that were accepted.
        names: Vec<String>,
    },
    /// The record is shorter than the region's end.
    #[error("{}: record `{name}` has {len} bases but the region ends at {end}", path.display())]
    PastEnd {
        /// The FASTA file.
        path: PathBuf,
        /// The record's name.
        name: String,
        /// The record's length.
        len: u64,
        /// The region's 0-based exclusive end.
        end: u64,
    },
}

/// Returns bases `start..end` (0-based, half-open) of the first record whose name (the first word
/// of its header) is one of `names`, as written in the file. With `<path>.fai` present the region
/// is read by random access, so a whole genome costs no more than the region; without, reading
/// streams from the start and stops at the region's end.
pub fn read_region(path: &Path, names: &[&str], start: u64, end: u64) -> Result<Vec<u8>, FastaError> {
    let fai = fasta::fs::read_associated_index(path);
    match fai {
        Ok(index) => read_indexed(path, index, names, start, end),
        Err(err) if err.kind() == io::ErrorKind::NotFound => read_streaming(path, names, start, end),
        Err(source) => Err(FastaError::Io {
            path: path.with_added_extension("fai"),
            line: 0,
            source,
        }),
    }
}

fn read_indexed(
    path: &Path,
    index: fasta::fai::Index,
    names: &[&str],
    start: u64,
    end: u64,
) -> Result<Vec<u8>, FastaError> {
    let io_error = |source| FastaError::Io {
        path: path.to_path_buf(),
        line: 0,
        source,
    };
    let (name, len) = index
        .as_ref()
        .iter()
        .find_map(|record| {
            let name = names.iter().find(|name| record.name()[..] == *name.as_bytes())?;
            Some((name.to_string(), record.length()))
        })
        .ok_or_else(|| FastaError::NotFound {
            path: path.to_path_buf(),
            names: names.iter().map(|name| name.to_string()).collect(),
        })?;
    if end > len {
        return Err(FastaError::PastEnd {
            path: path.to_path_buf(),
            name,
            len,
            end,
        });
    }
    if start >= end {
        return Ok(Vec::new());
    }
    // Both bounds are at least 1 after the checks above.
    let position = |p: u64| Position::new(p as usize).expect("1-based position");
    let region = Region::new(name, position(start + 1)..=position(end));
    let mut reader = fasta::io::indexed_reader::Builder::default()
        .set_index(index)
        .build_from_path(path)
        .map_err(io_error)?;
    let record = reader.query(&region).map_err(io_error)?;
    Ok(record.sequence().as_ref().to_vec())
}

fn read_streaming(path: &Path, names: &[&str], start: u64, end: u64) -> Result<Vec<u8>, FastaError> {
    let mut line_no = 0;
    let io_error = |line, source| FastaError::Io {
        path: path.to_path_buf(),
        line,
        source,
    };
    let mut reader = input::open(path).map_err(|err| io_error(0, err))?;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    // Name and bases read so far of the wanted record, once its header has been seen.
    let mut found: Option<(String, u64)> = None;
    let mut seen_header = false;
    loop {
        line_no += 1;
        if !input::read_line(&mut reader, &mut buf).map_err(|err| io_error(line_no, err))? {
            break;
        }
        if let Some(header) = buf.strip_prefix(b">") {
            if found.is_some() {
                break;
            }
            seen_header = true;
            let name = String::from_utf8_lossy(input::fields(header).next().unwrap_or_default());
            if names.contains(&name.as_ref()) {
                found = Some((name.into_owned(), 0));
            }
            continue;
        }
        let Some((_, offset)) = found.as_mut() else {
            if !seen_header && input::fields(&buf).next().is_some() {
                return Err(FastaError::NoHeader {
                    path: path.to_path_buf(),
                    line: line_no,
                });
            }
            continue;
        };
        for bases in input::fields(&buf) {
            let len = bases.len() as u64;
            // Clip this run of bases to the region; the subtractions cannot underflow because
            // each bound is clamped into [offset, offset + len].
            let from = start.clamp(*offset, *offset + len) - *offset;
            let to = end.clamp(*offset, *offset + len) - *offset;
            out.extend(bases.iter().take(to as usize).skip(from as usize));
            *offset += len;
        }
        if *offset >= end {
            return Ok(out);
        }
    }
    match found {
        Some((name, len)) => Err(FastaError::PastEnd {
            path: path.to_path_buf(),
            name,
            len,
            end,
        }),
        None => Err(FastaError::NotFound {
            path: path.to_path_buf(),
            names: names.iter().map(|name| name.to_string()).collect(),
        }),
    }
}

/// Reads one record's bases front to back, a piece at a time, so that a whole chromosome can be
/// consumed in order without holding it (the import's target row).
pub struct RecordCursor {
    path: PathBuf,
    reader: Box<dyn io::BufRead>,
    line: u64,
    name: String,
    /// The current sequence line and how much of it has been handed out.
    buf: Vec<u8>,
    used: usize,
    /// Bases handed out so far.
    served: u64,
    /// The record's end (next header or end of file) has been reached.
    ended: bool,
}

impl RecordCursor {
    /// Opens `path` at the first record whose name is one of `names`.
    pub fn open(path: &Path, names: &[&str]) -> Result<Self, FastaError> {
        let io_error = |line, source| FastaError::Io {
            path: path.to_path_buf(),
            line,
            source,
        };
        let mut reader = input::open(path).map_err(|err| io_error(0, err))?;
        let mut buf = Vec::new();
        let mut line = 0;
        let mut seen_header = false;
        loop {
            line += 1;
            if !input::read_line(&mut reader, &mut buf).map_err(|err| io_error(line, err))? {
                return Err(FastaError::NotFound {
                    path: path.to_path_buf(),
                    names: names.iter().map(|name| name.to_string()).collect(),
                });
            }
            if let Some(header) = buf.strip_prefix(b">") {
                seen_header = true;
                let name = String::from_utf8_lossy(input::fields(header).next().unwrap_or_default());
                if names.contains(&name.as_ref()) {
                    return Ok(RecordCursor {
                        path: path.to_path_buf(),
                        reader,
                        line,
                        name: name.into_owned(),
                        buf: Vec::new(),
                        used: 0,
                        served: 0,
                        ended: false,
                    });
                }
            } else if !seen_header && input::fields(&buf).next().is_some() {
                return Err(FastaError::NoHeader {
                    path: path.to_path_buf(),
                    line,
                });
            }
        }
    }

    /// Appends the next `n` bases of the record to `out`, as written in the file.
    pub fn read(&mut self, n: u64, out: &mut Vec<u8>) -> Result<(), FastaError> {
        let end = self.served + n;
        while self.served < end {
            if self.used == self.buf.len() && !self.next_line()? {
                return Err(FastaError::PastEnd {
                    path: self.path.clone(),
                    name: self.name.clone(),
                    len: self.served,
                    end,
                });
            }
            let take = (self.buf.len() - self.used).min((end - self.served) as usize);
            out.extend_from_slice(&self.buf[self.used..self.used + take]);
            self.used += take;
            self.served += take as u64;
        }
        Ok(())
    }

    /// Loads the next sequence line's bases; false at the record's end.
    fn next_line(&mut self) -> Result<bool, FastaError> {
        let mut line = Vec::new();
        while !self.ended {
            self.line += 1;
            let more = input::read_line(&mut self.reader, &mut line).map_err(|source| FastaError::Io {
                path: self.path.clone(),
                line: self.line,
                source,
            })?;
            if !more || line.starts_with(b">") {
                self.ended = true;
                break;
            }
            self.buf.clear();
            input::fields(&line).for_each(|bases| self.buf.extend_from_slice(bases));
            self.used = 0;
            if !self.buf.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
