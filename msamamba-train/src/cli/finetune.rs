use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::config::config_to_json;
use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_model::pooler::MsaMambaClassifierConfig;
use msamamba_train::atomic_output::AtomicOutput;
use msamamba_train::atomic_recorder::CheckpointRecorder;
use msamamba_train::classification_metrics::{ReportError, check_both_classes};
use msamamba_train::classifier_batch::LabelledWindows;
use msamamba_train::finetune::{FinetuneConfig, classifier_path, finetune, load_backbone, predict, split};
use msamamba_train::labelled_regions::{LabelledRegion, read_labels};
use msamamba_train::pretrain::RunDir;
use msamamba_train::row_order::RowOrder;

use super::backend::{BackendChoice, OnBackend, dispatch};
use super::evaluate::report;
use super::source_args::SourceArgs;

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// Pre-training run directory (`msamamba pretrain --out`): config.json and model.mpk.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Labelled regions: chrom,start,end,strand,label (0-based start, end exclusive, label 0/1;
    /// header line optional).
    #[arg(long)]
    labels: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    /// Rows after the target, comma-separated (default: as pre-trained, else every species).
    #[arg(long, value_delimiter = ',', value_parser = super::species_name)]
    species: Option<Vec<String>>,
    /// Output directory: config.json, classifier.mpk, metrics.json, roc.png and roc.svg.
    #[arg(long)]
    out: PathBuf,
    /// Window length, centred on each region.
    #[arg(long, default_value_t = 128)]
    window: usize,
    /// Passes over the training split.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Peak AdamW learning rate (betas 0.9 / 0.95): warmup from 0, then cosine decay to 0.
    #[arg(long, default_value_t = 3e-4, allow_negative_numbers = true)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    weight_decay: f64,
    /// Decay every parameter, also A_log, D, dt_bias, norms and embeddings (not decayed by default).
    #[arg(long)]
    decay_all: bool,
    /// Fraction of the optimizer steps spent warming the learning rate up.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    warmup_fraction: f64,
    /// Regions per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Fraction of each class held out as the test split.
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Dropout between the pooler and the classifier.
    #[arg(long, default_value_t = 0.25)]
    dropout: f64,
    /// Seed of the split, the head's initialisation and the data order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Backend to train on.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

pub fn run(args: FinetuneArgs) -> Result<()> {
    RunDir { dir: args.out.clone() }.refuse_other_run("fine-tuning", "classifier")?;
    if classifier_path(&args.out).exists() {
        bail!(
            "{} already holds a fine-tuned classifier: choose another --out",
            args.out.display()
        );
    }
    let table = read_labels(&args.labels)?;
    dispatch(args.backend, Job { args, table })
}

struct Job {
    args: FinetuneArgs,
    table: Vec<LabelledRegion>,
}

impl OnBackend for Job {
    type Output = ();

    fn run<B>(self, devices: Vec<B::Device>, name: &str) -> Result<()>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        let device = devices[0].clone();
        let Job { args, table } = self;
        let (pretrained, backbone) = load_backbone::<B>(&args.checkpoint, &device)?;
        // With a MAF, the target defaults to the pre-training run's. The rows are --species (a
        // name the source lacks is an error), or else the pre-trained model's, found by name
        // among every species of the source.
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
        let config = FinetuneConfig::new(
            MsaMambaClassifierConfig::new(pretrained.model.clone()).with_dropout(args.dropout),
            args.checkpoint.clone(),
            args.labels.clone(),
        )
        .with_source(source_config)
        .with_window(args.window)
        .with_epochs(args.epochs)
        .with_lr(args.lr)
        .with_weight_decay(args.weight_decay)
        .with_decay_all(args.decay_all)
        .with_warmup_fraction(args.warmup_fraction)
        .with_batch_size(args.batch_size)
        .with_test_fraction(args.test_fraction)
        .with_seed(args.seed);
        config.validate()?;
        let windows = LabelledWindows {
            source,
            table: args.labels.clone(),
            len: config.window,
            order,
        };
        windows.check(&table)?;

        let labels: Vec<bool> = table.iter().map(|row| row.label).collect();
        let (train, test) = split(&labels, config.test_fraction, config.seed);
        let test_labels: Vec<bool> = test.iter().map(|&i| labels[i]).collect();
        if let Err(err) = check_both_classes("test split", &test_labels) {
            match check_both_classes("table", &labels) {
                Err(ReportError::OneClass { label, .. }) => {
                    bail!("{}: every region is labelled {label}; {err}", args.labels.display())
                }
                _ => bail!("{err} (try a larger --test-fraction)"),
            }
        }
        let positives = |rows: &[usize]| rows.iter().filter(|&&i| labels[i]).count();
        println!(
            "fine-tuning {} on {name}: {} regions of {} ({} train, {} positive; {} test, {} positive), \
             {} bp windows of {} rows from {}, {} epochs, lr {}",
            args.checkpoint.display(),
            table.len(),
            args.labels.display(),
            train.len(),
            positives(&train),
            test.len(),
            positives(&test),
            config.window,
            config.rows(),
            windows.source.describe(),
            config.epochs,
            config.lr
        );
        std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        let config_path = args.out.join("config.json");
        AtomicOutput::write(&config_path, config_to_json(&config))?;

        let train_rows: Vec<&LabelledRegion> = train.iter().map(|&i| &table[i]).collect();
        let started = std::time::Instant::now();
        let model = finetune(&config, backbone, &windows, &train_rows, &device, |epoch, loss| {
            println!("epoch {epoch}/{}: train loss {loss:.4}", config.epochs)
        })?
        .valid();
        println!("trained in {:.0} s", started.elapsed().as_secs_f64());
        let weights = classifier_path(&args.out);
        model
            .clone()
            .save_file(&weights, &CheckpointRecorder::default())
            .with_context(|| format!("writing {}", weights.display()))?;

        let test_rows: Vec<&LabelledRegion> = test.iter().map(|&i| &table[i]).collect();
        let probabilities = predict(&model, &windows, &test_rows, config.batch_size, &device)?;
        report("test split", &probabilities, &test_labels, Some(&args.out))?;
        println!("config:    {}", config_path.display());
        println!("classifier: {}", weights.display());
        Ok(())
    }
}
