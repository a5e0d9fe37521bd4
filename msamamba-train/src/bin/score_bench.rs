//! `cargo xtask bench score`: variants scored per second and peak resident memory, streaming a
//! synthetic VCF of N SNVs through `score`'s library path (VCF reader, batched scoring, noodles
//! VCF writer) against the bundled 30-species mm9 alignment (or a store imported from any MAF), on
//! the CPU or a GPU backend. Each N runs in its own process, so each peak (the kernel's VmHWM) is
//! that N's alone: flat memory from 100 k to 1 M SNVs shows that nothing grows with the input. The
//! VCF is generated as it is read and the output discarded, so neither disk nor a file's size
//! enters the measurement. The model is random (speed does not depend on the weights). On a GPU
//! the device memory the allocator holds at the end is reported as well. Results: one JSON line
//! per N, then a table.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use msamamba_kernels::KernelBackend;
use msamamba_model::MsaMambaConfig;
use msamamba_model::tokens::{char_of, complement};
use msamamba_train::bench::{BenchBackend, device_memory};
use msamamba_train::data::source::AlignmentSource;
use msamamba_train::data::vcf::VcfReader;
use msamamba_train::infer::{Context, OutputKind, Provenance, ScoreOptions, ScoreWriter, VariantScorer, score_vcf};
use msamamba_train::windows::row_order::RowOrder;

#[derive(Parser, Debug)]
#[command(about = "Scores synthetic SNVs: variants/s and peak resident memory per VCF size")]
struct Args {
    /// Backend to score on (the GPU ones need the binary built with their feature).
    #[arg(long, value_enum, default_value_t = BenchBackend::Cpu)]
    backend: BenchBackend,
    /// VCF sizes, comma-separated: each is scored in its own process.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    variants: Vec<u64>,
    /// Variants per forward pass (default: 64 on the CPU, 1024 on a GPU).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Window length L.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Model width D (the tests' 16; the paper's 128).
    #[arg(long, default_value_t = 16)]
    d_model: usize,
    /// Model layers (the tests' 1; the paper's 3).
    #[arg(long, default_value_t = 1)]
    n_layers: usize,
    /// The alignment to score against (default: the bundled 30-species mm9 MAF).
    #[arg(long, conflicts_with = "store")]
    maf: Option<PathBuf>,
    /// Score against an alignment store (`msamamba import-maf`'s zarr) instead of a MAF; the
    /// sites fall in its first stored stretch.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Internal: score this many variants here and print one JSON line.
    #[arg(long, hide = true)]
    one: Option<u64>,
}

fn main() -> Result<()> {
    msamamba_kernels::device_failure::watch();
    msamamba_train::gpu_memory::configure(Default::default());
    let args = Args::parse();
    if let Some(n) = args.one {
        return one(&args, n);
    }
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for &n in &args.variants {
        let out = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .args(["--one", &n.to_string()])
            .output()?;
        if !out.status.success() {
            bail!("{n} variants: {}", String::from_utf8_lossy(&out.stderr));
        }
        let line = String::from_utf8(out.stdout)?;
        print!("{line}");
        rows.push(serde_json::from_str::<serde_json::Value>(line.trim())?);
    }
    println!(
        "\n| backend | source | SNVs | seconds | variants/s | peak RSS (MiB) | device in use (reserved) MiB |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let number = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
        let device = match (row["device_in_use_mib"].as_f64(), row["device_reserved_mib"].as_f64()) {
            (Some(used), Some(reserved)) => format!("{used:.0} ({reserved:.0})"),
            _ => "-".into(),
        };
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.1} | {device} |",
            row["backend"].as_str().unwrap_or("?"),
            row["source"].as_str().unwrap_or("?"),
            row["variants"],
            number("seconds"),
            number("variants_per_s"),
            number("peak_rss_mib")
        );
    }
    Ok(())
}

/// Scores `n` synthetic SNVs on the chosen backend and prints a JSON line.
fn one(args: &Args, n: u64) -> Result<()> {
    match args.backend {
        BenchBackend::Cpu => one_on::<burn::backend::NdArray>(args, n, "cpu", 64),
        #[cfg(feature = "wgpu")]
        BenchBackend::Wgpu => one_on::<burn::backend::Wgpu>(args, n, "wgpu", 1024),
        #[cfg(feature = "cuda")]
        BenchBackend::Cuda => one_on::<burn::backend::Cuda>(args, n, "cuda", 1024),
        #[allow(unreachable_patterns)]
        other => Err(other.not_built()),
    }
}

