use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use msamamba_kernels::KernelBackend;
use msamamba_train::atomic_output::AtomicOutput;
use msamamba_train::data::source::SourceConfig;
use msamamba_train::plots::loss_curve::{RunLosses, write_png};
use msamamba_train::train::baseline::compare_with_baseline;
use msamamba_train::train::config_file::load_config;
use msamamba_train::train::precision::{PrecisionChoice, resolve};
use msamamba_train::train::pretrain::{PretrainConfig, pretrain};
use msamamba_train::train::run_dir::{RunDir, RunStart};

use super::refuse_changes;
use super::source_args::SourceArgs;
use msamamba_train::backend::{BackendChoice, Checkpointing, OnBackend, dispatch_training};

/// The bundled 30-species UCSC mm9 alignment (see data/maf/README.md for its source).
const BUNDLED_MAF: &[u8] = include_bytes!("../../../data/maf/ucsc_mm9_chr10_big.maf");

#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// Start from this JSON config (as saved next to a run's checkpoints); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output directory: checkpoints, config.json, metrics, loss curve, final model.
    #[arg(long, default_value = "msamamba-run")]
    out: PathBuf,
    /// Continue from the last checkpoint in --out (same config, same data order).
    #[arg(long)]
    resume: bool,
    /// Start afresh in an --out that holds a run: its files (config, metrics, checkpoints,
    /// model) are removed first, each named on stderr. Without it such an --out is refused.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Backend to train on.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
    /// GPUs to train on, data-parallel (e.g. `0,1`); --batch-size is per device.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<usize>,
    /// On the GPU: `balanced` recomputes cheap results in the backward (least memory, e.g. for long
    /// windows), `none` keeps them (fastest step). The gradients are the same; the CPU keeps all.
    #[arg(long, value_enum, default_value = "balanced")]
    checkpointing: Checkpointing,
    /// The activations' type: `auto` is bf16 where the device computes it on tensor cores (CUDA
    /// from compute capability 8.0) and fp32 elsewhere; parameters, optimizer state and
    /// checkpoints are f32 either way, so a run may resume under the other.
    #[arg(long, value_enum, default_value = "auto")]
    precision: PrecisionChoice,
    // Default: the bundled 30-species mm9 alignment, target mm9.
    #[command(flatten)]
    source: SourceArgs,
    /// BED file of regions to cut windows from (default: tile every chromosome).
    #[arg(long)]
    regions: Option<PathBuf>,
    /// Rows after the target, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = super::species_name)]
    species: Option<Vec<String>>,
    /// Peak learning rate (default 3e-5; the bundled demo uses 3e-3).
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// AdamW weight decay.
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Decay every parameter, also A_log, D, dt_bias, norms and embeddings (not decayed by default).
    #[arg(long)]
    decay_all: bool,
    /// Fraction of the steps spent warming up.
    #[arg(long, allow_negative_numbers = true)]
    warmup_fraction: Option<f64>,
    /// MSAs per micro-batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long)]
    accumulate: Option<usize>,
    /// Window length.
    #[arg(long)]
    window: Option<usize>,
    /// Distance between window starts.
    #[arg(long)]
    stride: Option<usize>,
    /// Probability of keeping each non-target row.
    #[arg(long)]
    row_keep: Option<f64>,
    /// Held-out fraction of each chromosome for validation.
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Most validation windows scored per epoch.
    #[arg(long)]
    valid_windows: Option<usize>,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Optimizer steps between checkpoints.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Model width D.
    #[arg(long)]
    d_model: Option<usize>,
    /// Number of blocks.
    #[arg(long)]
    n_layers: Option<usize>,
    /// SSM state size N.
    #[arg(long)]
    d_state: Option<usize>,
    /// Row-attention heads.
    #[arg(long)]
    n_heads: Option<usize>,
    /// Add the reverse-direction scan (BiMamba).
    #[arg(long)]
    bidirectional: bool,
}

/// Writes the bundled alignment to a file the readers can stream.
fn bundled_maf() -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("msamamba-bundled-mm9-{}.maf", BUNDLED_MAF.len()));
    if std::fs::metadata(&path).map(|m| m.len() as usize).ok() != Some(BUNDLED_MAF.len()) {
        AtomicOutput::write(&path, BUNDLED_MAF)?;
    }
    Ok(path)
}

/// The small, fast configuration of the no-argument demo run: a few minutes on two CPU cores.
/// Its 12 rows are the file's first 12 species, all mammals, mouse first.
fn demo(maf: PathBuf) -> PretrainConfig {
    let mut config = PretrainConfig::new()
        .with_source(SourceConfig::new().with_maf(Some(maf)).with_target(Some("mm9".into())))
        .with_lr(3e-3)
        .with_window(64)
        .with_stride(16)
        .with_batch_size(8)
        .with_steps(400)
        .with_checkpoint_every(100);
    config.model = config
        .model
        .with_d_model(32)
        .with_n_layers(2)
        .with_d_state(8)
        .with_max_rows(12);
    config
}

