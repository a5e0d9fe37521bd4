use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_model::pooler::MsaMambaClassifierConfig;
use msamamba_train::data::labels::{LabelledRegion, read_labels};
use msamamba_train::train::checkpoint_recorder::CheckpointRecorder;
use msamamba_train::train::classification_metrics::{ReportError, check_both_classes};
use msamamba_train::train::finetune::{FinetuneConfig, FinetuneData, finetune, predict};
use msamamba_train::train::run_dir::{RunDir, RunStart};
use msamamba_train::train::weights::{classifier_path, load_backbone, load_finetune_config};
use msamamba_train::windows::classifier_batch::LabelledWindows;
use msamamba_train::windows::row_order::RowOrder;

use super::evaluate::report;
use super::refuse_changes;
use super::source_args::SourceArgs;
use msamamba_train::backend::{BackendChoice, OnBackend, dispatch};
use msamamba_train::train::precision::{PrecisionChoice, resolve};

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// Pre-training run directory (`msamamba pretrain --out`): config.json and model.mpk.
    #[arg(long, required_unless_present = "resume")]
    checkpoint: Option<PathBuf>,
    /// Labelled regions: chrom,start,end,strand,label (0-based start, end exclusive, label 0/1;
    /// header line optional).
    #[arg(long, required_unless_present = "resume")]
    labels: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
    /// Rows after the target, comma-separated (default: as pre-trained, else every species).
    #[arg(long, value_delimiter = ',', value_parser = super::species_name)]
    species: Option<Vec<String>>,
    /// Output directory: config.json, checkpoint/, train.tsv, valid.tsv, classifier.mpk,
    /// metrics.json, roc.png and roc.svg of the test split.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its newest usable checkpoint, as it would have gone on
    /// (same data order, dropout and schedule; flags that would change the run are refused).
    #[arg(long)]
    resume: bool,
    /// Start afresh in an --out that holds a run: its files (config, metrics, checkpoints,
    /// classifier, plots) are removed first, each named on stderr. Without it such an --out is
    /// refused.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Window length, centred on each region [default: 128].
    #[arg(long)]
    window: Option<usize>,
    /// Passes over the training split [default: 5].
    #[arg(long)]
    epochs: Option<usize>,
    /// Optimizer steps between checkpoints and validation passes [default: one pass].
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Stop once the validation AUROC has not improved for N checkpoint intervals (burn-train
    /// checks once an interval's metrics are logged, which can be an interval later), and keep
    /// the best interval's weights [default: train every epoch, keep the last weights].
    #[arg(long, value_name = "N")]
    early_stopping: Option<usize>,
    /// Train the pooler and classifier only; the pre-trained backbone stays as it is.
    #[arg(long)]
    freeze_backbone: bool,
    /// Peak AdamW learning rate (betas 0.9 / 0.95): warmup from 0, then cosine decay to 0
    /// [default: 3e-4].
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// AdamW weight decay [default: 1e-3].
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Decay every parameter, also A_log, D, dt_bias, norms and embeddings (not decayed by default).
    #[arg(long)]
    decay_all: bool,
    /// Fraction of the optimizer steps spent warming the learning rate up [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    warmup_fraction: Option<f64>,
    /// Regions per batch [default: 16].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Fraction of each class held out as the test split, reported after training [default: 0.2].
    #[arg(long, allow_negative_numbers = true)]
    test_fraction: Option<f64>,
    /// Fraction of each class held out for validation after every checkpoint interval
    /// [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    valid_fraction: Option<f64>,
    /// Dropout between the pooler and the classifier [default: 0.25].
    #[arg(long, allow_negative_numbers = true)]
    dropout: Option<f64>,
    /// Seed of the splits, the head's initialisation, dropout and the data order [default: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Backend to train on.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
    /// The activations' type: `auto` is bf16 where the device computes it on tensor cores (CUDA
    /// from compute capability 8.0) and fp32 elsewhere; parameters, optimizer state and
    /// checkpoints are f32 either way.
    #[arg(long, value_enum, default_value = "auto")]
    precision: PrecisionChoice,
}

