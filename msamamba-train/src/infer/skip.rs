//! Why an ALT allele gets no score, as written in the output (`INFO/MSAMAMBA_SKIP`, the TSV's
//! `reason` column) and counted in the summary.

use std::fmt;

/// Why an ALT allele was not scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// REF or ALT is not a single A, C, G or T, or ALT equals REF (indels, symbolic alleles).
    NotSnv,
    /// The record has no ALT (`.`).
    NoAlt,
    /// The chromosome is not in the alignment, even with the `chr` prefix added or removed.
    ChromNotInAlignment,
    /// The window around the site reaches past what the alignment covers.
    OutsideAlignment,
    /// The alignment's target has another base at the site.
    RefMismatch,
    /// The model gave a NaN or infinite score (weights that diverged): never written as a score.
    Nan,
}

impl Skip {
    /// Every reason, in the order the summary lists them.
    pub const ALL: [Skip; 6] = [
        Skip::NotSnv,
        Skip::NoAlt,
        Skip::ChromNotInAlignment,
        Skip::OutsideAlignment,
        Skip::RefMismatch,
        Skip::Nan,
    ];

    /// The reason as written in the output.
    pub fn code(self) -> &'static str {
        match self {
            Skip::NotSnv => "not_snv",
            Skip::NoAlt => "no_alt",
            Skip::ChromNotInAlignment => "chrom_not_in_alignment",
            Skip::OutsideAlignment => "outside_alignment",
            Skip::RefMismatch => "ref_mismatch",
            Skip::Nan => "nan",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What became of one ALT allele.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Its score, logit(alt) - logit(ref), mean of both strands.
    Scored(f32),
    /// Why it has none.
    Skipped(Skip),
}
