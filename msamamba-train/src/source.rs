//! Where windows come from: a MAF projected into memory, or an alignment store (zarr).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::alignment::Alignment;
use crate::data::maf::Strand;
use crate::data::region::Region;
use crate::data::store::AlignmentStore;
use crate::data::window::MsaWindow;
use msamamba_model::tokens::reverse_complement;

/// An alignment to cut windows from.
pub enum AlignmentSource {
    /// A MAF, projected onto its target once.
    Maf(Alignment),
    /// A store in GPN-MSA's zarr layout (directory or zip).
    Store(AlignmentStore),
}

impl AlignmentSource {
    /// `--maf F --target SP` or `--store D` (exactly one of them).
    pub fn open(
        maf: Option<&Path>,
        target: Option<&str>,
        store: Option<&Path>,
        species: Option<&[String]>,
    ) -> Result<Self> {
        match (maf, store) {
            (Some(maf), None) => {
                let target = target.context("--maf needs --target (the species whose row is scored)")?;
                Ok(Self::Maf(Alignment::from_maf(maf, target, species, None)?))
            }
            (None, Some(store)) => {
                let store = AlignmentStore::open(store)?;
                if let Some(list) = species {
                    store.rows(Some(list))?;
                }
                Ok(Self::Store(store))
            }
            (Some(_), Some(_)) => bail!("give --maf or --store, not both"),
            (None, None) => bail!("no alignment: give --maf F --target SP or --store DIR"),
        }
    }

    /// Species in row order, target first.
    pub fn species(&self) -> &[String] {
        match self {
            Self::Maf(alignment) => alignment.species(),
            Self::Store(store) => store.species(),
        }
    }

    /// The window `region` on `strand`; an error names the region when the source lacks it.
    pub fn window(&self, region: &Region, strand: Strand) -> Result<MsaWindow> {
        match self {
            Self::Maf(alignment) => {
                let mut window = alignment
                    .window(region)
                    .with_context(|| format!("region {region} is outside the alignment's covered span"))?;
                if strand == Strand::Reverse {
                    window.rows.iter_mut().for_each(|row| reverse_complement(row));
                    window.strand = Strand::Reverse;
                }
                Ok(window)
            }
            Self::Store(store) => Ok(store.window(region, None, strand)?),
        }
    }
}
