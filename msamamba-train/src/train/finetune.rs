//! `msamamba finetune`: classification fine-tuning of a pre-trained MSAMamba (pooler head, BCE)
//! on labelled regions through burn-train's Learner (checkpoints, resume, warmup + cosine,
//! validation AUROC / AUPRC, early stopping), and loading the result for `msamamba evaluate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::config::{Config, config_to_json};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::{AutodiffModule, Module};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{LearningRateMetric, LossMetric};
use burn::train::{
    InferenceStep, Interrupter, Learner, MetricEarlyStoppingStrategy, StoppingCondition, SupervisedTraining,
};
use msamamba_kernels::KernelBackend;
use msamamba_model::pooler::{MsaMambaClassifier, MsaMambaClassifierConfig};
use msamamba_model::{MsaMamba, Precision};
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};

use crate::atomic_output::AtomicOutput;
use crate::data::labels::LabelledRegion;
use crate::data::source::SourceConfig;
use crate::progress;
use crate::train::checkpoint_probe::check_forward;
use crate::train::checkpoint_recorder::CheckpointRecorder;
use crate::train::classifier_step::{ClassifierTraining, Ranking, RankingMetric};
use crate::train::config_file::{CONFIG_VERSION, SavedConfig};
use crate::train::metrics_log::{FINETUNE_COLUMNS, MetricsLog};
use crate::train::run_dir::{RunDir, RunEnd, RunStart};
use crate::train::schedule::WarmupCosineConfig;
use crate::train::weight_decay::SelectiveAdamW;
use crate::train::weights::load_weights;
use crate::windows::classifier_batch::{ClassifierBatch, ClassifierBatcher, ClassifierItem, LabelledWindows};
use crate::windows::epoch_loader::EpochLoader;
use crate::windows::row_order::RowOrder;

/// Everything a fine-tuning run depends on; saved as `config.json` next to `classifier.mpk`.
#[derive(Config, Debug)]
pub struct FinetuneConfig {
    /// The classifier: the pre-trained backbone's config and the head's dropout.
    pub classifier: MsaMambaClassifierConfig,
    /// The pre-training run the backbone weights came from.
    pub checkpoint: PathBuf,
    /// The label table (`chrom,start,end,strand,label`).
    pub labels: PathBuf,
    /// The config's format version: [`CONFIG_VERSION`] as this msamamba writes it; a config
    /// without one was written before versions were recorded.
    #[config(default = "CONFIG_VERSION")]
    pub version: u32,
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
    /// Fraction of each class held out for testing (reported once, after training).
    #[config(default = 0.2)]
    pub test_fraction: f64,
    /// Fraction of each class held out for validation (AUROC and AUPRC after every checkpoint
    /// interval; early stopping and the best checkpoint go by its AUROC).
    #[config(default = 0.1)]
    pub valid_fraction: f64,
    /// Optimizer steps between checkpoints and validations (default: one pass over the
    /// training split).
    #[config(default = "None")]
    pub checkpoint_every: Option<usize>,
    /// Stop when the validation AUROC has not improved for this many checkpoint intervals, and
    /// keep the weights of the best one (default: train every epoch, keep the last weights).
    #[config(default = "None")]
    pub early_stopping: Option<usize>,
    /// Train the pooler and classifier only; the pre-trained backbone stays as it is.
    #[config(default = false)]
    pub freeze_backbone: bool,
    /// Seed of the split, the head's initialisation, dropout and the data order.
    #[config(default = 42)]
    pub seed: u64,
}

impl SavedConfig for FinetuneConfig {
    const KIND: &'static str = "fine-tuning";
    const KEY: &'static str = "classifier";
    const OTHER_KEY: &'static str = "model";
    const COMMAND: &'static str = "msamamba finetune";
    const REQUIRED: &'static [&'static str] = &["classifier", "classifier.model", "checkpoint", "labels"];

    fn reference() -> Self {
        Self::new(
            MsaMambaClassifierConfig::new(msamamba_model::MsaMambaConfig::new()),
            PathBuf::new(),
            PathBuf::new(),
        )
    }
}

