use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use msamamba_train::data::source::{AlignmentSource, SourceConfig};
use msamamba_train::infer::AlignmentChoice;
use msamamba_train::train::pretrain::PretrainConfig;
use msamamba_train::windows::row_order::RowOrder;

/// Where windows are cut from: `--maf F --target SP` or `--store DIR`, the same flags for every
/// subcommand.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// MAF alignment (plain, gzip or bgzip).
    #[arg(long, conflicts_with = "store")]
    pub maf: Option<PathBuf>,
    /// Target species of the MAF: the first row, and the species of every coordinate given
    /// (default: the one the checkpoint or --config was trained on).
    #[arg(long)]
    pub target: Option<String>,
    /// Alignment store: `msamamba import-maf`'s output or a GPN-MSA zarr (directory or zip).
    #[arg(long)]
    pub store: Option<PathBuf>,
}

impl SourceArgs {
    /// The alignment these flags name, as the library takes it.
    fn choice(&self) -> AlignmentChoice {
        AlignmentChoice {
            maf: self.maf.clone(),
            target: self.target.clone(),
            store: self.store.clone(),
        }
    }

    /// Whether an alignment was named.
    pub fn given(&self) -> bool {
        self.choice().given()
    }

    /// Refuses `--target` without `--maf` (clap's `requires` gives way to the maf/store
    /// conflict, so it is checked here).
    pub fn check(&self) -> Result<&Self> {
        self.choice().check()?;
        Ok(self)
    }

    /// The alignment these flags name (see [`AlignmentChoice::config`]).
    pub fn config(&self, trained: &SourceConfig) -> Result<SourceConfig> {
        self.choice().config(trained)
    }

    /// The alignment these flags name, for `trained`'s model, and where its rows are in it (see
    /// [`AlignmentChoice::open_for`]).
    pub fn open_for(&self, trained: &PretrainConfig) -> Result<(AlignmentSource, RowOrder)> {
        self.choice().open_for(trained)
    }
}
