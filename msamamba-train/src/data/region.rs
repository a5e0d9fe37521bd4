//! Genomic regions, parsed samtools-style.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A 0-based, half-open interval on one chromosome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Chromosome as the user wrote it (`chr10`, or the whole src `mm9.chr10`).
    pub chrom: String,
    /// 0-based first position.
    pub start: u64,
    /// 0-based position after the last one.
    pub end: u64,
}

/// A region string that is not `CHR:START-END` with 1 <= START <= END.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegionError {
    /// Not of the form `CHR:START-END`.
    #[error("region `{0}` is not CHR:START-END")]
    Syntax(String),
    /// START or END is not a positive integer.
    #[error("region `{0}`: positions are 1-based positive integers")]
    Position(String),
    /// START is after END.
    #[error("region `{0}`: start is after end")]
    Reversed(String),
}

impl Region {
    /// Number of positions covered.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the region covers no position (never true for a parsed region).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `other` lies wholly inside this region.
    pub fn contains(&self, other: &Region) -> bool {
        self.chrom == other.chrom && self.start <= other.start && other.end <= self.end
    }
}

impl FromStr for Region {
    type Err = RegionError;

    /// Parses `CHR:START-END`, 1-based and inclusive as in samtools, into 0-based half-open
    /// coordinates. Commas in the numbers are ignored (`chr1:1,000-2,000`), and the last `:`
    /// splits, so chromosome names may contain `:`.
    fn from_str(text: &str) -> Result<Region, RegionError> {
        let syntax = || RegionError::Syntax(text.to_string());
        let (chrom, range) = text.rsplit_once(':').ok_or_else(syntax)?;
        let (start, end) = range.split_once('-').ok_or_else(syntax)?;
        if chrom.is_empty() {
            return Err(syntax());
        }
        let position = |field: &str| {
            field
                .replace(',', "")
                .parse::<u64>()
                .ok()
                .filter(|&p| p >= 1)
                .ok_or_else(|| RegionError::Position(text.to_string()))
        };
        let (start, end) = (position(start)?, position(end)?);
        if start > end {
            return Err(RegionError::Reversed(text.to_string()));
        }
        Ok(Region {
            chrom: chrom.to_string(),
            start: start - 1,
            end,
        })
    }
}

impl fmt::Display for Region {
    /// Writes the region back in samtools form, 1-based inclusive.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}-{}", self.chrom, self.start + 1, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_based_inclusive_becomes_zero_based_half_open() {
        let region: Region = "chr10:3,009,320-3009329".parse().unwrap();
        assert_eq!(
            region,
            Region {
                chrom: "chr10".into(),
                start: 3009319,
                end: 3009329
            }
        );
        assert_eq!(region.len(), 10);
        assert_eq!(region.to_string(), "chr10:3009320-3009329");
        let single: Region = "HLA:A*01:5-5".parse().unwrap();
        assert_eq!((single.chrom.as_str(), single.start, single.end), ("HLA:A*01", 4, 5));
    }

    #[test]
    fn malformed_regions_are_rejected_with_the_reason() {
        for bad in ["chr10", "chr10:5", ":1-2", "chr10:a-5", "chr10:1-"] {
            assert!(
                matches!(
                    bad.parse::<Region>(),
                    Err(RegionError::Syntax(_) | RegionError::Position(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!("chr10:0-5".parse::<Region>(), Err(RegionError::Position(_))));
        assert!(matches!("chr10:-5-7".parse::<Region>(), Err(RegionError::Position(_))));
        assert!(matches!("chr10:9-5".parse::<Region>(), Err(RegionError::Reversed(_))));
    }
}
