//! `msamamba finetune`: classification fine-tuning of a pre-trained MSAMamba (pooler head, BCE)
//! on labelled regions, and loading the result for `msamamba evaluate`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::Recorder;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::AutodiffBackend;
use msamamba_kernels::KernelBackend;
use msamamba_model::MsaMamba;
use msamamba_model::pooler::{MsaMambaClassifier, MsaMambaClassifierConfig};
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};

use crate::atomic_recorder::CheckpointRecorder;
use crate::classifier_batch::LabelledWindows;
use crate::labelled_regions::LabelledRegion;
use crate::mlm_model::MlmModel;
use crate::pretrain::{PretrainConfig, RunDir};
use crate::progress;
use crate::schedule::WarmupCosineConfig;
use crate::source::SourceConfig;
use crate::weight_decay::SelectiveAdamW;
use crate::windows::mix;

/// Everything a fine-tuning run depends on; saved as `config.json` next to `classifier.mpk`.
#[derive(Config, Debug)]
pub struct FinetuneConfig {
    /// The classifier: the pre-trained backbone's config and the head's dropout.
    pub classifier: MsaMambaClassifierConfig,
    /// The pre-training run the backbone weights came from.
    pub checkpoint: PathBuf,
    /// The label table (`chrom,start,end,strand,label`).
    pub labels: PathBuf,
    /// The alignment the windows were cut from; its `species` are the rows the classifier was
    /// trained on.
    #[config(default = "SourceConfig::new()")]
    pub source: SourceConfig,
    /// Window length L, centred on each region.
    #[config(default = 128)]
    pub window: usize,
    /// Passes over the training split.
    #[config(default = 5)]
    pub epochs: usize,
    /// Peak AdamW learning rate (the paper's fine-tuning rate), reached after the warmup and
    /// decayed to 0 by a cosine over the run.
    #[config(default = 3e-4)]
    pub lr: f64,
    /// AdamW weight decay (the paper's fine-tuning value).
    #[config(default = 1e-3)]
    pub weight_decay: f64,
    /// Decay every parameter, also A_log, D, dt_bias, norms and embeddings (mamba_ssm does not).
    #[config(default = false)]
    pub decay_all: bool,
    /// Fraction of the optimizer steps spent warming the learning rate up from 0.
    #[config(default = 0.1)]
    pub warmup_fraction: f64,
    /// Regions per batch.
    #[config(default = 16)]
    pub batch_size: usize,
    /// Fraction of each class held out for testing.
    #[config(default = 0.2)]
    pub test_fraction: f64,
    /// Seed of the split, the head's initialisation, dropout and the data order.
    #[config(default = 42)]
    pub seed: u64,
}

impl FinetuneConfig {
    /// Checks what would otherwise fail late or panic.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("window", self.window),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
        ] {
            if value == 0 {
                bail!("--{} must be at least 1", name.replace('_', "-"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr must be a positive number, got {}", self.lr);
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            bail!("--test-fraction must be between 0 and 1, got {}", self.test_fraction);
        }
        if !(0.0..1.0).contains(&self.classifier.dropout) {
            bail!("--dropout must be in [0, 1), got {}", self.classifier.dropout);
        }
        crate::pretrain::check_weight_decay(self.weight_decay)?;
        crate::pretrain::check_warmup_fraction(self.warmup_fraction)?;
        crate::pretrain::check_model(&self.classifier.model)
    }

    /// Rows M of every window: the target and `species`.
    pub fn rows(&self) -> usize {
        1 + self.source.species.as_ref().map_or(0, Vec::len)
    }
}

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
    let config = PretrainConfig::load(&config_path).map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let weights = RunDir { dir: dir.to_path_buf() }.final_model();
    if !weights.exists() {
        bail!("{}: no model.mpk (has the pre-training run finished?)", dir.display());
    }
    let model = load_mlm(&config, &weights, &config_path, device)?;
    Ok((config, model.model))
}

/// The language model of `config` (read from `config_path`) with the weights in `weights`, a
/// final model or a checkpoint; refused when they do not fit the config or are not finite.
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
    let record: <MlmModel<B> as Module<B>>::Record = CheckpointRecorder::default()
        .load(weights.to_path_buf(), device)
        .with_context(|| {
            format!(
                "{}: damaged, or not weights of the model in {}",
                weights.display(),
                config_path.display()
            )
        })?;
    if record.model.blocks.len() != config.model.n_layers {
        bail!(
            "{}: does not match {}: {} blocks, the config says n_layers {}",
            weights.display(),
            config_path.display(),
            record.model.blocks.len(),
            config.model.n_layers
        );
    }
    let shapes = param_shapes::<B, _>(&fresh);
    let model = fresh.load_record(record);
    check_shapes(&shapes, &param_shapes::<B, _>(&model), weights, config_path)?;
    check_finite(&model, weights)?;
    Ok(model)
}

