//! Variant records from a VCF (plain, gzip or bgzip; `-` for standard input), read one at a time
//! with noodles, with errors naming file and line; or those of some regions of an indexed,
//! bgzipped VCF ([`RegionRecords`]).

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use noodles_vcf::{self as vcf, variant::RecordBuf};
use thiserror::Error;

use crate::data::input;
use crate::data::vcf_index::read_index;
use crate::data::vcf_regions::RegionRecords;

/// A VCF that cannot be read.
#[derive(Debug, Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct VcfError {
    /// The file (`<stdin>` for standard input).
    pub path: PathBuf,
    /// 1-based line (0 when the file cannot be opened).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// Counts the lines consumed through it, so that noodles' errors can name the line.
struct LineCounter<R> {
    inner: R,
    lines: u64,
}

impl<R: BufRead> io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            self.lines += buf[..amt.min(buf.len())].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        self.inner.consume(amt)
    }
}

/// Why text starting with `start` is no VCF, if it is not: noodles says only "empty input"
/// for anything before a `##fileformat` line.
fn not_a_vcf(start: &[u8]) -> Option<String> {
    const EXPECTED: &str = "a VCF starts with a header line `##fileformat=VCFv4.x`";
    if start.is_empty() {
        return Some(format!("the file is empty; {EXPECTED}"));
    }
    // What is buffered may end inside the first line (a pipe's first write can be short).
    let header = b"##fileformat=".as_slice();
    if start.starts_with(header) || header.starts_with(start) {
        return None;
    }
    let line = start.split(|&b| b == b'\n').next().unwrap_or(start);
    let binary = format!("not a VCF: binary data, not text ({EXPECTED})");
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        // A character cut at the end of what is buffered is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&line[..e.valid_up_to()]).unwrap_or_default(),
        Err(_) => return Some(binary),
    };
    if text.contains('\0') {
        return Some(binary);
    }
    let text: String = text.trim_end().chars().take(40).collect();
    Some(format!("not a VCF: no header ({EXPECTED}; the first line is `{text}`)"))
}

/// Where records come from.
enum Records {
    /// The whole file, line by line.
    Stream(vcf::io::Reader<LineCounter<Box<dyn BufRead>>>),
    /// Some regions, through the index; records are counted, since lines are not known.
    Regions { records: Box<RegionRecords>, read: u64 },
}

/// A VCF read record by record: only the header and the current record are in memory.
pub struct VcfReader {
    path: PathBuf,
    records: Records,
    header: vcf::Header,
}

impl VcfReader {
    /// Opens `path` (`-`: standard input) and reads its header.
    pub fn open(path: &Path) -> Result<Self, VcfError> {
        let stdin = path == Path::new("-");
        let name = if stdin {
            PathBuf::from("<stdin>")
        } else {
            path.to_path_buf()
        };
        let error = |line, reason: String| VcfError {
            path: name.clone(),
            line,
            reason,
        };
        let inner = if stdin { input::open_stdin() } else { input::open(path) }
            .map_err(|e| error(0, format!("cannot read: {e}")))?;
        Self::new(name, inner)
    }

    /// Reads the header of the VCF text `inner` (decompressed), named `name` in messages.
    pub fn new(name: PathBuf, mut inner: Box<dyn BufRead>) -> Result<Self, VcfError> {
        let start = inner.fill_buf().map_err(|e| VcfError {
            path: name.clone(),
            line: 1,
            reason: format!("cannot read: {e}"),
        })?;
        if let Some(reason) = not_a_vcf(start) {
            return Err(VcfError {
                path: name,
                line: 1,
                reason,
            });
        }
        let mut reader = vcf::io::Reader::new(LineCounter { inner, lines: 0 });
        match reader.read_header() {
            Ok(header) => Ok(Self {
                path: name,
                records: Records::Stream(reader),
                header,
            }),
            Err(e) => Err(VcfError {
                line: reader.get_ref().lines + 1,
                path: name,
                reason: format!("bad header: {e}"),
            }),
        }
    }

    /// Opens the bgzipped VCF `path` and its index (`.tbi` or `.csi` beside it) to read the
    /// records whose POS lies in `regions`. Returns the regions on chromosomes the index does
    /// not know as well.
    pub fn open_regions(
        path: &Path,
        regions: &[noodles_core::Region],
    ) -> anyhow::Result<(Self, Vec<noodles_core::Region>)> {
        let index = read_index(path)?;
        let (records, header, unknown) = RegionRecords::open(path, index, regions).map_err(|e| VcfError {
            path: path.to_path_buf(),
            line: 1,
            reason: format!("cannot read its header: {e}"),
        })?;
        let reader = Self {
            // Errors count records of the regions, not lines.
            path: PathBuf::from(format!("{} (--regions), record", path.display())),
            records: Records::Regions {
                records: Box::new(records),
                read: 0,
            },
            header,
        };
        Ok((reader, unknown))
    }

    /// The file's header.
    pub fn header(&self) -> &vcf::Header {
        &self.header
    }

    /// The file, for messages (`<stdin>` for standard input).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next record into `record` and returns its 1-based line (in region mode, its
    /// 1-based number among the regions' records); `None` at the end.
    pub fn read(&mut self, record: &mut RecordBuf) -> Result<Option<u64>, VcfError> {
        let (line, result) = match &mut self.records {
            Records::Stream(reader) => {
                let line = reader.get_ref().lines + 1;
                (line, reader.read_record_buf(&self.header, record).map(|n| n > 0))
            }
            Records::Regions { records, read } => {
                *read += 1;
                (*read, records.read(&self.header, record))
            }
        };
        match result {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(line)),
            Err(e) => Err(self.error(line, format!("bad record: {e}"))),
        }
    }

    /// An error at `line` of this file.
    pub fn error(&self, line: u64, reason: String) -> VcfError {
        VcfError {
            path: self.path.clone(),
            line,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_read_cut_inside_the_fileformat_line_is_not_taken_for_a_missing_header() {
        assert_eq!(not_a_vcf(b"##file"), None);
        assert_eq!(not_a_vcf(b"##fileformat=VCFv4.2\n#CHROM"), None);
        assert!(not_a_vcf(b"#CHROM\tPOS\n").unwrap().contains("no header"));
        assert!(not_a_vcf(b"\x1f\x8b\x08\0\0").unwrap().contains("binary"));
        // A multi-byte character cut at the end of the buffer is still text.
        assert!(
            not_a_vcf("chr1 é".as_bytes().split_last().unwrap().1)
                .unwrap()
                .contains("no header")
        );
    }
}
