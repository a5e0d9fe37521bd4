//! Loading a run's weights: the language model of a pre-training run, the classifier of a
//! fine-tuning run, and any checkpoint of either, each checked against the run's config (block
//! count, parameter shapes) and for non-finite values before use. The one loader every command
//! goes through.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::record::Recorder;
use msamamba_model::MsaMamba;
use msamamba_model::pooler::MsaMambaClassifier;

use crate::train::checkpoint_recorder::CheckpointRecorder;
use crate::train::config_file::{ConfigFileError, load_config};
use crate::train::finetune::FinetuneConfig;
use crate::train::mlm_step::MlmModel;
use crate::train::pretrain::PretrainConfig;
use crate::train::run_dir::RunDir;

/// The weights file of a fine-tuned run.
pub fn classifier_path(dir: &Path) -> PathBuf {
    dir.join("classifier.mpk")
}

/// Shapes of a module's float parameters, in visiting order, without initialising them.
fn param_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.lazy_shape().to_vec());
        }
    }
    let mut shapes = Shapes(Vec::new());
    module.visit(&mut shapes);
    shapes.0
}

/// Fails unless `loaded` has the parameter shapes of `fresh` (burn loads any shape silently).
fn check_shapes(fresh: &[Vec<usize>], loaded: &[Vec<usize>], weights: &Path, config: &Path) -> Result<()> {
    if fresh != loaded {
        let first = fresh.iter().zip(loaded).find(|(a, b)| a != b);
        let detail = match first {
            Some((want, got)) => format!("a parameter of shape {got:?} where the config makes {want:?}"),
            None => format!("{} parameters where the config makes {}", loaded.len(), fresh.len()),
        };
        bail!("{}: does not match {}: {detail}", weights.display(), config.display());
    }
    Ok(())
}

/// Fails when a parameter of `module` holds a NaN or an infinity: such weights score and embed
/// as NaN, silently.
pub(crate) fn check_finite<B: Backend, M: Module<B>>(module: &M, weights: &Path) -> Result<()> {
    struct Finite(usize);
    impl<B: Backend> ModuleVisitor<B> for Finite {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            let bad = value.clone().is_nan().int().sum() + value.is_inf().int().sum();
            self.0 += bad.into_scalar().elem::<i64>() as usize;
        }
    }
    let mut count = Finite(0);
    module.visit(&mut count);
    if count.0 > 0 {
        bail!(
            "{}: {} weights are NaN or infinite (the run diverged); use an earlier checkpoint",
            weights.display(),
            count.0
        );
    }
    Ok(())
}

/// The config file of a run directory, checked to exist.
fn config_in(dir: &Path, what: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!("{}: no such directory", dir.display());
    }
    let path = dir.join("config.json");
    if !path.exists() {
        bail!("{}: not a {what} (no config.json)", dir.display());
    }
    Ok(path)
}

/// The config and the trained language model of a pre-training run (`msamamba pretrain --out`).
pub fn load_backbone<B: Backend>(dir: &Path, device: &B::Device) -> Result<(PretrainConfig, MsaMamba<B>)> {
    let config_path = config_in(dir, "pre-training run")?;
    let config = load_config::<PretrainConfig>(&config_path).map_err(|e| match e {
        ConfigFileError::OtherKind { .. } => anyhow::anyhow!(
            "{}: not a pre-training run ({e}; a fine-tuning run?): pass a `msamamba pretrain --out` directory",
            dir.display()
        ),
        e => e.into(),
    })?;
    let weights = RunDir { dir: dir.to_path_buf() }.final_model();
    if !weights.exists() {
        bail!("{}: no model.mpk (has the pre-training run finished?)", dir.display());
    }
    let model = load_mlm(&config, &weights, &config_path, device)?;
    Ok((config, model.model))
}

/// The language model of `config` (read from `config_path`) with the weights in `weights`, a
/// final model or a checkpoint.
pub fn load_mlm<B: Backend>(
    config: &PretrainConfig,
    weights: &Path,
    config_path: &Path,
    device: &B::Device,
) -> Result<MlmModel<B>> {
    let fresh = MlmModel {
        model: config.model.init::<B>(device),
        accumulate: config.accumulate,
    };
    load_weights(
        fresh,
        weights,
        config_path,
        config.model.n_layers,
        |r| r.model.blocks.len(),
        device,
    )
}

/// The config and classifier of a fine-tuning run (`msamamba finetune --out`).
pub fn load_classifier<B: Backend>(dir: &Path, device: &B::Device) -> Result<(FinetuneConfig, MsaMambaClassifier<B>)> {
    let config_path = config_in(dir, "fine-tuning run")?;
    let config = load_finetune_config(&config_path, dir)?;
    let weights = classifier_path(dir);
    if !weights.exists() {
        bail!(
            "{}: no classifier.mpk (has the fine-tuning run finished?)",
            dir.display()
        );
    }
    let fresh = config.classifier.init::<B>(device);
    let n_layers = config.classifier.model.n_layers;
    let model = load_weights(
        fresh,
        &weights,
        &config_path,
        n_layers,
        |r| r.backbone.blocks.len(),
        device,
    )?;
    Ok((config, model))
}

/// The fine-tuning config at `path`, of the run in `dir`.
pub fn load_finetune_config(path: &Path, dir: &Path) -> Result<FinetuneConfig> {
    load_config::<FinetuneConfig>(path).map_err(|e| match e {
        ConfigFileError::OtherKind { .. } => anyhow::anyhow!(
            "{e} (is {} a pre-training run? pass it to `msamamba finetune`)",
            dir.display()
        ),
        e => e.into(),
    })
}

/// `fresh` with the weights in `weights` (of the run whose config is `config_path`), refused
/// when the file is damaged, when its block count (`blocks` of the record) is not `n_layers`,
/// when a parameter's shape does not fit the config (burn loads any shape silently), or when a
/// weight is not finite.
pub(crate) fn load_weights<B: Backend, M: Module<B>>(
    fresh: M,
    weights: &Path,
    config_path: &Path,
    n_layers: usize,
    blocks: impl Fn(&M::Record) -> usize,
    device: &B::Device,
) -> Result<M> {
    let record: M::Record = CheckpointRecorder::default()
        .load(weights.to_path_buf(), device)
        .map_err(|err| {
            // burn appends advice on loading records of its versions before 0.17 (escaped, inside
            // its error's debug form), which never applies to msamamba's files.
            let text = err.to_string();
            let cause = text
                .split(r"\nThe internal data format")
                .next()
                .and_then(|t| t.split("\nThe internal data format").next())
                .unwrap_or(&text);
            let cause = cause.strip_prefix("Unknown(\"").unwrap_or(cause).trim();
            anyhow::anyhow!(
                "{}: damaged, or does not match the model in {} ({cause})",
                weights.display(),
                config_path.display()
            )
        })?;
    if blocks(&record) != n_layers {
        bail!(
            "{}: does not match {}: {} blocks, the config says n_layers {n_layers}",
            weights.display(),
            config_path.display(),
            blocks(&record),
        );
    }
    let shapes = param_shapes::<B, _>(&fresh);
    let model = fresh.load_record(record);
    check_shapes(&shapes, &param_shapes::<B, _>(&model), weights, config_path)?;
    check_finite(&model, weights)?;
    Ok(model)
}
