//! `msamamba pretrain`: MLM pre-training through burn-train's Learner.

use std::path::PathBuf;
use std::sync::Arc;

use crate::train::checkpoint_probe::check_forward;
use crate::train::checkpoint_recorder::CheckpointRecorder;
use crate::train::config_file::{CONFIG_VERSION, SavedConfig};
use anyhow::{Context, Result, bail};
use burn::config::{Config, config_to_json};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, PerplexityMetric};
use burn::train::{
    ExecutionStrategy, InferenceStep, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining, TrainingStrategy,
};
use msamamba_kernels::KernelBackend;
use msamamba_model::mlm_mask::MlmMaskConfig;
use msamamba_model::tokens::MASK;
use msamamba_model::{MsaMambaConfig, Precision};

use crate::atomic_output::AtomicOutput;
use crate::data::bed::read_bed;
use crate::data::source::{AlignmentSource, SourceConfig};
use crate::train::memory_estimate;
use crate::train::metrics_log::{MetricsLog, PRETRAIN_COLUMNS};
use crate::train::mlm_step::MlmModel;
use crate::train::run_dir::{RunDir, RunEnd, RunStart};
use crate::train::schedule::WarmupCosineConfig;
use crate::train::weight_decay::SelectiveAdamW;
use crate::train::weights::load_mlm;
use crate::windows::epoch_loader::EpochLoader;
use crate::windows::mlm_batch::{MsaBatch, MsaBatcher, MsaBatcherConfig};
use crate::windows::tiling::{
    MsaItem, WindowDataset, WindowSet, hold_out, tile_alignment, tile_extents, windows_in_regions,
};

/// Everything a pre-training run depends on; saved as `config.json` next to the checkpoints.
#[derive(Config, Debug)]
pub struct PretrainConfig {
    /// The config's format version: [`CONFIG_VERSION`] as this msamamba writes it; a config
    /// without one was written before versions were recorded.
    #[config(default = "CONFIG_VERSION")]
    pub version: u32,
    /// The model.
    #[config(default = "MsaMambaConfig::new()")]
    pub model: MsaMambaConfig,
    /// The alignment to train on.
    #[config(default = "SourceConfig::new()")]
    pub source: SourceConfig,
    /// BED file of regions to cut windows from (default: tile every chromosome).
    #[config(default = "None")]
    pub regions: Option<PathBuf>,
    /// Species of the model's rows, target first, as the run resolved them from the source (the
    /// first `max_rows` of its species): written by `pretrain`, so that every later use of the
    /// model finds its rows by these names. Empty in runs made before they were recorded.
    #[config(default = "Vec::new()")]
    pub rows: Vec<String>,
    /// Peak learning rate.
    #[config(default = 3e-5)]
    pub lr: f64,
    /// AdamW weight decay.
    #[config(default = 1e-3)]
    pub weight_decay: f64,
    /// Decay every parameter, also A_log, D, dt_bias, norms and embeddings (mamba_ssm does not).
    #[config(default = false)]
    pub decay_all: bool,
    /// Fraction of the optimizer steps spent on linear warmup (cosine decay after).
    #[config(default = 0.1)]
    pub warmup_fraction: f64,
    /// MSAs per micro-batch.
    #[config(default = 8)]
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[config(default = 1)]
    pub accumulate: usize,
    /// Window length L.
    #[config(default = 128)]
    pub window: usize,
    /// Distance between window starts when tiling the alignment.
    #[config(default = 32)]
    pub stride: usize,
    /// Probability of keeping each non-target row (row-sparse training).
    #[config(default = 0.5)]
    pub row_keep: f64,
    /// Fraction of each chromosome's span held out for validation (its end).
    #[config(default = 0.1)]
    pub valid_fraction: f64,
    /// Most validation windows scored per epoch (spread evenly over the held-out ones).
    #[config(default = 2048)]
    pub valid_windows: usize,
    /// Optimizer steps in the whole run.
    #[config(default = 1000)]
    pub steps: usize,
    /// Optimizer steps between checkpoints (one Learner epoch).
    #[config(default = 100)]
    pub checkpoint_every: usize,
    /// Seed of the model initialisation and of the data order.
    #[config(default = 42)]
    pub seed: u64,
}

