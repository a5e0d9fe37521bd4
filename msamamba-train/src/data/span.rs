//! The stretch of each target chromosome a MAF covers: what training and scoring can read.

use std::collections::BTreeMap;
use std::path::Path;

use super::maf::{MafError, MafReader, Strand, split_src};
use super::region::Region;

/// What a MAF holds for one target: per target chromosome, the smallest region holding every
/// aligned target base (in order of chromosome name), and every species with a row, in order of
/// first appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The target's spans.
    pub spans: Vec<Region>,
    /// Species with at least one `s` row, target included.
    pub species: Vec<String>,
}

/// The [`Coverage`] of `maf` for `target`. Streams the file once.
pub fn coverage(maf: &Path, target: &str) -> Result<Coverage, MafError> {
    let mut spans: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut species: Vec<String> = Vec::new();
    for block in MafReader::open(maf)? {
        for row in block?.rows {
            let (name, chrom) = split_src(&row.src);
            if !species.iter().any(|known| known == name) {
                species.push(name.to_string());
            }
            if name != target || row.size == 0 {
                continue;
            }
            // `-` strand coordinates count from the end of the chromosome.
            let (start, end) = match row.strand {
                Strand::Forward => (row.start, row.start + row.size),
                Strand::Reverse => (row.src_size - row.start - row.size, row.src_size - row.start),
            };
            let span = spans.entry(chrom.to_string()).or_insert((start, end));
            *span = (span.0.min(start), span.1.max(end));
        }
    }
    let spans = spans
        .into_iter()
        .map(|(chrom, (start, end))| Region { chrom, start, end })
        .collect();
    Ok(Coverage { spans, species })
}
