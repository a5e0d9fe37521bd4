//! Tables of labelled regions for fine-tuning, in the GenomicBenchmarks layout:
//! `chrom,start,end,strand,label` with 0-based `start`, exclusive `end`, strand `+` or `-` and a
//! 0/1 label; an optional header line; blank lines and lines starting with `#` are skipped. A
//! region labelled both 0 and 1 on the same strand is an error naming both lines: the model
//! would be taught both answers for one input. The same region on the other strand is another
//! input (its reverse complement) and may carry the other label.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::data::maf::Strand;
use crate::data::region::Region;

/// One row of a label table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledRegion {
    /// The region, 0-based half-open.
    pub region: Region,
    /// `Reverse` for `-`: the model sees the reverse complement of every row.
    pub strand: Strand,
    /// The class, 0 or 1.
    pub label: bool,
    /// 1-based line number in the table, for messages.
    pub line: usize,
}

/// Why a label table cannot be read.
#[derive(Debug, Error)]
pub enum LabelsError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The table.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `chrom,start,end,strand,label`.
    #[error("{}:{line}: {reason} (expected chrom,start,end,strand,label)", path.display())]
    Line {
        /// The table.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// One region and strand labelled both 0 and 1.
    #[error(
        "{}:{first}: {region} is labelled {first_label} here and {} at {}:{second}; a region has one label",
        path.display(), 1 - first_label, path.display()
    )]
    Conflict {
        /// The table.
        path: PathBuf,
        /// The region as the table writes it: `chrom,start,end,strand`.
        region: String,
        /// 1-based line of its first label.
        first: usize,
        /// That label, 0 or 1.
        first_label: u8,
        /// 1-based line of the other label.
        second: usize,
    },
    /// No data line.
    #[error("{}: no labelled regions", path.display())]
    Empty {
        /// The table.
        path: PathBuf,
    },
}

/// Reads a label table line by line.
pub fn read_labels(path: &Path) -> Result<Vec<LabelledRegion>, LabelsError> {
    let io = |source| LabelsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut rows: Vec<LabelledRegion> = Vec::new();
    // (chrom, start, end, strand) -> index of its first row. The table is held whole anyway.
    let mut seen: HashMap<(String, u64, u64, bool), usize> = HashMap::new();
    let mut first = true;
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let number = index + 1;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let header_allowed = std::mem::take(&mut first);
        match parse_line(text, number) {
            Ok(row) => {
                let key = (
                    row.region.chrom.clone(),
                    row.region.start,
                    row.region.end,
                    row.strand == Strand::Reverse,
                );
                match seen.get(&key) {
                    Some(&k) if rows[k].label != row.label => {
                        let earlier = &rows[k];
                        return Err(LabelsError::Conflict {
                            path: path.to_path_buf(),
                            region: text.rsplit_once(',').map_or(text, |(region, _)| region).to_string(),
                            first: earlier.line,
                            first_label: u8::from(earlier.label),
                            second: number,
                        });
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(key, rows.len());
                    }
                }
                rows.push(row)
            }
            Err(_) if header_allowed && is_header(text) => continue,
            Err(reason) => {
                return Err(LabelsError::Line {
                    path: path.to_path_buf(),
                    line: number,
                    reason,
                });
            }
        }
    }
    if rows.is_empty() {
        return Err(LabelsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

/// Whether the first line is a header: five fields, none of start, end and label a value (a
/// data row with one mistyped number is an error, not a header to skip).
fn is_header(text: &str) -> bool {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let word = |field: &str| field.parse::<f64>().is_err() && field.chars().any(char::is_alphabetic);
    fields.len() == 5 && word(fields[1]) && word(fields[2]) && word(fields[4])
}

/// One data line, or what is wrong with it.
fn parse_line(text: &str, line: usize) -> Result<LabelledRegion, String> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let [chrom, start, end, strand, label] = fields[..] else {
        return Err(format!("{} field(s), not 5", fields.len()));
    };
    if chrom.is_empty() {
        return Err("empty chromosome".into());
    }
    let position = |name: &str, field: &str| {
        field
            .parse::<u64>()
            .map_err(|_| format!("{name} `{field}` is not a non-negative integer"))
    };
    let (start, end) = (position("start", start)?, position("end", end)?);
    if end <= start {
        return Err(format!("end {end} is not after start {start}"));
    }
    let strand = match strand {
        "+" => Strand::Forward,
        "-" => Strand::Reverse,
        other => return Err(format!("strand `{other}` is not + or -")),
    };
    let label = match label {
        "0" => false,
        "1" => true,
        other => return Err(format!("label `{other}` is not 0 or 1")),
    };
    Ok(LabelledRegion {
        region: Region {
            chrom: chrom.to_string(),
            start,
            end,
        },
        strand,
        label,
        line,
    })
}

/// The window of `len` positions centred on `region` (the centre is `start + (end - start) / 2`,
/// the window starts `len / 2` before it); `None` when it would start before position 0.
pub fn centred_window(region: &Region, len: usize) -> Option<Region> {
    let centre = region.start + (region.end - region.start) / 2;
    let start = centre.checked_sub(len as u64 / 2)?;
    Some(Region {
        chrom: region.chrom.clone(),
        start,
        end: start + len as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_region_labelled_both_0_and_1_is_an_error_naming_both_lines() {
        let (_dir, path) = table("chrom,start,end,strand,label\nchr1,10,20,+,1\nchr1,30,40,+,0\nchr1,10,20,+,0\n");
        let err = read_labels(&path).unwrap_err().to_string();
        let file = path.display();
        assert!(err.contains(&format!("{file}:2:")), "{err}");
        assert!(err.contains(&format!("{file}:4")), "{err}");
        assert!(err.contains("labelled 1 here and 0"), "{err}");
    }

    #[test]
    fn a_region_repeated_with_its_label_or_on_the_other_strand_is_read() {
        let (_dir, path) = table("chr1,10,20,+,1\nchr1,10,20,+,1\nchr1,10,20,-,0\n");
        let rows = read_labels(&path).unwrap();
        assert_eq!(rows.len(), 3);
    }
}