impl FinetuneArgs {
    /// `base` with every flag given applied.
    fn apply(&self, mut config: FinetuneConfig) -> Result<FinetuneConfig> {
        macro_rules! set {
            ($($flag:ident),*) => { $(if let Some(v) = self.$flag.clone() { config.$flag = v; })* };
        }
        set!(
            window,
            epochs,
            lr,
            weight_decay,
            warmup_fraction,
            batch_size,
            test_fraction,
            valid_fraction,
            seed
        );
        macro_rules! set_some {
            ($($flag:ident),*) => { $(if self.$flag.is_some() { config.$flag = self.$flag.clone(); })* };
        }
        set_some!(checkpoint_every, early_stopping);
        if let Some(checkpoint) = &self.checkpoint {
            config.checkpoint = checkpoint.clone();
        }
        if let Some(labels) = &self.labels {
            config.labels = labels.clone();
        }
        if let Some(dropout) = self.dropout {
            config.classifier.dropout = dropout;
        }
        config.decay_all |= self.decay_all;
        config.freeze_backbone |= self.freeze_backbone;
        if self.source.given() {
            config.source = self
                .source
                .config(&config.source)?
                .with_species(config.source.species.clone());
        }
        if self.species.is_some() {
            config.source.species = self.species.clone();
        }
        Ok(config)
    }
}

pub fn run(args: FinetuneArgs) -> Result<()> {
    let run = RunDir { dir: args.out.clone() };
    let start = RunStart::of(args.resume, args.overwrite);
    if start == RunStart::Overwrite
        && let Some(checkpoint) = &args.checkpoint
        && checkpoint.canonicalize().ok() == args.out.canonicalize().ok()
        && args.out.exists()
    {
        bail!(
            "--overwrite would remove --checkpoint {}, the pre-training run fine-tuned: choose another --out",
            checkpoint.display()
        );
    }
    run.refuse_other_run("fine-tuning", "classifier", start)?;
    if start != RunStart::Overwrite && classifier_path(&args.out).exists() {
        bail!(
            "{} already holds a fine-tuned classifier: choose another --out, or pass --overwrite to remove that run",
            args.out.display()
        );
    }
    if args.resume {
        let path = args.out.join("config.json");
        if !path.exists() {
            bail!(
                "--resume: {} holds no fine-tuning run (no config.json)",
                args.out.display()
            );
        }
        let saved = load_finetune_config(&path, &args.out).context("--resume")?;
        refuse_changes(&saved, &args.apply(saved.clone())?, &path)?;
        let table = read_labels(&saved.labels)?;
        let job = Job {
            start: Start::Resume(Box::new(saved)),
            run,
            run_start: start,
            table,
            precision: args.precision,
        };
        return dispatch(args.backend, job);
    }
    let labels = args.labels.clone().context("--labels is required")?;
    let table = read_labels(&labels)?;
    let (backend, precision) = (args.backend, args.precision);
    let job = Job {
        start: Start::Fresh(Box::new(args)),
        run,
        run_start: start,
        table,
        precision,
    };
    dispatch(backend, job)
}

/// How the run begins.
enum Start {
    /// From a pre-trained backbone, as the flags say.
    Fresh(Box<FinetuneArgs>),
    /// From the run's newest usable checkpoint, as its config says.
    Resume(Box<FinetuneConfig>),
}

struct Job {
    start: Start,
    run: RunDir,
    /// Whether the run directory is continued, refused when it holds a run, or emptied first.
    run_start: RunStart,
    table: Vec<LabelledRegion>,
    precision: PrecisionChoice,
}

impl OnBackend for Job {
    type Output = ();