impl PretrainArgs {
    /// The config: --config or `base` (the demo or the defaults when `None`), then every flag
    /// given.
    fn config(&self, base: Option<PretrainConfig>) -> Result<PretrainConfig> {
        let mut config = match (&self.config, base) {
            (Some(path), _) => load_config::<PretrainConfig>(path).context("--config")?,
            (None, Some(base)) => base,
            (None, None) if !self.source.given() => demo(bundled_maf()?),
            (None, None) => PretrainConfig::new(),
        };
        // A source given as a flag replaces the config's, whichever kind it was.
        if self.source.given() {
            config.source = self.source.config(&config.source)?;
        }
        if self.regions.is_some() {
            config.regions = self.regions.clone();
        }
        macro_rules! set {
            ($($flag:ident),*) => { $(if let Some(v) = self.$flag.clone() { config.$flag = v; })* };
        }
        set!(
            lr,
            weight_decay,
            warmup_fraction,
            batch_size,
            accumulate,
            window,
            stride,
            row_keep,
            valid_fraction,
            valid_windows,
            steps,
            checkpoint_every,
            seed
        );
        if self.species.is_some() {
            config.source.species = self.species.clone();
        }
        macro_rules! set_model {
            ($($flag:ident),*) => { $(if let Some(v) = self.$flag { config.model.$flag = v; })* };
        }
        set_model!(d_model, n_layers, d_state, n_heads);
        if self.bidirectional {
            config.model.bidirectional = true;
        }
        if self.decay_all {
            config.decay_all = true;
        }
        Ok(config)
    }
}

pub fn run(args: PretrainArgs) -> Result<()> {
    let run = RunDir { dir: args.out.clone() };
    let config = if args.resume {
        let path = run.dir.join("config.json");
        let saved = load_config::<PretrainConfig>(&path).context("--resume")?;
        // The rows are the run's own record of its source, not a setting (a --config lacks them).
        let asked = PretrainConfig {
            rows: saved.rows.clone(),
            ..args.config(Some(saved.clone()))?
        };
        refuse_changes(&saved, &asked, &path)?;
        saved
    } else {
        args.config(None)?
    };
    dispatch_training(
        args.backend,
        &args.devices,
        args.checkpointing,
        Job {
            config,
            run,
            start: RunStart::of(args.resume, args.overwrite),
            precision: args.precision,
        },
    )
}

struct Job {
    config: PretrainConfig,
    run: RunDir,
    start: RunStart,
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
            config,
            run,
            start,
            precision,
        } = self;
        let precision = resolve::<B>(precision, &device, name)?;
        let data = match (&config.source.maf, &config.source.target, &config.source.store) {
            (Some(maf), Some(target), _) => format!("{} (target {target})", maf.display()),
            (_, _, Some(store)) => store.display().to_string(),
            _ => "no alignment".into(),
        };
        println!(
            "pretraining on {name} in {}: {data}, {} steps of {} x {} bp, lr {}",
            precision.name(),
            config.steps,
            config.batch_size * config.accumulate,
            config.window,
            config.lr
        );
        let started = std::time::Instant::now();
        let outcome = pretrain::<B>(&config, &run, start, devices, precision)?;
        let seconds = started.elapsed().as_secs_f64();
        if let Some(step) = outcome.non_finite_at {
            let kept = run
                .last_checkpoint()
                .map_or("none".to_string(), |e| format!("epoch {e}"));
            bail!(
                "the training loss became NaN or infinite at step {step}; stopped, last good checkpoint: {kept} in {}",
                run.checkpoints().display()
            );
        }
        let curve = run.dir.join("loss_curve.png");
        write_png(&[RunLosses::read("", &run.dir)?], &curve)?;
        let comparison = compare_with_baseline(
            &outcome.model.model,
            &outcome.valid,
            outcome.rows,
            config.batch_size,
            &device,
        );
        println!("trained {} steps in {seconds:.0} s", config.steps);
        println!("checkpoints: {}", run.checkpoints().display());
        println!("final model: {}", run.final_model().display());
        println!("loss curve:  {}", curve.display());
        println!(
            "held-out masked-token accuracy over {} positions: model {:.1}%, per-column frequency baseline {:.1}% ({})",
            comparison.positions,
            100.0 * comparison.model,
            100.0 * comparison.baseline,
            if comparison.model > comparison.baseline {
                "model beats the baseline"
            } else {
                "model does NOT beat the baseline"
            }
        );
        let summary = format!(
            "{{\"steps\": {}, \"seconds\": {seconds:.1}, \"backend\": \"{name}\", \"model_accuracy\": {:.6}, \"baseline_accuracy\": {:.6}, \"positions\": {}}}\n",
            config.steps, comparison.model, comparison.baseline, comparison.positions
        );
        AtomicOutput::write(&run.dir.join("summary.json"), summary)?;
        Ok(())
    }
}
