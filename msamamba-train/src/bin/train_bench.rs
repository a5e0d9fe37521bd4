//! `cargo xtask bench train`: one MLM training step of the real model on synthetic MSAs.
//!
//! Times the forward (model and loss), the backward and the AdamW step separately, each
//! device-synchronised, as the median of `--runs` steps after `--warmup` steps; reads the
//! allocator's memory after the forward and after the backward; then times each module of the
//! first block on its own (forward and backward of the sum of its output) on the shapes the step
//! gives it, so the step's time can be traced to the embedding, conv, projections, scan, row
//! attention, MLP, residual norms, and head with loss. One JSON line per measurement on stdout, and a
//! table on stderr.

use std::any::Any;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn::data::dataloader::batcher::Batcher;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, ValueEnum};
use msamamba_kernels::device_failure;
use msamamba_kernels::{KernelBackend, SelectiveScanInput, selective_scan};
use msamamba_model::block::add_norm;
use msamamba_model::mlm_loss::mlm_loss;
use msamamba_model::{MsaMambaConfig, Precision};
use msamamba_train::bench::{BenchBackend, InUsePeak, device_memory, process_gpu_memory};
use msamamba_train::gpu_memory::{self, GpuMemory};
use msamamba_train::train::precision::{PrecisionChoice, resolve};
use msamamba_train::train::weight_decay::SelectiveAdamW;
use msamamba_train::windows::mlm_batch::{MsaBatch, MsaBatcher, MsaBatcherConfig};
use msamamba_train::windows::tiling::MsaItem;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;

/// What autodiff keeps for the backward.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Checkpointing {
    /// Every operation's inputs are kept.
    None,
    /// burn's balanced strategy: memory-bound operations are recomputed in the backward.
    Balanced,
}

#[derive(Parser, Debug)]
#[command(about = "Times one MLM training step of MSAMamba on synthetic MSAs")]
struct Args {
    /// Backend to time.
    #[arg(long, value_enum, default_value_t = BenchBackend::Cpu)]
    backend: BenchBackend,
    /// MSAs per batch.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Rows M per MSA, target included.
    #[arg(long, default_value_t = 90)]
    rows: usize,
    /// Window lengths L, comma-separated: each is its own measurement.
    #[arg(long, value_delimiter = ',', default_value = "1024")]
    len: Vec<usize>,
    /// Probability of keeping each non-target row; 1 is dense.
    #[arg(long, default_value_t = 1.0)]
    row_keep: f64,
    /// Reverse-direction scans as well.
    #[arg(long)]
    bidirectional: bool,
    /// Model width D.
    #[arg(long, default_value_t = 128)]
    d_model: usize,
    /// Blocks.
    #[arg(long, default_value_t = 3)]
    n_layers: usize,
    /// SSM state size N.
    #[arg(long, default_value_t = 16)]
    d_state: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Untimed steps first (kernel compilation, autotuning, pool growth).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// What autodiff keeps for the backward (default: as `msamamba pretrain`, balanced on the
    /// GPU backends and none on the CPU).
    #[arg(long, value_enum)]
    checkpointing: Option<Checkpointing>,
    /// The activations' type: auto is bf16 where the device computes it on tensor cores, as
    /// `msamamba pretrain` chooses.
    #[arg(long, value_enum, default_value_t = PrecisionChoice::Auto)]
    precision: PrecisionChoice,
    /// How the GPU backends allocate memory, as `msamamba --gpu-memory`.
    #[arg(long, value_enum, default_value_t = GpuMemory::Exact)]
    gpu_memory: GpuMemory,
    /// Skip the per-module breakdown (it runs in fp32 only).
    #[arg(long)]
    no_breakdown: bool,
}

