use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_train::atomic_output::AtomicOutput;
use msamamba_train::classification_metrics::{auroc, average_precision};
use msamamba_train::infer::{
    LabelSpec, OutputKind, Provenance, ScoreOptions, ScoreSummary, ScoreWriter, Skip, VariantScorer, score_vcf,
};
use msamamba_train::vcf::VcfReader;

use super::backend::{BackendChoice, OnBackend, dispatch};
use super::source_args::SourceArgs;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Variants: a VCF, plain, gzip or bgzip; `-` reads standard input. Read one record at a
    /// time; each ALT that is a single-base substitution is scored. Its chromosomes match the
    /// alignment's with or without a `chr` prefix (`chr10` and `10`).
    #[arg(long)]
    vcf: PathBuf,
    /// A pre-training run directory (`msamamba pretrain --out`).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    /// Window length L (default: the checkpoint's training window). A causal (unidirectional)
    /// checkpoint sees on each strand a window ending at the site: the L-1 bases before it on
    /// the forward strand, the reverse complement of the L-1 bases after it on the reverse
    /// strand. A bidirectional checkpoint sees the window centred on the site, on both strands.
    #[arg(long)]
    window: Option<usize>,
    /// Variants per forward pass; records wait in memory for at most one batch.
    #[arg(long, default_value_t = 256, value_parser = super::at_least_one)]
    batch_size: usize,
    /// Output. `x.vcf`, or `x.vcf.gz` (bgzipped): every input record, in order and with all
    /// its columns, plus INFO/MSAMAMBA (the score of each ALT, `.` when not scored) and
    /// INFO/MSAMAMBA_SKIP (why not: not_snv, chrom_not_in_alignment, outside_alignment,
    /// ref_mismatch). Any other name (`x.tsv.gz`: bgzipped): a TSV with a `#` header and one
    /// row per ALT (chrom, pos, id, ref, alt, score, reason). Default: the TSV on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Known labels, to report AUROC/AUPRC of the scores: `info:KEY` (INFO KEY=1 or 0) or
    /// `id:PREFIX` (label 1 when an ID starts with PREFIX). Label 1 means damaging: a lower
    /// score should rank it first. Keeps one score and label per scored variant in memory.
    #[arg(long)]
    labels: Option<String>,
    /// Backend.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    if let Some(window) = args.window
        && window < 2
    {
        bail!("--window must be at least 2, got {window}");
    }
    let backend = args.backend;
    dispatch(backend, args)
}

impl OnBackend for ScoreArgs {
    type Output = ();

    fn run<B>(self, devices: Vec<B::Device>, _name: &str) -> Result<()>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        // What can fail is checked before the model is loaded: the labels' form, the output's
        // folder, the VCF's header.
        let labels = self
            .labels
            .as_deref()
            .map(str::parse::<LabelSpec>)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let mut output = self
            .out
            .as_ref()
            .map(|path| AtomicOutput::create(path, &[&self.vcf]))
            .transpose()?;
        let mut reader = VcfReader::open(&self.vcf)?;
        let scorer = VariantScorer::<B::InnerBackend>::load(
            &self.checkpoint,
            |config| self.source.open_for(config),
            self.window,
            &devices[0],
        )?;
        let context = format!("{}, window {}", scorer.context(), scorer.window());
        eprintln!("msamamba: score: {context}");
        let command = std::env::args_os()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let provenance = Provenance::new(command, &self.checkpoint, scorer.weights(), context)
            .with_context(|| format!("{}: cannot read", scorer.weights().display()))?;
        let (kind, out_name) = match &output {
            Some(file) => (OutputKind::of(file.path()), file.path().display().to_string()),
            None => (
                OutputKind {
                    vcf: false,
                    bgzip: false,
                },
                "stdout".into(),
            ),
        };
        let options = ScoreOptions {
            batch_size: self.batch_size,
            labels,
            out_name,
        };
        let inner: Box<dyn io::Write + '_> = match &mut output {
            Some(file) => Box::new(file.writer()),
            None => Box::new(io::BufWriter::new(io::stdout().lock())),
        };
        let writer = ScoreWriter::new(inner, kind, reader.header(), &provenance)
            .with_context(|| format!("writing {}", options.out_name))?;
        let summary = score_vcf(&scorer, &mut reader, writer, &options)?;
        eprintln!("msamamba: {}", report(&summary));
        if summary.scored == 0 {
            bail!("{}: no variant could be scored", reader.path().display());
        }
        if let Some(file) = output {
            file.commit()?;
        }
        if let Some(spec) = &self.labels {
            // Damaging variants should score low: rank by the negated score.
            let ranking: Vec<f64> = summary.labelled.iter().map(|&(s, _)| -f64::from(s)).collect();
            let labels: Vec<bool> = summary.labelled.iter().map(|&(_, l)| l).collect();
            let positives = labels.iter().filter(|&&l| l).count();
            match (auroc(&ranking, &labels), average_precision(&ranking, &labels)) {
                (Some(roc), Some(pr)) => eprintln!(
                    "msamamba: labels: {positives} damaging of {}; AUROC {roc:.4}, AUPRC {pr:.4}",
                    labels.len()
                ),
                _ => bail!(
                    "--labels {spec}: AUROC and AUPRC need both labels among the scored variants ({positives} of {} are 1)",
                    labels.len()
                ),
            }
        }
        Ok(())
    }
}

/// The summary line: what was scored, and what was skipped why.
fn report(summary: &ScoreSummary) -> String {
    let skipped: Vec<String> = Skip::ALL
        .iter()
        .filter_map(|skip| summary.skipped.get(skip).map(|n| format!("{n} {skip}")))
        .collect();
    let skipped = if skipped.is_empty() {
        "none".to_string()
    } else {
        skipped.join(", ")
    };
    format!(
        "scored {} ALT(s) in {} record(s); skipped: {skipped}",
        summary.scored, summary.records
    )
}