    fn run<B>(self, devices: Vec<B::Device>, name: &str) -> Result<()>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        let device = devices[0].clone();
        let Job {
            start,
            run,
            run_start,
            table,
            precision,
        } = self;
        let precision = resolve::<B>(precision, &device, name)?;
        let (config, windows, backbone) = match start {
            Start::Fresh(args) => {
                let checkpoint = args.checkpoint.clone().context("--checkpoint is required")?;
                let (pretrained, backbone) = load_backbone::<B>(&checkpoint, &device)?;
                // With a MAF, the target defaults to the pre-training run's. The rows are
                // --species (a name the source lacks is an error), or else the pre-trained
                // model's, found by name among every species of the source.
                let mut source_config = args.source.config(&pretrained.source)?;
                if args.species.is_some() || !pretrained.rows.is_empty() {
                    source_config.species = args.species.clone();
                }
                let source = source_config.open()?;
                let present = source.species();
                let trained = if args.species.is_some() {
                    &present
                } else {
                    &pretrained.rows
                };
                let order = RowOrder::new(trained, &present, pretrained.model.max_rows)?;
                // The rows the classifier sees, recorded so that `evaluate` finds the same ones.
                source_config.species = Some(order.species()[1..].to_vec());
                let base = FinetuneConfig::new(
                    MsaMambaClassifierConfig::new(pretrained.model.clone()),
                    checkpoint,
                    args.labels.clone().context("--labels is required")?,
                )
                .with_source(source_config);
                let config = FinetuneConfig {
                    source: base.source.clone(),
                    ..args.apply(base)?
                };
                config.validate()?;
                let windows = LabelledWindows {
                    source,
                    table: config.labels.clone(),
                    len: config.window,
                    order,
                };
                (config, windows, Some(backbone))
            }
            Start::Resume(config) => {
                let windows = config.windows(&config.source, &config.labels)?;
                (*config, windows, None)
            }
        };
        windows.check(&table)?;

        let labels: Vec<bool> = table.iter().map(|row| row.label).collect();
        let [train, valid, test] = config.splits(&labels);
        for (split, rows) in [("test split", &test), ("validation split", &valid)] {
            let split_labels: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
            if let Err(err) = check_both_classes(split, &split_labels) {
                match check_both_classes("table", &labels) {
                    Err(ReportError::OneClass { label, .. }) => {
                        bail!("{}: every region is labelled {label}; {err}", config.labels.display())
                    }
                    _ => bail!("{err} (try a larger --test-fraction or --valid-fraction)"),
                }
            }
        }
        let positives = |rows: &[usize]| rows.iter().filter(|&&i| labels[i]).count();
        println!(
            "fine-tuning {} on {name} in {}: {} regions of {} ({} train, {} positive; {} validation, {} positive; \
             {} test, {} positive), {} bp windows of {} rows from {}, {} epochs, lr {}{}",
            config.checkpoint.display(),
            precision.name(),
            table.len(),
            config.labels.display(),
            train.len(),
            positives(&train),
            valid.len(),
            positives(&valid),
            test.len(),
            positives(&test),
            config.window,
            config.rows(),
            windows.source.describe(),
            config.epochs,
            config.lr,
            if config.freeze_backbone {
                ", backbone frozen"
            } else {
                ""
            }
        );
        std::fs::create_dir_all(&run.dir).with_context(|| format!("creating {}", run.dir.display()))?;
        let config_path = run.dir.join("config.json");

        let rows = |split: &[usize]| -> Vec<&LabelledRegion> { split.iter().map(|&i| &table[i]).collect() };
        let data = FinetuneData {
            train: windows.items(&rows(&train))?,
            valid: windows.items(&rows(&valid))?,
            batcher: windows.batcher(),
        };
        let started = std::time::Instant::now();
        let model = finetune::<B>(&config, backbone, data, &run, run_start, &device, precision)?;
        println!("trained in {:.0} s", started.elapsed().as_secs_f64());
        let weights = classifier_path(&run.dir);
        model
            .clone()
            .save_file(&weights, &CheckpointRecorder::default())
            .with_context(|| format!("writing {}", weights.display()))?;

        let test_labels: Vec<bool> = test.iter().map(|&i| labels[i]).collect();
        let probabilities = predict(&model, &windows, &rows(&test), config.batch_size, &device)?;
        report("test split", &probabilities, &test_labels, Some(&run.dir))?;
        println!("config:    {}", config_path.display());
        println!("classifier: {}", weights.display());
        Ok(())
    }
}