/// The config and classifier of a fine-tuning run (`msamamba finetune --out`).
pub fn load_classifier<B: Backend>(dir: &Path, device: &B::Device) -> Result<(FinetuneConfig, MsaMambaClassifier<B>)> {
    let config_path = config_in(dir, "fine-tuning run")?;
    let config = FinetuneConfig::load(&config_path).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a fine-tuning config (is {} a pre-training run? pass it to `msamamba finetune`): {e}",
            config_path.display(),
            dir.display()
        )
    })?;
    let weights = classifier_path(dir);
    if !weights.exists() {
        bail!(
            "{}: no classifier.mpk (has the fine-tuning run finished?)",
            dir.display()
        );
    }
    let fresh = config.classifier.init::<B>(device);
    let record: <MsaMambaClassifier<B> as Module<B>>::Record = CheckpointRecorder::default()
        .load(weights.clone(), device)
        .with_context(|| format!("{}: does not match {}", weights.display(), config_path.display()))?;
    if record.backbone.blocks.len() != config.classifier.model.n_layers {
        bail!(
            "{}: does not match {}: {} blocks, the config says n_layers {}",
            weights.display(),
            config_path.display(),
            record.backbone.blocks.len(),
            config.classifier.model.n_layers
        );
    }
    let shapes = param_shapes::<B, _>(&fresh);
    let model = fresh.load_record(record);
    check_shapes(&shapes, &param_shapes::<B, _>(&model), &weights, &config_path)?;
    check_finite(&model, &weights)?;
    Ok((config, model))
}

/// Splits the table into (train, test) row indices: each class is shuffled with `seed` and
/// `test_fraction` of it (rounded; at least one and never all, when the class has two or more
/// rows) goes to the test split. Both lists come back in table order.
pub fn split(labels: &[bool], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in [false, true] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut rng);
        let mut n_test = (members.len() as f64 * test_fraction).round() as usize;
        if members.len() >= 2 {
            n_test = n_test.clamp(1, members.len() - 1);
        }
        let n_test = n_test.min(members.len());
        test.extend_from_slice(&members[..n_test]);
        train.extend_from_slice(&members[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Fine-tunes `backbone` with a fresh pooler head on `train` with AdamW and BCE, one optimizer
/// step per batch at the warmup-then-cosine rate, the rows reshuffled every epoch; `on_epoch(epoch, mean_loss)` after each
/// epoch. Stops with an error when the loss is not finite.
pub fn finetune<B>(
    config: &FinetuneConfig,
    backbone: MsaMamba<B>,
    windows: &LabelledWindows,
    train: &[&LabelledRegion],
    device: &B::Device,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<MsaMambaClassifier<B>>
where
    B: AutodiffBackend + KernelBackend,
{
    config.validate()?;
    if train.is_empty() {
        bail!("the training split is empty");
    }
    B::seed(device, config.seed);
    let mut model = config.classifier.with_backbone(backbone, device);
    let mut optim = SelectiveAdamW::<MsaMambaClassifier<B>, B>::new(config.weight_decay, config.decay_all);
    let steps = config.epochs * train.len().div_ceil(config.batch_size);
    let schedule = WarmupCosineConfig::new(config.lr, steps).with_warmup_fraction(config.warmup_fraction);
    let mut step = 0;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let bar = progress::bar(steps as u64, "steps");
    for epoch in 1..=config.epochs {
        order.shuffle(&mut StdRng::seed_from_u64(mix(config.seed, epoch as u64)));
        let (mut total, mut seen) = (0.0, 0usize);
        for chunk in order.chunks(config.batch_size) {
            let rows: Vec<&LabelledRegion> = chunk.iter().map(|&i| train[i]).collect();
            let batch = windows.batch::<B>(&rows, device)?;
            let logits = model.forward(batch.tokens, batch.row_keep); // [B]
            let loss = model.loss(logits, batch.labels);
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                bail!("the training loss became NaN or infinite in epoch {epoch}; stopped (try a lower --lr)");
            }
            total += value * rows.len() as f64;
            seen += rows.len();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            step += 1;
            model = optim.step(schedule.lr_at(step), model, grads);
            bar.inc(1);
        }
        bar.suspend(|| on_epoch(epoch, total / seen as f64));
    }
    bar.finish_and_clear();
    Ok(model)
}

/// Probability of label 1 for each row (sigmoid of the logit), in order; dropout is off on a
/// backend without autodiff.
pub fn predict<B: KernelBackend>(
    model: &MsaMambaClassifier<B>,
    windows: &LabelledWindows,
    rows: &[&LabelledRegion],
    batch_size: usize,
    device: &B::Device,
) -> Result<Vec<f64>> {
    let mut probabilities = Vec::with_capacity(rows.len());
    let bar = progress::bar(rows.len() as u64, "regions");
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = windows.batch::<B>(chunk, device)?;
        let p = sigmoid(model.forward(batch.tokens, batch.row_keep)); // [B]
        let values = p
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .map_err(|e| anyhow::anyhow!("reading predictions: {e:?}"))?;
        probabilities.extend(values);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(probabilities)
}
