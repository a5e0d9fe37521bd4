//! A whole projected alignment held in memory: the source windows are cut from.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::data::maf::Strand;
use crate::data::projection::{MsaWindow, WindowError, WindowRequest, project};
use crate::data::region::Region;
use crate::data::span::coverage;

/// Why an alignment could not be loaded.
#[derive(Debug, Error)]
pub enum AlignmentError {
    /// The MAF could not be projected.
    #[error(transparent)]
    Window(#[from] WindowError),
    /// The MAF could not be read.
    #[error(transparent)]
    Maf(#[from] crate::data::maf::MafError),
    /// The target species has no aligned base in the file.
    #[error("{}: target species `{target}` has no aligned bases", path.display())]
    NoTarget {
        /// The MAF.
        path: PathBuf,
        /// The target species.
        target: String,
    },
    /// A species asked for has no row anywhere in the file (a typo, most likely).
    #[error("{}: species `{species}` is not in the alignment; it has {}", path.display(), present.join(", "))]
    UnknownSpecies {
        /// The MAF.
        path: PathBuf,
        /// The species asked for.
        species: String,
        /// The file's species, in order of first appearance.
        present: Vec<String>,
    },
}

/// The target's aligned chromosomes as windows over their covered spans (target row first).
#[derive(Debug, Clone)]
pub struct Alignment {
    /// One window per covered chromosome.
    pub chromosomes: Vec<MsaWindow>,
}

impl Alignment {
    /// Projects every chromosome the MAF covers for `target`; the rows follow `species` (or the
    /// order of first appearance), so every chromosome has the same rows.
    pub fn from_maf(
        maf: &Path,
        target: &str,
        species: Option<&[String]>,
        fasta: Option<&Path>,
    ) -> Result<Self, AlignmentError> {
        let coverage = coverage(maf, target)?;
        if let Some(unknown) = species
            .into_iter()
            .flatten()
            .find(|name| !coverage.species.contains(name))
        {
            return Err(AlignmentError::UnknownSpecies {
                path: maf.to_path_buf(),
                species: unknown.clone(),
                present: coverage.species,
            });
        }
        let spans = coverage.spans;
        if spans.is_empty() {
            return Err(AlignmentError::NoTarget {
                path: maf.to_path_buf(),
                target: target.to_string(),
            });
        }
        let mut chromosomes = Vec::with_capacity(spans.len());
        let mut order: Option<Vec<String>> = species.map(<[String]>::to_vec);
        for region in &spans {
            let window = project(&WindowRequest {
                maf,
                target,
                region,
                species: order.as_deref(),
                fasta,
                strand: Strand::Forward,
            })?
            .window;
            // Later chromosomes reuse the first one's row order.
            order.get_or_insert_with(|| window.species[1..].to_vec());
            chromosomes.push(window);
        }
        Ok(Self { chromosomes })
    }

    /// Species in row order, target first.
    pub fn species(&self) -> &[String] {
        &self.chromosomes[0].species
    }

    /// The window `region` of chromosome `chrom`, if the alignment holds it.
    pub fn window(&self, region: &Region) -> Option<MsaWindow> {
        let chrom = self.chromosomes.iter().find(|w| w.chrom == region.chrom)?;
        if region.start < chrom.start || region.end > chrom.end {
            return None;
        }
        let (a, b) = (
            (region.start - chrom.start) as usize,
            (region.end - chrom.start) as usize,
        );
        Some(MsaWindow {
            species: chrom.species.clone(),
            rows: chrom.rows.iter().map(|r| r[a..b].to_vec()).collect(),
            chrom: chrom.chrom.clone(),
            start: region.start,
            end: region.end,
            strand: Strand::Forward,
        })
    }
}
