use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_model::tokens::{complement, token_of};
use msamamba_model::variant_score::variant_scores;
use msamamba_train::atomic_output::AtomicOutput;
use msamamba_train::classification_metrics::{auroc, average_precision};
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::finetune::load_backbone;
use msamamba_train::vcf::{Snv, read_snvs};
use noodles_vcf::{
    self as vcf,
    header::record::value::{
        Map,
        map::{
            Info,
            info::{Number, Type},
        },
    },
};

use super::backend::{BackendChoice, OnBackend, dispatch};
use super::source_args::SourceArgs;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Variants (VCF, plain or gzip); SNVs are scored, other records skipped.
    #[arg(long)]
    vcf: PathBuf,
    /// A pre-training run directory (`msamamba pretrain --out`).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    /// Window length around each variant.
    #[arg(long, default_value_t = 128)]
    window: usize,
    /// Variants per forward pass.
    #[arg(long, default_value_t = 16, value_parser = super::at_least_one)]
    batch_size: usize,
    /// Output: `.vcf` writes the VCF with INFO/MSAMAMBA added, anything else a TSV
    /// (chrom, pos, ref, alt, score); default: TSV on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Known labels, to report AUROC/AUPRC of the scores: `info:KEY` (INFO KEY=1 or 0) or
    /// `id:PREFIX` (label 1 when the ID starts with PREFIX). Label 1 means damaging: a lower
    /// score should rank it first.
    #[arg(long)]
    labels: Option<String>,
    /// Backend.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

/// The label of `snv` under `spec` (`info:KEY` or `id:PREFIX`).
fn label_of(spec: &str, snv: &Snv, vcf: &std::path::Path) -> Result<bool> {
    match spec.split_once(':') {
        Some(("id", prefix)) => Ok(snv.id.starts_with(prefix)),
        Some(("info", key)) => {
            let value = snv
                .info
                .split(';')
                .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
                .with_context(|| format!("{}:{}: no INFO {key}= for --labels", vcf.display(), snv.line))?;
            match value {
                "1" | "true" => Ok(true),
                "0" | "false" => Ok(false),
                other => bail!("{}:{}: INFO {key}={other} is not 0/1", vcf.display(), snv.line),
            }
        }
        _ => bail!("--labels {spec}: expected info:KEY or id:PREFIX"),
    }
}

pub fn run(args: ScoreArgs) -> Result<()> {
    if args.window < 2 {
        bail!("--window must be at least 2, got {}", args.window);
    }
    let backend = args.backend;
    dispatch(backend, args)
}

/// A variant ready to score: its window rows, target first, and where it sits.
struct Prepared {
    snv: Snv,
    rows: Vec<Vec<u8>>,
}

impl OnBackend for ScoreArgs {
    type Output = ();

    fn run<B>(self, devices: Vec<B::Device>, _name: &str) -> Result<()>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        let device = devices[0].clone();
        // Flags that can fail are checked before the work: the labels' form, the output's folder.
        if let Some(spec) = &self.labels
            && !matches!(spec.split_once(':'), Some(("id" | "info", _)))
        {
            bail!("--labels {spec}: expected info:KEY or id:PREFIX");
        }
        let mut output = self
            .out
            .as_ref()
            .map(|path| AtomicOutput::create(path, &[&self.vcf]))
            .transpose()?;
        let (config, model) = load_backbone::<B::InnerBackend>(&self.checkpoint, &device)?;
        let (source, order) = self.source.open_for(&config)?;
        let mut variants = read_snvs(&self.vcf)?;
        let rows = order.len();
        let centre = self.window / 2;
        let (mut prepared, mut mismatched, mut outside) = (Vec::new(), 0usize, 0usize);
        for snv in std::mem::take(&mut variants.snvs) {
            let position = snv.pos - 1;
            let Some(start) = position.checked_sub(centre as u64) else {
                outside += 1;
                continue;
            };
            let region = Region {
                chrom: snv.chrom.clone(),
                start,
                end: start + self.window as u64,
            };
            let window = match source.window(&region, Strand::Forward) {
                Ok(window) => window,
                Err(err) => {
                    eprintln!(
                        "msamamba: warning: {}:{} line {}: skipped: {err:#}",
                        snv.chrom, snv.pos, snv.line
                    );
                    outside += 1;
                    continue;
                }
            };
            let found = window.rows[0][centre];
            if found != token_of(snv.reference) {
                eprintln!(
                    "msamamba: warning: {}:{} line {}: REF {} but the alignment's target has {}; skipped",
                    snv.chrom,
                    snv.pos,
                    snv.line,
                    snv.reference as char,
                    msamamba_model::tokens::char_of(found)
                );
                mismatched += 1;
                continue;
            }
            prepared.push(Prepared {
                snv,
                rows: order.arrange(&window.rows),
            });
        }
        // Every label is read before the scoring, so a missing one stops the run at once.
        let labels = self
            .labels
            .as_ref()
            .map(|spec| {
                prepared
                    .iter()
                    .map(|p| label_of(spec, &p.snv, &self.vcf))
                    .collect::<Result<Vec<bool>>>()
            })
            .transpose()?;
        let mut scores = Vec::with_capacity(prepared.len());
        for chunk in prepared.chunks(self.batch_size) {
            scores.extend(score_both_strands::<B::InnerBackend>(
                &model, chunk, rows, centre, &device,
            ));
        }
        match &mut output {
            Some(file) => {
                let name = file.path().display().to_string();
                write_scores(&self, file.writer(), &name, &variants.header, &prepared, &scores)?;
            }
            None => write_scores(
                &self,
                &mut std::io::stdout().lock(),
                "stdout",
                &variants.header,
                &prepared,
                &scores,
            )?,
        }
        if let Some(file) = output {
            file.commit()?;
        }
        if let (Some(spec), Some(labels)) = (&self.labels, labels) {
            // Damaging variants should score low: rank by the negated score.
            let ranking: Vec<f64> = scores.iter().map(|&s| -f64::from(s)).collect();
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
        eprintln!(
            "msamamba: scored {} SNV(s); skipped {} with a REF the alignment disagrees with, {} outside the alignment, {} non-SNV record(s)",
            scores.len(),
            mismatched,
            outside,
            variants.skipped
        );
        Ok(())
    }
}