/// Scores `n` synthetic SNVs on backend `B` and prints a JSON line.
fn one_on<B: KernelBackend>(args: &Args, n: u64, backend: &str, default_batch: usize) -> Result<()> {
    let source = match &args.store {
        Some(store) => AlignmentSource::open(None, None, Some(store), None)?,
        None => {
            let maf = args.maf.clone().unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/maf/ucsc_mm9_chr10_big.maf")
            });
            AlignmentSource::open(Some(&maf), Some("mm9"), None, None)?
        }
    };
    let (source_kind, chrom, start, target) = match &source {
        AlignmentSource::Maf { alignment, .. } => {
            let chromosome = alignment.chromosomes.first().context("the MAF has no chromosome")?;
            (
                "maf",
                chromosome.chrom.clone(),
                chromosome.start,
                chromosome.rows[0].clone(),
            )
        }
        AlignmentSource::Store { store, .. } => {
            let stretch = store
                .stored_stretches()?
                .into_iter()
                .next()
                .context("the store holds no chunk")?;
            let target = store.read(&stretch, &[0])?.remove(0);
            ("store", stretch.chrom, stretch.start, target)
        }
    };
    if target.iter().all(|&base| base == 0) {
        bail!("{}: the target row holds no base to place SNVs on", source.describe());
    }
    let species = source.species();
    let config = MsaMambaConfig::new()
        .with_d_model(args.d_model)
        .with_n_layers(args.n_layers)
        .with_max_rows(species.len());
    let device: B::Device = Default::default();
    let model = config.init::<B>(&device);
    let order = RowOrder::new(&species, &species, species.len())?;
    let scorer = VariantScorer::new(
        model,
        Context::of(&config),
        source,
        order,
        args.window,
        PathBuf::from("random"),
        &device,
    )?;
    let generated = Synthetic {
        chrom,
        start,
        target,
        left: n,
        next: 0,
        pending: Vec::new(),
        header_done: false,
    };
    let input: Box<dyn BufRead> = Box::new(BufReader::new(generated));
    let mut reader = VcfReader::new("synthetic.vcf".into(), input)?;
    let provenance = Provenance {
        command: "score_bench".into(),
        checkpoint: Path::new("random").into(),
        weights_sha256: String::new(),
        context: scorer.context().to_string(),
    };
    let kind = OutputKind {
        vcf: true,
        bgzip: false,
    };
    let writer = ScoreWriter::new(io::sink(), kind, reader.header(), &provenance)?;
    let options = ScoreOptions {
        batch_size: args.batch_size.unwrap_or(default_batch),
        labels: None,
        out_name: "sink".into(),
        sorted: false,
    };
    let clock = Instant::now();
    let summary = score_vcf(&scorer, &mut reader, writer, &options)?;
    B::sync(&device)?;
    let seconds = clock.elapsed().as_secs_f64();
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    let memory = device_memory(&device as &dyn std::any::Any);
    println!(
        "{}",
        serde_json::json!({
            "bench": "score",
            "backend": backend,
            "device_in_use_mib": memory.map(|(used, _)| mib(used)),
            "device_reserved_mib": memory.map(|(_, reserved)| mib(reserved)),
            "variants": n,
            "scored": summary.scored,
            "seconds": seconds,
            "variants_per_s": n as f64 / seconds,
            "peak_rss_mib": peak_rss_mib()?,
            "window": args.window,
            "d_model": args.d_model,
            "n_layers": args.n_layers,
            "rows": species.len(),
            "batch_size": options.batch_size,
            "source": source_kind,
        })
    );
    Ok(())
}

/// The process's peak resident memory (Linux's VmHWM), in MiB.
fn peak_rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib / 1024.0)
}

/// A VCF of SNVs made as it is read: sites spread over the alignment's target row (gaps passed
/// over), REF the target's base, ALT its complement.
struct Synthetic {
    chrom: String,
    start: u64,
    target: Vec<u8>,
    left: u64,
    next: u64,
    pending: Vec<u8>,
    header_done: bool,
}

impl Read for Synthetic {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            if !self.header_done {
                self.header_done = true;
                self.pending = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n".to_vec();
            } else if self.left > 0 {
                self.left -= 1;
                let len = self.target.len() as u64;
                // A stride coprime with most lengths visits sites all over the row.
                let mut offset = (self.next * 7919) % len;
                self.next += 1;
                while self.target[offset as usize] == 0 {
                    offset = (offset + 1) % len;
                }
                let base = self.target[offset as usize];
                let line = format!(
                    "{}\t{}\t.\t{}\t{}\t.\t.\t.\n",
                    self.chrom,
                    self.start + offset + 1,
                    char_of(base),
                    char_of(complement(base))
                );
                self.pending = line.into_bytes();
            } else {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}
