//! `msamamba score`: flags, then the library's streamed scoring ([`score_vcf`]).

use std::io;
use std::num::NonZero;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_train::atomic_output::AtomicOutput;
use msamamba_train::data::bed::{BedReader, no_regions};
use msamamba_train::data::region::Region;
use msamamba_train::data::variant_table::{TableFormat, VariantTableReader, VariantTableWriter};
use msamamba_train::data::vcf::VcfReader;
use msamamba_train::data::vcf_index::index_of;
use msamamba_train::infer::{
    LabelSpec, OutputKind, Provenance, ScoreOptions, ScoreSummary, ScoreWriter, Skip, VariantScorer, score_table,
    score_vcf,
};
use msamamba_train::train::classification_metrics::{auroc, average_precision};
use noodles_core::Position;

use super::source_args::SourceArgs;
use msamamba_train::backend::{BackendChoice, OnBackend, dispatch};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Variants: a VCF, plain, gzip or bgzip; `-` reads standard input. Read one record at a
    /// time; each ALT that is a single-base substitution is scored. Its chromosomes match the
    /// alignment's with or without a `chr` prefix (`chr10` and `10`).
    #[arg(long, required_unless_present = "variants", conflicts_with = "variants")]
    vcf: Option<PathBuf>,
    /// Variants as a table instead: Parquet (`.parquet`), CSV (`.csv`) or TSV (`.tsv`), plain
    /// or gzip, with columns chrom, pos (1-based), ref and alt, one ALT per row; any other
    /// columns are kept. Read a batch of rows at a time. The output (--out `.parquet`, `.csv`
    /// or `.tsv`; default a TSV on stdout) is every input row and column, in order, plus `score`
    /// and `reason` (why there is no score, as for a VCF).
    #[arg(long)]
    variants: Option<PathBuf>,
    /// Score only the records whose POS lies in these regions of a bgzipped VCF indexed by
    /// tabix (`x.vcf.gz.tbi` or `.csi` beside it): `CHR` or `CHR:START-END` (1-based,
    /// inclusive), comma-separated or repeated. Records come in the index's chromosome order;
    /// overlapping regions are merged. A record belongs to the region holding its POS, so jobs
    /// given regions that tile a genome score every record once.
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// As --regions, from a BED file (0-based start, exclusive end).
    #[arg(long)]
    regions_file: Option<PathBuf>,
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
    /// ref_mismatch, nan: the model's score was not finite). Any other name (`x.tsv.gz`: bgzipped): a TSV with a `#` header and one
    /// row per ALT (chrom, pos, id, ref, alt, score, reason). Default: the TSV on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write a tabix index beside a bgzipped VCF --out (`x.vcf.gz.tbi`; `.csi` when a
    /// chromosome is longer than 2^29 bases), in place once both files are complete. The
    /// records must be sorted by chromosome and position, as tabix requires.
    #[arg(long)]
    index: bool,
    /// Threads for the CPU work: bgzip compression of --out, and the CPU backend's parallel
    /// loops (rayon). Default: every core.
    #[arg(long, value_parser = super::at_least_one)]
    threads: Option<usize>,
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
    if args.variants.is_some() {
        for (given, flag) in [
            (args.index, "--index"),
            (!args.regions.is_empty() || args.regions_file.is_some(), "--regions"),
            (args.labels.is_some(), "--labels"),
        ] {
            if given {
                bail!("{flag} works on a VCF (--vcf), not on a variant table (--variants)");
            }
        }
        if let Some(out) = &args.out
            && TableFormat::of(out).is_none_or(|_| out.extension().is_some_and(|e| e == "gz"))
        {
            bail!(
                "--out {}: a table's scores are written as .parquet, .csv or .tsv",
                out.display()
            );
        }
    }
    if args.index
        && !args
            .out
            .as_deref()
            .is_some_and(|out| OutputKind::of(out) == BGZIPPED_VCF)
    {
        bail!("--index needs --out x.vcf.gz: tabix indexes bgzipped VCF");
    }
    if (!args.regions.is_empty() || args.regions_file.is_some()) && args.vcf.as_deref() == Some(Path::new("-")) {
        bail!("--regions needs an indexed file, not standard input (--vcf -)");
    }
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("--threads")?;
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
        let output = self
            .out
            .as_ref()
            .map(|path| AtomicOutput::create(path, &[self.input()]))
            .transpose()?;
        if let Some(table) = &self.variants {
            return self.score_table::<B::InnerBackend>(table, output, &devices[0]);
        }
        let mut reader = self.reader()?;
        let scorer = self.scorer::<B::InnerBackend>(&devices[0])?;
        let context = format!("{}, window {}", scorer.context(), scorer.window());
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
            sorted: self.index,
        };
        let inner: Box<dyn io::Write + Send> = match &output {
            Some(file) => Box::new(io::BufWriter::new(file.reopen()?)),
            None => Box::new(io::BufWriter::new(io::stdout())),
        };
        let workers = self
            .threads
            .and_then(NonZero::new)
            .or_else(|| std::thread::available_parallelism().ok())
            .unwrap_or(NonZero::<usize>::MIN);
        let writer = ScoreWriter::with_workers(inner, workers, kind, reader.header(), &provenance)
            .with_context(|| format!("writing {}", options.out_name))?;
        let summary = score_vcf(&scorer, &mut reader, writer, &options)?;
        tracing::info!("{}", report(&summary));
        some_scored(&summary, reader.path())?;
        if let Some(file) = output {
            let index = self
                .index
                .then(|| index_of(file.temporary_path(), file.path()))
                .transpose()?;
            file.commit()?;
            // After the VCF: an index older than its file is refused by tabix.
            if let Some(index) = index {
                index.commit()?;
            }
        }
        if let Some(spec) = &self.labels {
            // Damaging variants should score low: rank by the negated score.
            let ranking: Vec<f64> = summary.labelled.iter().map(|&(s, _)| -f64::from(s)).collect();
            let labels: Vec<bool> = summary.labelled.iter().map(|&(_, l)| l).collect();
            let positives = labels.iter().filter(|&&l| l).count();
            match (auroc(&ranking, &labels), average_precision(&ranking, &labels)) {
                (Some(roc), Some(pr)) => tracing::info!(
                    "labels: {positives} damaging of {}; AUROC {roc:.4}, AUPRC {pr:.4}",
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

/// The output kind `--index` needs.
const BGZIPPED_VCF: OutputKind = OutputKind { vcf: true, bgzip: true };

impl ScoreArgs {
    /// The variants' file, VCF or table.
    fn input(&self) -> &Path {
        self.vcf
            .as_deref()
            .or(self.variants.as_deref())
            .unwrap_or(Path::new("-"))
    }

    /// The scorer of the checkpoint and alignment given, on `device`.
    fn scorer<B: KernelBackend>(&self, device: &B::Device) -> Result<VariantScorer<B>> {
        let scorer = VariantScorer::<B>::load(
            &self.checkpoint,
            |config| self.source.open_for(config),
            self.window,
            device,
        )?;
        tracing::info!("score: {}, window {}", scorer.context(), scorer.window());
        Ok(scorer)
    }

    /// Scores the variant table `table` into `output` (stdout when `None`; a TSV unless its name
    /// says Parquet or CSV).
    fn score_table<B: KernelBackend>(
        &self,
        table: &Path,
        output: Option<AtomicOutput>,
        device: &B::Device,
    ) -> Result<()> {
        let mut reader = VariantTableReader::open(table)?;
        let scorer = self.scorer::<B>(device)?;
        let (sink, format, out_name): (Box<dyn io::Write + Send>, _, _) = match &output {
            Some(file) => (
                Box::new(io::BufWriter::new(file.reopen()?)),
                TableFormat::of(file.path()).unwrap_or(TableFormat::Tsv),
                file.path().display().to_string(),
            ),
            None => (
                Box::new(io::BufWriter::new(io::stdout())),
                TableFormat::Tsv,
                "stdout".into(),
            ),
        };
        let writer =
            VariantTableWriter::new(sink, format, &reader.schema()).with_context(|| format!("writing {out_name}"))?;
        let (summary, mut sink) = score_table(&scorer, &mut reader, writer, self.batch_size, &out_name, &mut |_| {})?;
        sink.flush().with_context(|| format!("writing {out_name}"))?;
        drop(sink);
        tracing::info!("{}", report(&summary).replace("record(s)", "row(s)"));
        some_scored(&summary, table)?;
        if let Some(file) = output {
            file.commit()?;
        }
        Ok(())
    }

    /// The VCF, whole or the records of --regions / --regions-file.
    fn reader(&self) -> Result<VcfReader> {
        let vcf = self.vcf.as_deref().unwrap_or(Path::new("-"));
        let mut regions = Vec::new();
        for text in &self.regions {
            regions.push(region_of(text).with_context(|| format!("--regions {text}"))?);
        }
        if let Some(bed) = &self.regions_file {
            let given = regions.len();
            for line in BedReader::open(bed)? {
                regions.push(bounded(&line?.region));
            }
            // Scoring the whole VCF instead would not be what was asked for.
            if regions.len() == given {
                return Err(no_regions(bed).into());
            }
        }
        if regions.is_empty() {
            return Ok(VcfReader::open(vcf)?);
        }
        let (reader, unknown) = VcfReader::open_regions(vcf, &regions)?;
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(ToString::to_string).collect();
            tracing::warn!(
                "{}: its index has no record on the chromosome of {}; nothing scored there",
                vcf.display(),
                names.join(", ")
            );
        }
        Ok(reader)
    }
}

/// `CHR` (all of it) or `CHR:START-END` (1-based, inclusive).
fn region_of(text: &str) -> Result<noodles_core::Region> {
    if text.contains(':') {
        Ok(bounded(&text.parse::<Region>()?))
    } else if text.is_empty() {
        bail!("an empty region")
    } else {
        Ok(noodles_core::Region::new(text, ..))
    }
}

/// `region` (0-based, half-open) as noodles' 1-based inclusive region.
fn bounded(region: &Region) -> noodles_core::Region {
    // A parsed region is never empty, so both ends are positions (>= 1).
    let position = |p: u64| Position::new(p as usize).unwrap_or(Position::MIN);
    noodles_core::Region::new(region.chrom.as_str(), position(region.start + 1)..=position(region.end))
}

/// An error when nothing of `input` was scored: why, when the model gave only NaN.
fn some_scored(summary: &ScoreSummary, input: &Path) -> Result<()> {
    if summary.scored > 0 {
        return Ok(());
    }
    if let Some(nan) = summary.skipped.get(&Skip::Nan) {
        bail!(
            "{}: no finite score: the model gave NaN or infinite scores for all {nan} variant(s) it scored (its weights may have diverged; try an earlier checkpoint)",
            input.display()
        );
    }
    bail!("{}: no variant could be scored", input.display())
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
