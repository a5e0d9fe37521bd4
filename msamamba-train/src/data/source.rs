//! Where windows come from: a MAF projected into memory, or an alignment store (zarr).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::config::Config;
use msamamba_model::tokens::reverse_complement;

use crate::data::alignment::Alignment;
use crate::data::maf::Strand;
use crate::data::projection::MsaWindow;
use crate::data::region::Region;
use crate::data::store::AlignmentStore;

/// Where a run's windows come from, as saved in its config: `maf` with `target`, or `store`.
#[derive(Config, Debug)]
pub struct SourceConfig {
    /// MAF alignment (needs `target`).
    #[config(default = "None")]
    pub maf: Option<PathBuf>,
    /// Target species of the MAF: the predicted row, the species of the coordinates.
    #[config(default = "None")]
    pub target: Option<String>,
    /// Alignment store (GPN-MSA's zarr layout, directory or zip).
    #[config(default = "None")]
    pub store: Option<PathBuf>,
    /// Rows after the target, in order (default: every species of the source).
    #[config(default = "None")]
    pub species: Option<Vec<String>>,
}

impl SourceConfig {
    /// Opens the source (see [`AlignmentSource::open`]).
    pub fn open(&self) -> Result<AlignmentSource> {
        AlignmentSource::open(
            self.maf.as_deref(),
            self.target.as_deref(),
            self.store.as_deref(),
            self.species.as_deref(),
        )
    }
}

/// Where windows come from: `--maf F --target SP` or `--store DIR`.
pub enum AlignmentSource {
    /// A MAF projected onto its target, in memory.
    Maf {
        /// The MAF, for messages.
        path: PathBuf,
        /// Its projection.
        alignment: Alignment,
    },
    /// An alignment store (GPN-MSA's zarr layout), read window by window.
    Store {
        /// The store.
        store: AlignmentStore,
        /// Rows after the target (`None`: every column).
        species: Option<Vec<String>>,
    },
}

impl AlignmentSource {
    /// Opens `--maf` (needs the target) or `--store`, exactly one of them; `species` orders the
    /// rows after the target.
    pub fn open(
        maf: Option<&Path>,
        target: Option<&str>,
        store: Option<&Path>,
        species: Option<&[String]>,
    ) -> Result<Self> {
        match (maf, store) {
            (Some(maf), None) => {
                let target = target.context("--maf needs --target (the species of the regions' coordinates)")?;
                if !maf.exists() {
                    bail!("{}: no such file", maf.display());
                }
                Ok(Self::Maf {
                    path: maf.to_path_buf(),
                    alignment: Alignment::from_maf(maf, target, species, None)?,
                })
            }
            (None, Some(path)) => {
                let store = AlignmentStore::open(path)?;
                // Unknown species fail now, not at the first batch.
                store.rows(species)?;
                Ok(Self::Store {
                    store,
                    species: species.map(<[String]>::to_vec),
                })
            }
            (Some(_), Some(_)) => bail!("give --maf or --store, not both"),
            (None, None) => bail!("no alignment: give --maf F --target SP or --store DIR"),
        }
    }

    /// Species of a window's rows, target first.
    pub fn species(&self) -> Vec<String> {
        match self {
            Self::Maf { alignment, .. } => alignment.species().to_vec(),
            Self::Store { store, species } => match store.rows(species.as_deref()) {
                Ok(rows) => rows.iter().map(|&r| store.species()[r].clone()).collect(),
                Err(_) => store.species().to_vec(),
            },
        }
    }

    /// Where the windows come from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Maf { path, .. } => path.display().to_string(),
            Self::Store { store, .. } => store.path().display().to_string(),
        }
    }

    /// The stretch of each chromosome windows can come from: a MAF's covered span, or a
    /// store's whole chromosome.
    pub fn extents(&self) -> Vec<Region> {
        match self {
            Self::Maf { alignment, .. } => alignment
                .chromosomes
                .iter()
                .map(|chrom| Region {
                    chrom: chrom.chrom.clone(),
                    start: chrom.start,
                    end: chrom.end,
                })
                .collect(),
            Self::Store { store, .. } => store
                .chromosomes()
                .map(|(chrom, len)| Region {
                    chrom: chrom.to_string(),
                    start: 0,
                    end: len,
                })
                .collect(),
        }
    }

    /// Whether the source covers `region`.
    pub fn covers(&self, region: &Region) -> bool {
        self.extents().iter().any(|extent| extent.contains(region))
    }

    /// The window `region` on `strand`, target first; an error names the region when the source
    /// lacks it.
    pub fn window(&self, region: &Region, strand: Strand) -> Result<MsaWindow> {
        match self {
            Self::Maf { alignment, path } => {
                let mut window = alignment
                    .window(region)
                    .with_context(|| format!("{}: {}", path.display(), uncovered(region, &self.extents())))?;
                if strand == Strand::Reverse {
                    window.rows.iter_mut().for_each(|row| reverse_complement(row));
                    window.strand = Strand::Reverse;
                }
                Ok(window)
            }
            Self::Store { store, species } => Ok(store.window(region, species.as_deref(), strand)?),
        }
    }
}

/// Says which part of `region` the alignment, covering `extents`, lacks.
fn uncovered(region: &Region, extents: &[Region]) -> String {
    let on_chrom: Vec<&Region> = extents.iter().filter(|e| e.chrom == region.chrom).collect();
    if on_chrom.is_empty() {
        let names: Vec<&str> = extents.iter().map(|e| e.chrom.as_str()).collect();
        return format!(
            "region {region}: chromosome `{}` is not in the alignment (it has {})",
            region.chrom,
            names.join(", ")
        );
    }
    let covered: Vec<String> = on_chrom.iter().map(|e| e.to_string()).collect();
    let overlap = on_chrom
        .iter()
        .find(|e| e.start < region.end && region.start < e.end)
        .map(|e| Region {
            chrom: region.chrom.clone(),
            start: e.start.max(region.start),
            end: e.end.min(region.end),
        });
    let Some(overlap) = overlap else {
        return format!(
            "region {region} is outside the alignment, which covers {}",
            covered.join(", ")
        );
    };
    let part = |start, end| Region {
        chrom: region.chrom.clone(),
        start,
        end,
    };
    let missing: Vec<String> = [part(region.start, overlap.start), part(overlap.end, region.end)]
        .into_iter()
        .filter(|r| r.start < r.end)
        .map(|r| r.to_string())
        .collect();
    format!(
        "region {region} is only partly in the alignment: {overlap} is, {} is not (the alignment covers {})",
        missing.join(" and "),
        covered.join(", ")
    )
}
