//! Loading a pre-trained run: its `config.json` and final `model.mpk`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::config::Config;
use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use msamamba_model::MsaMamba;

use crate::mlm_model::MlmModel;
use crate::pretrain::{PretrainConfig, RunDir};

/// The configuration and trained language model of the run in `dir` (`msamamba pretrain --out`).
pub fn load_pretrained<B: Backend>(dir: &Path, device: &B::Device) -> Result<(PretrainConfig, MsaMamba<B>)> {
    let run = RunDir { dir: dir.to_path_buf() };
    let config_path = dir.join("config.json");
    if !config_path.exists() {
        bail!("{}: not a pretraining run (no config.json)", dir.display());
    }
    let config = PretrainConfig::load(&config_path).map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let weights = run.final_model();
    if !weights.exists() {
        bail!("{}: no trained model (the run has not finished)", weights.display());
    }
    let model = MlmModel {
        model: config.model.init::<B>(device),
        accumulate: config.accumulate,
    }
    .load_file(&weights, &NamedMpkFileRecorder::<FullPrecisionSettings>::new(), device)
    .with_context(|| format!("{}: does not match {}", weights.display(), config_path.display()))?;
    Ok((config, model.model))
}