impl FinetuneConfig {
    /// Checks what would otherwise fail late or panic.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("window", self.window),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("checkpoint_every", self.checkpoint_every.unwrap_or(1)),
            ("early_stopping", self.early_stopping.unwrap_or(1)),
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
        if !(self.valid_fraction > 0.0 && self.valid_fraction + self.test_fraction < 1.0) {
            bail!(
                "--valid-fraction must be above 0 and leave a training split beside --test-fraction {}, got {}",
                self.test_fraction,
                self.valid_fraction
            );
        }
        if !(0.0..1.0).contains(&self.classifier.dropout) {
            bail!("--dropout must be in [0, 1), got {}", self.classifier.dropout);
        }
        crate::train::pretrain::check_weight_decay(self.weight_decay)?;
        crate::train::pretrain::check_warmup_fraction(self.warmup_fraction)?;
        crate::train::pretrain::check_model(&self.classifier.model)
    }

    /// Rows M of every window: the target and `species`.
    pub fn rows(&self) -> usize {
        1 + self.source.species.as_ref().map_or(0, Vec::len)
    }

    /// The windows of this run's rows cut from `source` (the run's own, or the same alignment
    /// moved or imported to a store): the rows are found by name among every species of it.
    pub fn windows(&self, source: &SourceConfig, table: &Path) -> Result<LabelledWindows> {
        let source = source.clone().with_species(None).open()?;
        let present = source.species();
        let trained: Vec<String> = present
            .iter()
            .take(1)
            .chain(self.source.species.iter().flatten())
            .cloned()
            .collect();
        let order = RowOrder::new(&trained, &present, self.classifier.model.max_rows)?;
        Ok(LabelledWindows {
            source,
            table: table.to_path_buf(),
            len: self.window,
            order,
        })
    }

    /// Optimizer steps of one pass over `train` examples.
    pub fn steps_per_pass(&self, train: usize) -> usize {
        train.div_ceil(self.batch_size)
    }

    /// Optimizer steps between checkpoints (burn-train epochs) for `train` examples.
    pub fn interval(&self, train: usize) -> usize {
        self.checkpoint_every.unwrap_or(self.steps_per_pass(train))
    }

    /// The split of a table with these `labels`: train, validation and test row indices (see
    /// [`split`]).
    pub fn splits(&self, labels: &[bool]) -> [Vec<usize>; 3] {
        let (rest, test) = split(labels, self.test_fraction, self.seed);
        let rest_labels: Vec<bool> = rest.iter().map(|&i| labels[i]).collect();
        // The validation share of what the test split left, so that it is valid_fraction of all.
        let share = self.valid_fraction / (1.0 - self.test_fraction);
        let (train, valid) = split(&rest_labels, share, self.seed ^ 0x7a1d);
        [
            train.iter().map(|&k| rest[k]).collect(),
            valid.iter().map(|&k| rest[k]).collect(),
            test,
        ]
    }
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

/// The examples of a fine-tuning run, read.
pub struct FinetuneData {
    /// The training split.
    pub train: Vec<ClassifierItem>,
    /// The validation split.
    pub valid: Vec<ClassifierItem>,
    /// Stacks items into batches.
    pub batcher: ClassifierBatcher,
}