impl SavedConfig for PretrainConfig {
    const KIND: &'static str = "pre-training";
    const KEY: &'static str = "model";
    const OTHER_KEY: &'static str = "classifier";
    const COMMAND: &'static str = "msamamba pretrain";
    const REQUIRED: &'static [&'static str] = &[];

    fn reference() -> Self {
        Self::new()
    }
}

impl PretrainConfig {
    /// Checks what burn would otherwise reject with a panic.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("batch_size", self.batch_size),
            ("accumulate", self.accumulate),
            ("window", self.window),
            ("stride", self.stride),
            ("steps", self.steps),
            ("checkpoint_every", self.checkpoint_every),
            ("valid_windows", self.valid_windows),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("--{} must be at least 1", name.replace('_', "-"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr must be a positive number, got {}", self.lr);
        }
        if !(0.0..=1.0).contains(&self.row_keep) {
            bail!("--row-keep must be between 0 and 1, got {}", self.row_keep);
        }
        if !(0.0..1.0).contains(&self.valid_fraction) {
            bail!("--valid-fraction must be in [0, 1), got {}", self.valid_fraction);
        }
        check_warmup_fraction(self.warmup_fraction)?;
        check_weight_decay(self.weight_decay)?;
        check_model(&self.model)
    }

    /// Learner epochs: one per checkpoint interval, the last one shorter when `steps` is not a
    /// multiple of `checkpoint_every`.
    pub fn epochs(&self) -> usize {
        self.steps.div_ceil(self.checkpoint_every)
    }
}

/// The model's sizes, each error naming its command-line flag.
pub fn check_model(model: &MsaMambaConfig) -> Result<()> {
    model
        .validate()
        .map_err(|err| anyhow::anyhow!("--{} {}", err.field.replace('_', "-"), err.reason))
}

/// Refuses a warmup fraction outside [0, 1].
pub fn check_warmup_fraction(fraction: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&fraction) {
        bail!("--warmup-fraction must be between 0 and 1, got {fraction}");
    }
    Ok(())
}

/// A weight decay must be a finite number >= 0.
pub fn check_weight_decay(weight_decay: f64) -> Result<()> {
    if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
        bail!("--weight-decay must be 0 or more, got {weight_decay}");
    }
    Ok(())
}

/// What a run produced.
pub struct PretrainOutcome<B: AutodiffBackend> {
    /// The trained model (inner backend).
    pub model: MlmModel<B::InnerBackend>,
    /// Validation windows.
    pub valid: Vec<MsaItem>,
    /// Rows per MSA.
    pub rows: usize,
    /// Global step whose loss was not finite, if any.
    pub non_finite_at: Option<usize>,
}