fn main() -> Result<()> {
    device_failure::watch();
    let args = Args::parse();
    gpu_memory::configure(args.gpu_memory);
    if args.runs < 1 || args.batch < 1 || args.rows < 1 || args.len.contains(&0) {
        bail!("--runs, --batch, --rows and every --len must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.row_keep) {
        bail!("--row-keep must be between 0 and 1, got {}", args.row_keep);
    }
    let gpu = !matches!(args.backend, BenchBackend::Cpu);
    match args.checkpointing.unwrap_or(if gpu {
        Checkpointing::Balanced
    } else {
        Checkpointing::None
    }) {
        Checkpointing::None => on_backend::<NoCheckpointing>(&args, "none"),
        Checkpointing::Balanced => on_backend::<BalancedCheckpointing>(&args, "balanced"),
    }
}

fn on_backend<C: CheckpointStrategy>(args: &Args, checkpointing: &str) -> Result<()> {
    match args.backend {
        BenchBackend::Cpu => bench::<Autodiff<burn::backend::NdArray, C>>(args, "cpu", checkpointing),
        #[cfg(feature = "wgpu")]
        BenchBackend::Wgpu => bench::<Autodiff<burn::backend::Wgpu, C>>(args, "wgpu", checkpointing),
        #[cfg(feature = "cuda")]
        BenchBackend::Cuda => bench::<Autodiff<burn::backend::Cuda, C>>(args, "cuda", checkpointing),
        #[allow(unreachable_patterns)]
        other => Err(other.not_built()),
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Milliseconds since `start`, after waiting for the device; a failed device is an error, so
/// that no time is printed for work that never ran.
fn elapsed<B: Backend>(device: &B::Device, start: Instant) -> Result<f64> {
    device_failure::check::<B>(device).map_err(|failure| anyhow::anyhow!("{failure}{}", hint(&failure)))?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// What to try when the device ran out of memory.
fn hint(failure: &device_failure::DeviceFailure) -> &'static str {
    if failure.out_of_memory() {
        "; to fit, try a smaller --batch or --len, --row-keep below 1, --checkpointing balanced, or --precision bf16 (CUDA from compute capability 8.0)"
    } else {
        ""
    }
}

/// A synthetic batch: random bases with 10% gaps in every row, masked and row-sampled by the
/// training batcher.
fn batch<B: Backend>(args: &Args, len: usize, seed: u64, device: &B::Device) -> MsaBatch<B> {
    let mut rng = StdRng::seed_from_u64(seed);
    let items = (0..args.batch)
        .map(|_| MsaItem {
            rows: (0..args.rows)
                .map(|_| {
                    (0..len)
                        .map(|_| {
                            if rng.random_bool(0.1) {
                                0
                            } else {
                                rng.random_range(1..=4)
                            }
                        })
                        .collect()
                })
                .collect(),
            seed: rng.random(),
        })
        .collect();
    let batcher = MsaBatcher::new(MsaBatcherConfig::new(args.rows).with_row_keep(args.row_keep));
    batcher.batch(items, device)
}

fn bench<B>(args: &Args, backend: &str, checkpointing: &str) -> Result<()>
where
    B: AutodiffBackend + KernelBackend,
    B::InnerBackend: KernelBackend,
{
    let device = B::Device::default();
    B::seed(&device, 7);
    let config = MsaMambaConfig::new()
        .with_d_model(args.d_model)
        .with_d_state(args.d_state)
        .with_n_layers(args.n_layers)
        .with_bidirectional(args.bidirectional)
        .with_max_rows(args.rows.max(128));
    let precision = resolve::<B>(args.precision, &device, backend)?;
    for &len in &args.len {
        step::<B>(args, &config, len, backend, checkpointing, precision, &device)?;
        match (args.no_breakdown, precision) {
            (true, _) => {}
            (false, Precision::Fp32) => breakdown::<B>(args, &config, len, backend, &device)?,
            (false, _) => eprintln!("per-module breakdown skipped: it times the modules in fp32 only"),
        }
    }
    Ok(())
}

/// Whole training steps: forward + loss, backward, AdamW.
fn step<B>(
    args: &Args,
    config: &MsaMambaConfig,
    len: usize,
    backend: &str,
    checkpointing: &str,
    precision: Precision,
    device: &B::Device,
) -> Result<()>
where
    B: AutodiffBackend + KernelBackend,
    B::InnerBackend: KernelBackend,
{
    let mut model = config.init::<B>(device).with_precision(precision);
    // The optimizer `pretrain` steps with, at its default decay.
    let mut optim = SelectiveAdamW::<msamamba_model::MsaMamba<B>, B>::new(1e-3, false);
    let (mut forward, mut backward, mut update) = (vec![], vec![], vec![]);
    // The allocator's most (in use, reserved) bytes; None where the backend has no readout. The
    // warm-up steps' in use is sampled throughout, the timed steps' only between phases.
    let mut peak: Option<(u64, u64)> = None;
    let mut kept = 0;
    // What the driver shows for the process, at its most.
    let mut process: Option<u64> = None;
    let mut loss_value = f32::NAN;
    for i in 0..args.warmup + args.runs {
        let batch = batch::<B>(args, len, i as u64, device);
        kept = batch.row_keep.clone().int().sum().into_scalar().elem::<i64>();
        device_failure::check::<B>(device)?;
        gpu_memory::release_unused::<B>(device);
        let sampler = if i < args.warmup {
            InUsePeak::start(device as &dyn Any)
        } else {
            None
        };
        let start = Instant::now();
        let logits = model.forward(batch.tokens, batch.row_keep, batch.row_sparse);
        let loss = mlm_loss(logits, batch.targets).loss;
        let forward_ms = elapsed::<B>(device, start)?;
        let after_forward = device_memory(device as &dyn Any);
        let start = Instant::now();
        let grads = loss.backward();
        let backward_ms = elapsed::<B>(device, start)?;
        let after_backward = device_memory(device as &dyn Any);
        let start = Instant::now();
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(1e-4, model, grads);
        let update_ms = elapsed::<B>(device, start)?;
        let sampled = sampler.map(|s| (s.stop(), 0));
        for (used, held) in [after_forward, after_backward, sampled].into_iter().flatten() {
            let (in_use, reserved) = peak.get_or_insert((0, 0));
            *in_use = (*in_use).max(used);
            *reserved = (*reserved).max(held);
        }
        // Between steps, untimed: the driver's count still holds the step's buffers (exact
        // allocations are returned only before the next step, the pool's pages never).
        process = process.max(process_gpu_memory());
        if i >= args.warmup {
            forward.push(forward_ms);
            backward.push(backward_ms);
            update.push(update_ms);
        } else if i + 1 == args.warmup {
            loss_value = loss.into_scalar().elem::<f32>();
        }
    }
    // Every timed step's backward too: whether a process is slow throughout or now and then.
    let backward_runs = backward.clone();
    let (forward, backward, update) = (median(forward), median(backward), median(update));
    let line = json!({
        "bench": "train_step", "backend": backend, "batch": args.batch, "rows": args.rows, "len": len,
        "row_keep": args.row_keep, "kept_rows": kept, "bidirectional": args.bidirectional,
        "checkpointing": checkpointing, "precision": format!("{precision:?}").to_lowercase(),
        "gpu_memory": format!("{:?}", args.gpu_memory).to_lowercase(),
        "d_model": args.d_model, "n_layers": args.n_layers, "d_state": args.d_state,
        "forward_ms": forward, "backward_ms": backward, "optimizer_ms": update,
        "step_ms": forward + backward + update, "runs": args.runs, "backward_runs_ms": backward_runs,
        "peak_in_use_GiB": peak.map(|(in_use, _)| gib(in_use)),
        "reserved_GiB": peak.map(|(_, reserved)| gib(reserved)),
        "process_GiB": process.map(gib),
        "warmup_loss": loss_value,
    });
    println!("{line}");
    eprintln!(
        "{backend} {precision:?} b={} M={} L={len} row-keep {} ({kept} rows scanned): forward {forward:.1} ms, backward {backward:.1} ms, optimizer {update:.1} ms, step {:.1} ms{}",
        args.batch,
        args.rows,
        args.row_keep,
        forward + backward + update,
        peak.map_or(String::new(), |(in_use, reserved)| format!(
            ", peak in use {:.2} GiB, reserved {:.2} GiB{}",
            gib(in_use),
            gib(reserved),
            process.map_or(String::new(), |p| format!(", process {:.2} GiB (nvidia-smi)", gib(p)))
        ))
    );
    Ok(())
}

/// Median forward and backward milliseconds of `f`, whose output is a module's summed
/// output, after warm-up.
fn time_module<B: AutodiffBackend>(
    args: &Args,
    device: &B::Device,
    f: impl Fn() -> Tensor<B, 1>,
) -> Result<(f64, f64)> {
    let (mut forward, mut backward) = (vec![], vec![]);
    for i in 0..args.warmup + args.runs {
        device_failure::check::<B>(device)?;
        let start = Instant::now();
        let out = f();
        let forward_ms = elapsed::<B>(device, start)?;
        let start = Instant::now();
        drop(out.backward());
        let backward_ms = elapsed::<B>(device, start)?;
        if i >= args.warmup {
            forward.push(forward_ms);
            backward.push(backward_ms);
        }
    }
    Ok((median(forward), median(backward)))
}

/// Each module of the first block on its own, plus the embedding and the head with its loss.
fn breakdown<B>(args: &Args, config: &MsaMambaConfig, len: usize, backend: &str, device: &B::Device) -> Result<()>
where
    B: AutodiffBackend + KernelBackend,
{
    let model = config.init::<B>(device);
    let Some(block) = model.blocks.first() else {
        return Ok(());
    };
    let data = batch::<B>(args, len, 0, device);
    // The scan runs on the kept rows only when training row-sparse.
    let scanned = if args.row_keep < 1.0 {
        data.row_keep.clone().int().sum().into_scalar().elem::<i64>() as usize
    } else {
        args.batch * args.rows
    };
    let (b, m, d) = (args.batch, args.rows, args.d_model);
    let e = config.expand * d;
    let normal = Distribution::Normal(0.0, 1.0);
    let input = |shape: [usize; 3]| Tensor::<B, 3>::random(shape, normal, device).require_grad();
    let msa = Tensor::<B, 4>::random([b, m, len, d], normal, device).require_grad();
    let residual = Tensor::<B, 4>::random([b, m, len, d], normal, device).require_grad();
    let mamba = &block.row_scan.mamba;
    let ssm = &mamba.forward_ssm;
    let directions = if args.bidirectional { 2 } else { 1 };
    let (x_d, x_e) = (input([scanned, len, d]), input([scanned, len, e]));
    let dt = input([scanned, len, ssm.dt_rank]);
    // Channels-last, as the model hands them to the scan (as views, made anew for every step:
    // a view is a graph node, used up by each backward).
    let scan_inputs = SelectiveScanInput {
        u: input([scanned, len, e]),
        delta: input([scanned, len, e]),
        a: Tensor::random([e, args.d_state], Distribution::Uniform(-8.0, -0.5), device).require_grad(),
        b: input([scanned, len, args.d_state]),
        c: input([scanned, len, args.d_state]),
        d: Tensor::random([e], normal, device).require_grad(),
        z: Some(input([scanned, len, e])),
        delta_bias: Tensor::random([e], normal, device).require_grad(),
        delta_softplus: true,
    };
    let target = Tensor::<B, 3>::random([b, len, d], normal, device).require_grad();
    type Entry<'a, B> = (&'static str, usize, Box<dyn Fn() -> Tensor<B, 1> + 'a>);
    let entries: Vec<Entry<B>> = vec![
        (
            "embedding",
            1,
            Box::new(|| model.embedding.forward(data.tokens.clone().reshape([b, m * len])).sum()),
        ),
        (
            "conv",
            directions,
            Box::new(|| ssm.conv.forward_silu(x_e.clone()).sum()),
        ),
        (
            "projections",
            1,
            Box::new(|| {
                mamba.in_proj.forward(x_d.clone()).sum()
                    + (ssm.x_proj.forward(x_e.clone()).sum() + ssm.dt_proj.forward(dt.clone()).sum())
                        * directions as f64
                    + mamba.out_proj.forward(x_e.clone()).sum()
            }),
        ),
        (
            "scan",
            directions,
            Box::new(|| {
                let view = |t: &Tensor<B, 3>| t.clone().swap_dims(1, 2);
                selective_scan(SelectiveScanInput {
                    u: view(&scan_inputs.u),
                    delta: view(&scan_inputs.delta),
                    b: view(&scan_inputs.b),
                    c: view(&scan_inputs.c),
                    z: scan_inputs.z.as_ref().map(view),
                    ..scan_inputs.clone()
                })
                .sum()
            }),
        ),
        (
            "row_attention",
            1,
            Box::new(|| block.row_attention.forward(msa.clone(), data.row_keep.clone()).sum()),
        ),
        ("mlp", 1, Box::new(|| block.mlp.forward(msa.clone()).sum())),
        (
            "residual_norms",
            1,
            Box::new(|| {
                [&block.scan_norm, &block.attention_norm, &block.mlp_norm]
                    .into_iter()
                    .map(|norm| add_norm(norm, msa.clone(), residual.clone()).sum())
                    .reduce(|a, b| a + b)
                    .expect("three norms")
            }),
        ),
        (
            "head_loss",
            1,
            Box::new(|| mlm_loss(model.lm_head.forward(target.clone()), data.targets.clone()).loss),
        ),
    ];
    let mut total = 0.0;
    for (name, repeat, f) in &entries {
        let (forward, backward) = time_module::<B>(args, device, f)?;
        let per_step = if matches!(*name, "embedding" | "head_loss") {
            1
        } else {
            args.n_layers
        };
        let step_ms = (forward + backward) * (*repeat * per_step) as f64;
        total += step_ms;
        println!(
            "{}",
            json!({
                "bench": "train_module", "backend": backend, "batch": b, "rows": m, "len": len,
                "row_keep": args.row_keep, "scanned_rows": scanned, "module": name,
                "forward_ms": forward, "backward_ms": backward, "times_per_step": repeat * per_step,
                "step_ms": step_ms,
            })
        );
        eprintln!(
            "  {name:<14} forward {forward:8.2} ms  backward {backward:8.2} ms  x{:<2} = {step_ms:8.2} ms per step",
            repeat * per_step
        );
    }
    eprintln!(
        "  {:<14} {total:.1} ms per step (modules alone; the rest is glue)",
        "sum"
    );
    Ok(())
}
