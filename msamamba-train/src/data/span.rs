//! The stretch of each target chromosome a MAF covers: what training and scoring can read.

use std::collections::BTreeMap;
use std::path::Path;

use super::maf::{MafError, MafReader, Strand, split_src};
use super::region::Region;

/// Per target chromosome, the smallest region holding every aligned target base, in order of
/// chromosome name. Streams the file once.
pub fn target_spans(maf: &Path, target: &str) -> Result<Vec<Region>, MafError> {
    let mut spans: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for block in MafReader::open(maf)? {
        for row in block?.rows {
            let (species, chrom) = split_src(&row.src);
            if species != target || row.size == 0 {
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
    Ok(spans
        .into_iter()
        .map(|(chrom, (start, end))| Region { chrom, start, end })
        .collect())
}
