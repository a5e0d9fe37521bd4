use std::path::PathBuf;

use anyhow::{Result, ensure};
use clap::Args;
use msamamba_train::data::source::{AlignmentSource, SourceConfig};
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
    /// Whether an alignment was named.
    pub fn given(&self) -> bool {
        self.maf.is_some() || self.store.is_some()
    }

    /// Refuses `--target` without `--maf` (clap's `requires` gives way to the maf/store
    /// conflict, so it is checked here).
    pub fn check(&self) -> Result<&Self> {
        ensure!(
            self.target.is_none() || self.maf.is_some(),
            "--target goes with --maf; a store's target is its first column"
        );
        Ok(self)
    }

    /// The alignment these flags name. From a MAF, the target (unless given) and the rows are
    /// `trained`'s, the source the model learnt from: its row embeddings are by position, so
    /// the rows must come in the order it was trained on.
    pub fn config(&self, trained: &SourceConfig) -> Result<SourceConfig> {
        let from_maf = self.check()?.maf.is_some();
        Ok(SourceConfig::new()
            .with_maf(self.maf.clone())
            .with_target(self.target.clone().or(trained.target.clone()).filter(|_| from_maf))
            .with_store(self.store.clone())
            .with_species(trained.species.clone().filter(|_| from_maf)))
    }

    /// The alignment these flags name, for `trained`'s model, and where its rows are in it.
    /// When the model records its species, the source is opened with every species and the
    /// model's are found by name.
    pub fn open_for(&self, trained: &PretrainConfig) -> Result<(AlignmentSource, RowOrder)> {
        let mut config = self.config(&trained.source)?;
        if !trained.rows.is_empty() {
            config.species = None;
        }
        let source = config.open()?;
        let order = RowOrder::new(&trained.rows, &source.species(), trained.model.max_rows)?;
        Ok((source, order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained() -> SourceConfig {
        SourceConfig::new()
            .with_maf(Some("trained.maf".into()))
            .with_target(Some("mm9".into()))
            .with_species(Some(vec!["rn4".into(), "hg18".into()]))
    }

    fn args(maf: Option<&str>, target: Option<&str>, store: Option<&str>) -> SourceArgs {
        SourceArgs {
            maf: maf.map(PathBuf::from),
            target: target.map(String::from),
            store: store.map(PathBuf::from),
        }
    }

    #[test]
    fn a_maf_keeps_the_trained_target_and_rows() {
        let config = args(Some("moved.maf"), None, None).config(&trained()).unwrap();
        assert_eq!(config.maf, Some(PathBuf::from("moved.maf")));
        assert_eq!(config.target.as_deref(), Some("mm9"));
        assert_eq!(config.species, trained().species);
        assert_eq!(config.store, None);
    }

    #[test]
    fn a_given_target_wins() {
        let config = args(Some("other.maf"), Some("hg18"), None).config(&trained()).unwrap();
        assert_eq!(config.target.as_deref(), Some("hg18"));
    }

    #[test]
    fn a_target_without_a_maf_is_refused() {
        let err = args(None, Some("mm9"), Some("alignment.zarr"))
            .config(&trained())
            .unwrap_err();
        assert!(err.to_string().contains("--target goes with --maf"), "{err}");
    }

    #[test]
    fn a_store_takes_nothing_from_a_trained_maf() {
        let config = args(None, None, Some("alignment.zarr")).config(&trained()).unwrap();
        assert_eq!(config.store, Some(PathBuf::from("alignment.zarr")));
        assert_eq!((config.maf, config.target, config.species), (None, None, None));
    }
}
