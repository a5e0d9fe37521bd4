//! Region lists in BED: `chrom start end [name score strand ...]`, 0-based start, exclusive end,
//! separated by tabs or spaces; `#`, `track` and `browser` lines and blank lines are skipped.
//! Plain or gzip, read as a stream ([`BedReader`]).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::input;
use super::maf::Strand;
use super::region::Region;

/// A BED file that cannot be read.
#[derive(Debug, Error)]
#[error("{}{}: {reason}", path.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct BedError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0, and not shown, when the error is of the whole file).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// One region of a BED file and its line, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedRegion {
    /// The region, 0-based half-open.
    pub region: Region,
    /// `Reverse` when the sixth column is `-`.
    pub strand: Strand,
    /// The fourth column, when there is one.
    pub name: Option<String>,
    /// 1-based line in the file.
    pub line: u64,
}

/// The regions of a BED file, read one line at a time: a list of millions of regions is never
/// held in memory by its reader.
pub struct BedReader {
    path: PathBuf,
    reader: Box<dyn BufRead>,
    buf: Vec<u8>,
    line: u64,
}

impl BedReader {
    /// Opens `path` (plain or gzip).
    pub fn open(path: &Path) -> Result<Self, BedError> {
        let reader = input::open(path).map_err(|e| BedError {
            path: path.to_path_buf(),
            line: 0,
            reason: format!("cannot read: {e}"),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            buf: Vec::new(),
            line: 0,
        })
    }

    fn error(&self, reason: String) -> BedError {
        BedError {
            path: self.path.clone(),
            line: self.line,
            reason,
        }
    }

    /// The next region, `None` at the end of the file.
    fn next_region(&mut self) -> Result<Option<BedRegion>, BedError> {
        loop {
            let more = input::read_line(&mut self.reader, &mut self.buf).map_err(|e| BedError {
                path: self.path.clone(),
                line: self.line + 1,
                reason: format!("cannot read: {e}"),
            })?;
            if !more {
                return Ok(None);
            }
            self.line += 1;
            if let Some(region) = self.parse()? {
                return Ok(Some(region));
            }
        }
    }

    /// The region of the current line; `None` for a line that holds none.
    fn parse(&self) -> Result<Option<BedRegion>, BedError> {
        let mut fields = input::fields(&self.buf);
        let Some(chrom) = fields.next() else { return Ok(None) };
        if chrom.starts_with(b"#") || chrom == b"track" || chrom == b"browser" {
            return Ok(None);
        }
        let mut coordinate = |name: &str| {
            let field = fields.next().ok_or_else(|| self.error(format!("no {name} column")))?;
            std::str::from_utf8(field)
                .ok()
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or_else(|| {
                    let field = String::from_utf8_lossy(field);
                    self.error(format!("{name} `{field}` is not a non-negative integer"))
                })
        };
        let (start, end) = (coordinate("start")?, coordinate("end")?);
        if start >= end {
            return Err(self.error(format!("start {start} is not before end {end}")));
        }
        let chrom = String::from_utf8(chrom.to_vec()).map_err(|_| self.error("chromosome is not UTF-8".into()))?;
        let name = fields.next().map(|n| String::from_utf8_lossy(n).into_owned());
        let strand = match fields.nth(1) {
            Some(b"-") => Strand::Reverse,
            // `.` is BED's "no strand".
            Some(b"+" | b".") | None => Strand::Forward,
            Some(other) => {
                let other = String::from_utf8_lossy(other);
                return Err(self.error(format!("strand `{other}` is not +, - or .")));
            }
        };
        Ok(Some(BedRegion {
            region: Region { chrom, start, end },
            strand,
            name,
            line: self.line,
        }))
    }
}

impl Iterator for BedReader {
    type Item = Result<BedRegion, BedError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_region().transpose()
    }
}

/// Reads every region; an empty list is an error, since no window could be cut from it.
pub fn read_bed(path: &Path) -> Result<Vec<BedRegion>, BedError> {
    let regions = BedReader::open(path)?.collect::<Result<Vec<_>, _>>()?;
    if regions.is_empty() {
        return Err(no_regions(path));
    }
    Ok(regions)
}

/// The error of a BED file that holds no region, for every command that needs one.
pub fn no_regions(path: &Path) -> BedError {
    BedError {
        path: path.to_path_buf(),
        line: 0,
        reason: "no regions (only blank, comment, track or browser lines)".into(),
    }
}