/// Scores on both strands, averaged: the reverse strand sees the complemented bases at the
/// mirrored position.
fn score_both_strands<B: KernelBackend>(
    model: &msamamba_model::MsaMamba<B>,
    chunk: &[Prepared],
    rows: usize,
    centre: usize,
    device: &B::Device,
) -> Vec<f32> {
    let len = chunk[0].rows[0].len();
    let batch = chunk.len();
    let strand = |reverse: bool| {
        let (mut tokens, mut keep, mut refs, mut alts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in chunk {
            for r in 0..rows {
                match p.rows.get(r) {
                    Some(row) if reverse => tokens.extend(row.iter().rev().map(|&t| i64::from(complement(t)))),
                    Some(row) => tokens.extend(row.iter().map(|&t| i64::from(t))),
                    None => tokens.extend(std::iter::repeat_n(0i64, len)),
                }
                keep.push(r < p.rows.len());
            }
            let (r, a) = (token_of(p.snv.reference), token_of(p.snv.alternative));
            let (r, a) = if reverse {
                (complement(r), complement(a))
            } else {
                (r, a)
            };
            refs.push(i64::from(r));
            alts.push(i64::from(a));
        }
        let position = if reverse { len - 1 - centre } else { centre };
        let scores = variant_scores(
            model,
            Tensor::from_data(TensorData::new(tokens, [batch, rows, len]), device),
            Tensor::from_data(TensorData::new(keep, [batch, rows]), device),
            position,
            Tensor::from_data(TensorData::new(refs, [batch]), device),
            Tensor::from_data(TensorData::new(alts, [batch]), device),
        );
        scores.into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default()
    };
    let (forward, reverse) = (strand(false), strand(true));
    forward.iter().zip(&reverse).map(|(f, r)| 0.5 * (f + r)).collect()
}

/// Writes the scores to `out` (named `name` in errors).
fn write_scores(
    args: &ScoreArgs,
    out: &mut impl Write,
    name: &str,
    header: &vcf::Header,
    prepared: &[Prepared],
    scores: &[f32],
) -> Result<()> {
    let as_vcf = args
        .out
        .as_ref()
        .is_some_and(|p| p.extension().is_some_and(|e| e == "vcf"));
    let mut emit = || -> std::io::Result<()> {
        if as_vcf {
            // The input's meta lines (contigs, other INFO keys) stay; samples are not written.
            let mut header = header.clone();
            header.sample_names_mut().clear();
            header.infos_mut().insert(
                "MSAMAMBA".into(),
                Map::<Info>::new(
                    Number::AlternateBases,
                    Type::Float,
                    "MSAMamba zero-shot score, logit(alt) - logit(ref), mean of both strands",
                ),
            );
            vcf::io::Writer::new(&mut *out).write_header(&header)?;
        } else {
            writeln!(out, "chrom\tpos\tref\talt\tscore")?;
        }
        for (p, score) in prepared.iter().zip(scores) {
            let s = &p.snv;
            if as_vcf {
                let info = if s.info == "." {
                    String::new()
                } else {
                    format!("{};", s.info)
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t.\t.\t{info}MSAMAMBA={score:.4}",
                    s.chrom, s.pos, s.id, s.reference as char, s.alternative as char
                )?;
            } else {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{score:.4}",
                    s.chrom, s.pos, s.reference as char, s.alternative as char
                )?;
            }
        }
        out.flush()
    };
    emit().with_context(|| format!("writing {name}"))
}