/// Trains on `devices` (data-parallel when several; the first is the main one) into `run`,
/// started as `start` says: resumed from its last usable checkpoint, or a new run.
pub fn pretrain<B>(
    config: &PretrainConfig,
    run: &RunDir,
    start: RunStart,
    devices: Vec<B::Device>,
    precision: Precision,
) -> Result<PretrainOutcome<B>>
where
    B: AutodiffBackend + KernelBackend,
    B::InnerBackend: KernelBackend,
{
    config.validate()?;
    let device = devices.first().context("no device to train on")?.clone();
    run.refuse_other_run("pre-training", "model", start)?;
    std::fs::create_dir_all(&run.dir).with_context(|| format!("creating {}", run.dir.display()))?;
    let _lock = run.lock()?;
    let check = |epoch| {
        run.check_checkpoint::<B, MlmModel<B>>(epoch, &device, |weights| {
            load_mlm::<B>(config, weights, &run.dir.join("config.json"), &device).map(drop)
        })
    };
    let start_epoch = run.start_epoch(start, check)?;
    let source = Arc::new(config.source.open()?);
    let species = source.species();
    if config.source.species.is_some() && species.len() > config.model.max_rows {
        bail!(
            "--species: {} rows with the target, but the model takes at most max_rows {}",
            species.len(),
            config.model.max_rows
        );
    }
    let rows = species.len().min(config.model.max_rows);
    // The CPU backend holds everything in host memory, where a failed allocation aborts.
    if B::name(&device).contains("ndarray") {
        memory_estimate::check(
            memory_estimate::pretrain_bytes(config, rows),
            memory_estimate::available_bytes(),
        )?;
    }
    // The model's species, saved with the run: every later use finds its rows by these names.
    let config = &PretrainConfig {
        rows: species[..rows].to_vec(),
        ..config.clone()
    };
    let extents = source.extents();
    let regions = match &config.regions {
        Some(path) => Some((path, read_bed(path)?)),
        None => None,
    };
    let (len, stride) = (config.window as u64, config.stride as u64);
    let windows = |stride| -> Result<WindowSet> {
        match (&regions, source.as_ref()) {
            (Some((path, regions)), _) => windows_in_regions(regions, &extents, len, stride)
                .with_context(|| format!("--regions {}", path.display())),
            (None, AlignmentSource::Maf { alignment, .. }) => Ok(tile_alignment(
                alignment,
                config.window,
                stride as usize,
                config.window / 2,
            )),
            // Reading a whole store to drop gap windows would cost a pass over the genome: the
            // chunks never written are dropped here, the remaining gap windows as they are read.
            (None, AlignmentSource::Store { store, .. }) => Ok(tile_extents(&store.stored_stretches()?, len, stride)),
        }
    };
    let tiled = windows(stride)?;
    // The held-out end of each chromosome is the end of what its windows cover, so a store
    // and a MAF give the same split over the same regions.
    let covered = tiled.extents();
    let (train, _) = hold_out(&tiled, &covered, config.valid_fraction);
    // Validation windows do not overlap: each held-out position is scored once.
    let (_, valid) = hold_out(&windows(len)?, &covered, config.valid_fraction);
    let valid = valid.thin(config.valid_windows as u64);
    if train.count() == 0 || valid.count() == 0 {
        bail!(
            "{}: {} training and {} validation windows of {} bp: the alignment is too short for this --window",
            source.describe(),
            train.count(),
            valid.count(),
            config.window
        );
    }
    let batcher = |row_keep| {
        MsaBatcher::new(
            MsaBatcherConfig::new(rows)
                .with_row_keep(row_keep)
                .with_mlm(MlmMaskConfig::new()),
        )
    };
    let valid_windows = valid.count();
    let train_set = WindowDataset::new(source.clone(), train, config.seed);
    // Validation windows are few: read them now, so a source that cannot supply them fails here.
    let valid_set = WindowDataset::new(source.clone(), valid, config.seed ^ 0x5eed).load()?;
    if valid_set.is_empty() {
        bail!(
            "{}: none of the {} validation windows has a target base (the target is not aligned there); choose windows with --regions",
            source.describe(),
            valid_windows
        );
    }
    // The batch that decides whether a checkpoint is good, made once.
    let probe: MsaBatch<B::InnerBackend> =
        batcher(1.0).batch(valid_set.iter().take(config.batch_size).cloned().collect(), &device);
    let good = |epoch| {
        run.check_checkpoint::<B, MlmModel<B>>(epoch, &device, |weights| {
            let model = load_mlm::<B>(config, weights, &run.dir.join("config.json"), &device)?.valid();
            let output = InferenceStep::step(&model, probe.clone());
            check_forward(weights, output.loss, output.logits)
        })
    };
    let start_epoch = run.confirm_start(start_epoch, good)?;
    let interrupter = Interrupter::new();
    let batches_per_epoch = config.checkpoint_every * config.accumulate;
    // Each device takes its share of an epoch: batches_per_epoch batches per device.
    let loader_train = EpochLoader::<B, _, _>::new(
        train_set,
        batcher(config.row_keep),
        config.batch_size,
        batches_per_epoch * devices.len(),
        config.steps * config.accumulate * devices.len(),
        config.seed,
        start_epoch.unwrap_or(0),
        device.clone(),
        interrupter.clone(),
    );
    let load_failure = loader_train.failure();
    let loader_valid = DataLoaderBuilder::<B::InnerBackend, _, _>::new(batcher(1.0))
        .batch_size(config.batch_size)
        .set_device(device.clone())
        .build(InMemDataset::new(valid_set.clone()));

    // Seeded here, after every checkpoint check (loading one draws a fresh model's weights), so
    // that a resumed run draws as the uninterrupted one did.
    B::seed(&device, config.seed);
    let model = MlmModel {
        model: config.model.init::<B>(&device).with_precision(precision),
        accumulate: config.accumulate,
    };
    let optim = SelectiveAdamW::new(config.weight_decay, config.decay_all);
    let scheduler = WarmupCosineConfig::new(config.lr, config.steps)
        .with_warmup_fraction(config.warmup_fraction)
        .with_accumulate(config.accumulate)
        .init();
    // Written once every input is read and checked: a run refused for its input leaves no
    // config.json that would make its --out a run.
    AtomicOutput::write(&run.dir.join("config.json"), config_to_json(config))?;
    let (log, health) = MetricsLog::new(
        &run.dir,
        PRETRAIN_COLUMNS,
        interrupter.clone(),
        10,
        batches_per_epoch,
        config.steps * config.accumulate,
        devices.len(),
        start_epoch,
    )?;
    let mut training = SupervisedTraining::new(&run.dir, Arc::new(loader_train), loader_valid)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new().with_pad_token(usize::from(MASK)))
        .metric_train_numeric(PerplexityMetric::new().with_pad_token(usize::from(MASK)))
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new().with_pad_token(usize::from(MASK)))
        .metric_valid_numeric(PerplexityMetric::new().with_pad_token(usize::from(MASK)))
        .with_file_checkpointer(CheckpointRecorder::default())
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(3))
        .num_epochs(config.epochs())
        .renderer(log)
        .with_interrupter(interrupter.clone())
        .with_application_logger(None);
    if config.accumulate > 1 {
        training = training.grads_accumulation(config.accumulate);
    }
    if let Some(epoch) = start_epoch {
        training = training.checkpoint(epoch);
    }
    if devices.len() > 1 {
        training = training.with_training_strategy(TrainingStrategy::Default(ExecutionStrategy::multi(
            devices,
            MultiDeviceOptim::OptimMainDevice,
        )));
    }
    let result = health.watch_launch::<B, _>(&device, || training.launch(Learner::new(model, optim, scheduler)));
    let non_finite_at = health.non_finite_at();
    let load_failure = load_failure.lock().unwrap_or_else(|e| e.into_inner()).take();
    let end = RunEnd {
        non_finite_at,
        load_failure,
        device_failed: health.device_failed(),
        batches_per_epoch,
        epochs: config.epochs(),
        interrupter,
    };
    run.settle(end, good)?;
    let result = result.context("training stopped without a model")?;
    if non_finite_at.is_none() {
        crate::train::weights::check_finite(&result.model, &run.final_model())?;
        result
            .model
            .clone()
            .save_file(run.final_model(), &CheckpointRecorder::default())
            .with_context(|| format!("writing {}", run.final_model().display()))?;
    }
    Ok(PretrainOutcome {
        model: result.model,
        valid: valid_set,
        rows,
        non_finite_at,
    })
}
