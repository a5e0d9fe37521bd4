//! Region lists in BED: `chrom start end [name score strand ...]`, 0-based start, exclusive end,
//! separated by tabs or spaces; `#`, `track` and `browser` lines and blank lines are skipped.
//! Plain or gzip.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::input;
use super::maf::Strand;
use super::region::Region;

/// A BED file that cannot be read.
#[derive(Debug, Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct BedError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when the file cannot be opened or holds no region).
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
    /// 1-based line in the file.
    pub line: u64,
}

/// Reads every region; an empty list is an error, since no window could be cut from it.
pub fn read_bed(path: &Path) -> Result<Vec<BedRegion>, BedError> {
    let error = |line, reason: String| BedError {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut reader = input::open(path).map_err(|e| error(0, format!("cannot read: {e}")))?;
    let (mut regions, mut buf, mut line) = (Vec::new(), Vec::new(), 0);
    while input::read_line(&mut reader, &mut buf).map_err(|e| error(line + 1, format!("cannot read: {e}")))? {
        line += 1;
        let mut fields = input::fields(&buf);
        let Some(chrom) = fields.next() else { continue };
        if chrom.starts_with(b"#") || chrom == b"track" || chrom == b"browser" {
            continue;
        }
        let mut coordinate = |name: &str| {
            let field = fields.next().ok_or_else(|| error(line, format!("no {name} column")))?;
            std::str::from_utf8(field)
                .ok()
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or_else(|| {
                    let field = String::from_utf8_lossy(field);
                    error(line, format!("{name} `{field}` is not a non-negative integer"))
                })
        };
        let (start, end) = (coordinate("start")?, coordinate("end")?);
        if start >= end {
            return Err(error(line, format!("start {start} is not before end {end}")));
        }
        let chrom = String::from_utf8(chrom.to_vec()).map_err(|_| error(line, "chromosome is not UTF-8".into()))?;
        let strand = match fields.nth(2) {
            Some(b"-") => Strand::Reverse,
            // `.` is BED's "no strand".
            Some(b"+" | b".") | None => Strand::Forward,
            Some(other) => {
                let other = String::from_utf8_lossy(other);
                return Err(error(line, format!("strand `{other}` is not +, - or .")));
            }
        };
        regions.push(BedRegion {
            region: Region { chrom, start, end },
            strand,
            line,
        });
    }
    if regions.is_empty() {
        return Err(error(0, "no regions".into()));
    }
    Ok(regions)
}
