//! Labelled regions -> classifier batches: the window centred on each region, cut from a MAF
//! or an alignment store, read on the region's strand, rows padded or cut to M.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use msamamba_model::tokens::{GAP, reverse_complement};

use crate::alignment::Alignment;
use crate::data::maf::Strand;
use crate::data::region::Region;
use crate::data::store::AlignmentStore;
use crate::labelled_regions::{LabelledRegion, centred_window};

/// A batch for the classifier.
#[derive(Debug, Clone)]
pub struct ClassifierBatch<B: Backend> {
    /// Tokens, target row first: [B, M, L] Int.
    pub tokens: Tensor<B, 3, Int>,
    /// Real rows (true) and padding (false): [B, M] Bool.
    pub row_keep: Tensor<B, 2, Bool>,
    /// 0/1 labels: [B] Int.
    pub labels: Tensor<B, 1, Int>,
}

/// Where windows come from: `--maf F --target SP` or `--store DIR`.
pub enum WindowSource {
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

impl WindowSource {
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

    /// Whether the source covers `region`.
    fn covers(&self, region: &Region) -> bool {
        match self {
            Self::Maf { alignment, .. } => alignment
                .chromosomes
                .iter()
                .any(|chrom| chrom.chrom == region.chrom && chrom.start <= region.start && region.end <= chrom.end),
            Self::Store { store, .. } => store
                .chromosomes()
                .any(|(name, len)| name == region.chrom && region.end <= len),
        }
    }

    /// Token rows of `region` on `strand`, target first.
    fn rows(&self, region: &Region, strand: Strand) -> Result<Vec<Vec<u8>>> {
        match self {
            Self::Maf { alignment, path } => {
                let mut window = alignment
                    .window(region)
                    .with_context(|| format!("{}: region {region} is outside the alignment", path.display()))?;
                if strand == Strand::Reverse {
                    window.rows.iter_mut().for_each(|row| reverse_complement(row));
                }
                Ok(window.rows)
            }
            Self::Store { store, species } => Ok(store.window(region, species.as_deref(), strand)?.rows),
        }
    }
}

/// Windows of `len` positions centred on labelled regions, with M rows each.
pub struct LabelledWindows {
    /// The alignment.
    pub source: WindowSource,
    /// The label table, for messages.
    pub table: PathBuf,
    /// Window length L.
    pub len: usize,
    /// Rows M: extra rows are cut, missing rows are padding.
    pub rows: usize,
}

impl LabelledWindows {
    /// The window of one row of the table, checked to lie inside the alignment.
    pub fn window_of(&self, row: &LabelledRegion) -> Result<Region> {
        let outside = || {
            format!(
                "{}:{}: the {}-bp window centred on {},{},{} is outside the alignment {}",
                self.table.display(),
                row.line,
                self.len,
                row.region.chrom,
                row.region.start,
                row.region.end,
                self.source.describe()
            )
        };
        let window = centred_window(&row.region, self.len).with_context(outside)?;
        if !self.source.covers(&window) {
            bail!(outside());
        }
        Ok(window)
    }

    /// Checks that every row's window lies inside the alignment.
    pub fn check(&self, table: &[LabelledRegion]) -> Result<()> {
        table.iter().try_for_each(|row| self.window_of(row).map(drop))
    }

    /// The batch of `rows` of the table.
    ///
    /// # Shapes
    /// -> tokens [B, M, L] Int, row_keep [B, M] Bool, labels [B] Int
    pub fn batch<B: Backend>(&self, table: &[&LabelledRegion], device: &B::Device) -> Result<ClassifierBatch<B>> {
        let (batch, m, len) = (table.len(), self.rows, self.len);
        let mut tokens = Vec::with_capacity(batch * m * len);
        let mut keep = Vec::with_capacity(batch * m);
        for row in table {
            let window = self.window_of(row)?;
            let rows = self
                .source
                .rows(&window, row.strand)
                .with_context(|| format!("{}:{}", self.table.display(), row.line))?;
            for i in 0..m {
                match rows.get(i) {
                    Some(tokens_of_row) => tokens.extend(tokens_of_row.iter().map(|&t| i64::from(t))),
                    None => tokens.extend(std::iter::repeat_n(i64::from(GAP), len)),
                }
                keep.push(i < rows.len());
            }
        }
        let labels: Vec<i64> = table.iter().map(|row| i64::from(row.label)).collect();
        Ok(ClassifierBatch {
            tokens: Tensor::from_data(TensorData::new(tokens, [batch, m, len]), device),
            row_keep: Tensor::from_data(TensorData::new(keep, [batch, m]), device),
            labels: Tensor::from_data(TensorData::new(labels, [batch]), device),
        })
    }
}
