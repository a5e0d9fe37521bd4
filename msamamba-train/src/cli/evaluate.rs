use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_train::atomic_output::AtomicOutput;
use msamamba_train::data::labels::{LabelledRegion, read_labels};
use msamamba_train::plots::roc_curve::write_roc_png;
use msamamba_train::train::classification_metrics::{ClassificationReport, check_both_classes, roc_curve};
use msamamba_train::train::finetune::predict;
use msamamba_train::train::weights::load_classifier;

use super::source_args::SourceArgs;
use msamamba_train::backend::{BackendChoice, OnBackend, dispatch};

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Fine-tuned run directory (`msamamba finetune --out`): config.json and classifier.mpk.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Labelled regions: chrom,start,end,strand,label (0-based start, end exclusive, label 0/1).
    #[arg(long)]
    labels: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    /// Write metrics.json and roc.png here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Regions per batch (default: as fine-tuned).
    #[arg(long, value_parser = super::at_least_one)]
    batch_size: Option<usize>,
    /// Backend to run on.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

pub fn run(args: EvaluateArgs) -> Result<()> {
    let table = read_labels(&args.labels)?;
    let labels: Vec<bool> = table.iter().map(|row| row.label).collect();
    check_both_classes(&format!("{}", args.labels.display()), &labels)?;
    dispatch(args.backend, Job { args, table })
}

struct Job {
    args: EvaluateArgs,
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
        let (config, model) = load_classifier::<B::InnerBackend>(&args.checkpoint, &device)?;
        // The alignment may move or be imported to a store; the rows stay the trained ones.
        let windows = config.windows(&args.source.config(&config.source)?, &args.labels)?;
        windows.check(&table)?;
        println!(
            "evaluating {} on {name}: {} regions of {} ({} bp windows from {})",
            args.checkpoint.display(),
            table.len(),
            args.labels.display(),
            config.window,
            windows.source.describe()
        );
        let rows: Vec<&LabelledRegion> = table.iter().collect();
        let labels: Vec<bool> = table.iter().map(|row| row.label).collect();
        let probabilities = predict(
            &model,
            &windows,
            &rows,
            args.batch_size.unwrap_or(config.batch_size),
            &device,
        )?;
        report("all rows", &probabilities, &labels, args.out.as_deref())?;
        Ok(())
    }
}

/// Prints the metrics of `probabilities` against `labels`; with `out`, writes metrics.json and
/// roc.png and roc.svg there.
pub(super) fn report(split: &str, probabilities: &[f64], labels: &[bool], out: Option<&Path>) -> Result<()> {
    let metrics = ClassificationReport::new(split, probabilities, labels)?;
    println!(
        "{split} ({} regions, {} positive): AUROC {:.4}, AUPRC {:.4}, accuracy {:.4}",
        metrics.examples, metrics.positives, metrics.auroc, metrics.auprc, metrics.accuracy
    );
    let Some(dir) = out else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join("metrics.json");
    let text = serde_json::to_string_pretty(&metrics).context("encoding metrics")?;
    AtomicOutput::write(&json, text + "\n")?;
    let png = dir.join("roc.png");
    if let Some(points) = roc_curve(probabilities, labels) {
        write_roc_png(&points, metrics.auroc, &png)?;
    }
    println!("metrics:   {}", json.display());
    println!("ROC curve: {} (and .svg)", png.display());
    Ok(())
}