/// Fine-tunes a classifier on `data` into the run directory `run` through burn-train's
/// Learner: AdamW (mamba_ssm's decay convention) and BCE, warmup then cosine over
/// `epochs` passes, a checkpoint and a validation pass (loss, AUROC, AUPRC into `valid.tsv`)
/// every `checkpoint_every` steps. A fresh run starts from `backbone` with a fresh head; with
/// `start` [`RunStart::Resume`], the run continues from its newest usable checkpoint exactly as it would have gone
/// on (the data order and dropout are functions of the seed and the interval). Returns the
/// final weights, or with early stopping those of the best validation AUROC.
pub fn finetune<B>(
    config: &FinetuneConfig,
    backbone: Option<MsaMamba<B>>,
    data: FinetuneData,
    run: &RunDir,
    start: RunStart,
    device: &B::Device,
    precision: Precision,
) -> Result<MsaMambaClassifier<B::InnerBackend>>
where
    B: AutodiffBackend + KernelBackend,
    B::InnerBackend: KernelBackend,
{
    config.validate()?;
    if data.train.is_empty() || data.valid.is_empty() {
        bail!("the training or the validation split is empty");
    }
    let _lock = run.lock()?;
    let config_path = run.dir.join("config.json");
    // The batch that decides whether a checkpoint is good, made once.
    let probe: ClassifierBatch<B::InnerBackend> = data
        .batcher
        .batch(data.valid.iter().take(config.batch_size).cloned().collect(), device);
    let good = |epoch| {
        run.check_checkpoint::<B, ClassifierTraining<B>>(epoch, device, |weights| {
            let model = load_checkpoint::<B>(config, weights, &config_path, device)?.valid();
            let output = InferenceStep::step(&model, probe.clone());
            check_forward(weights, output.loss, output.probabilities)
        })
    };
    let start_epoch = run.start_epoch(start, good)?;
    // Written once the directory is locked and known to hold no other run's checkpoints: a
    // refused run leaves the config of the one it would have overwritten as it was.
    AtomicOutput::write(&config_path, config_to_json(config))?;
    B::seed(device, config.seed);
    let mut classifier = match backbone {
        Some(backbone) => config.classifier.with_backbone(backbone, device),
        // Resumed: the checkpoint holds every weight.
        None => config.classifier.init(device),
    };
    classifier.backbone = classifier.backbone.with_precision(precision);
    if config.freeze_backbone {
        classifier.backbone = classifier.backbone.no_grad();
    }
    let model = ClassifierTraining { classifier };

    let interval = config.interval(data.train.len());
    let total_steps = config.epochs * config.steps_per_pass(data.train.len());
    let epochs = total_steps.div_ceil(interval);
    let interrupter = Interrupter::new();
    let loader_train = EpochLoader::<B, _, _>::new(
        data.train,
        data.batcher.clone(),
        config.batch_size,
        interval,
        total_steps,
        config.seed,
        start_epoch.unwrap_or(0),
        device.clone(),
        interrupter.clone(),
    );
    let load_failure = loader_train.failure();
    let loader_valid = DataLoaderBuilder::<B::InnerBackend, _, _>::new(data.batcher)
        .batch_size(config.batch_size)
        .set_device(device.clone())
        .build(InMemDataset::new(data.valid));
    let optim = SelectiveAdamW::<ClassifierTraining<B>, B>::new(config.weight_decay, config.decay_all);
    let scheduler = WarmupCosineConfig::new(config.lr, total_steps)
        .with_warmup_fraction(config.warmup_fraction)
        .init();
    let (log, health) = MetricsLog::new(
        &run.dir,
        FINETUNE_COLUMNS,
        interrupter.clone(),
        interval.div_ceil(10),
        interval,
        total_steps,
        1,
        start_epoch,
    )?;
    let auroc = RankingMetric::new(Ranking::Auroc);
    // burn-train's best-metric checkpointing reads the metrics as its asynchronous processor
    // logs them, which can be intervals late (it took a later, worse interval for the best):
    // with early stopping every checkpoint is kept, the best found in valid.tsv once training
    // ends and the others pruned to the last two.
    let keep = match config.early_stopping {
        Some(_) => usize::MAX,
        None => 2,
    };
    let mut training = SupervisedTraining::new(&run.dir, Arc::new(loader_train), loader_valid)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(RankingMetric::new(Ranking::Auroc))
        .metric_train_numeric(RankingMetric::new(Ranking::Auprc))
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(auroc.clone())
        .metric_valid_numeric(RankingMetric::new(Ranking::Auprc))
        .with_file_checkpointer(CheckpointRecorder::default())
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(keep))
        .num_epochs(epochs)
        .renderer(log)
        .with_interrupter(interrupter.clone())
        .with_application_logger(None);
    if let Some(patience) = config.early_stopping {
        training = training.early_stopping(MetricEarlyStoppingStrategy::new(
            &auroc,
            Aggregate::Mean,
            Direction::Highest,
            Split::Valid,
            StoppingCondition::NoImprovementSince { n_epochs: patience },
        ));
    }
    if let Some(epoch) = start_epoch {
        training = training.checkpoint(epoch);
    }
    let result = health.watch_launch::<B, _>(device, || training.launch(Learner::new(model, optim, scheduler)));
    let non_finite_at = health.non_finite_at();
    let end = RunEnd {
        non_finite_at,
        device_failed: health.device_failed(),
        load_failure: load_failure.lock().unwrap_or_else(|e| e.into_inner()).take(),
        batches_per_epoch: interval,
        epochs,
        interrupter,
    };
    run.settle(end, good)?;
    if let Some(step) = non_finite_at {
        bail!("the training loss became NaN or infinite at step {step}; stopped (try a lower --lr)");
    }
    match config.early_stopping {
        Some(_) => best_checkpoint(config, run, device),
        None => Ok(result.context("training stopped without a model")?.model.classifier),
    }
}

/// The classifier under training with the weights of checkpoint file `weights` of the run whose
/// config is `config_path`.
fn load_checkpoint<B: Backend>(
    config: &FinetuneConfig,
    weights: &Path,
    config_path: &Path,
    device: &B::Device,
) -> Result<ClassifierTraining<B>> {
    let fresh = ClassifierTraining {
        classifier: config.classifier.init::<B>(device),
    };
    let n_layers = config.classifier.model.n_layers;
    load_weights(
        fresh,
        weights,
        config_path,
        n_layers,
        |r| r.classifier.backbone.blocks.len(),
        device,
    )
}

/// The classifier of the checkpoint with the best validation AUROC in `valid.tsv` among those
/// kept.
fn best_checkpoint<B: Backend>(
    config: &FinetuneConfig,
    run: &RunDir,
    device: &B::Device,
) -> Result<MsaMambaClassifier<B>> {
    let path = run.dir.join("valid.tsv");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    // One row per interval, in order: row k is checkpoint k.
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let auroc = header
        .split('\t')
        .position(|name| name == "auroc")
        .with_context(|| format!("{}: no auroc column", path.display()))?;
    let best = lines
        .enumerate()
        .filter_map(|(k, line)| Some((k + 1, line.split('\t').nth(auroc)?.parse::<f64>().ok()?)))
        .filter(|(epoch, auroc)| auroc.is_finite() && run.checkpoint_path("model", *epoch).exists())
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .with_context(|| format!("{}: no validation AUROC of a kept checkpoint", path.display()))?;
    let weights = run.checkpoint_path("model", best.0);
    let model = load_checkpoint::<B>(config, &weights, &run.dir.join("config.json"), device)?;
    println!(
        "best validation AUROC {:.4} at checkpoint {}: its weights are kept",
        best.1, best.0
    );
    run.keep_checkpoints(|epoch, last| epoch == best.0 || epoch + 2 > last)?;
    Ok(model.classifier)
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
        msamamba_kernels::device_failure::after_read::<B>(device)?;
        probabilities.extend(values);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(probabilities)
}
