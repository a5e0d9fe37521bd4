//! The alignment a trained run reads at inference: a MAF or a store given by the user, with the
//! run's target and rows carried over where they still apply.

use std::path::PathBuf;

use anyhow::{Result, ensure};

use crate::data::source::{AlignmentSource, SourceConfig};
use crate::train::pretrain::PretrainConfig;
use crate::windows::row_order::RowOrder;

/// The alignment asked for: a MAF (with an optional target species) or a store.
#[derive(Debug, Clone, Default)]
pub struct AlignmentChoice {
    /// A MAF file.
    pub maf: Option<PathBuf>,
    /// The MAF's target species (default: the run's).
    pub target: Option<String>,
    /// An alignment store.
    pub store: Option<PathBuf>,
}

impl AlignmentChoice {
    /// Whether a MAF or a store was given.
    pub fn given(&self) -> bool {
        self.maf.is_some() || self.store.is_some()
    }

    /// Refuses a target without a MAF.
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.target.is_none() || self.maf.is_some(),
            "--target goes with --maf; a store's target is its first column"
        );
        Ok(())
    }

    /// The source config for a run trained on `trained`: a MAF keeps the run's target (unless
    /// one is given) and species; a store brings its own.
    pub fn config(&self, trained: &SourceConfig) -> Result<SourceConfig> {
        self.check()?;
        let from_maf = self.maf.is_some();
        Ok(SourceConfig::new()
            .with_maf(self.maf.clone())
            .with_target(self.target.clone().or(trained.target.clone()).filter(|_| from_maf))
            .with_store(self.store.clone())
            .with_species(trained.species.clone().filter(|_| from_maf)))
    }

    /// The alignment opened for the run `trained`, and the run's rows in it (a run that names
    /// its rows finds them by name, so the MAF's species list is not imposed on it).
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

    fn choice(maf: Option<&str>, target: Option<&str>, store: Option<&str>) -> AlignmentChoice {
        AlignmentChoice {
            maf: maf.map(PathBuf::from),
            target: target.map(String::from),
            store: store.map(PathBuf::from),
        }
    }

    #[test]
    fn a_maf_keeps_the_trained_target_and_rows() {
        let config = choice(Some("moved.maf"), None, None).config(&trained()).unwrap();
        assert_eq!(config.maf, Some(PathBuf::from("moved.maf")));
        assert_eq!(config.target.as_deref(), Some("mm9"));
        assert_eq!(config.species, trained().species);
        assert_eq!(config.store, None);
    }

    #[test]
    fn a_given_target_wins() {
        let config = choice(Some("other.maf"), Some("hg18"), None)
            .config(&trained())
            .unwrap();
        assert_eq!(config.target.as_deref(), Some("hg18"));
    }

    #[test]
    fn a_target_without_a_maf_is_refused() {
        let err = choice(None, Some("mm9"), Some("alignment.zarr"))
            .config(&trained())
            .unwrap_err();
        assert!(err.to_string().contains("--target goes with --maf"), "{err}");
    }

    #[test]
    fn a_store_takes_nothing_from_a_trained_maf() {
        let config = choice(None, None, Some("alignment.zarr")).config(&trained()).unwrap();
        assert_eq!(config.store, Some(PathBuf::from("alignment.zarr")));
        assert_eq!((config.maf, config.target, config.species), (None, None, None));
    }
}
