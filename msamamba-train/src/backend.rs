//! `--backend cpu|wgpu|cuda`: which burn backend a command runs on.

use anyhow::Result;
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn::tensor::backend::AutodiffBackend;
use clap::ValueEnum;
use msamamba_kernels::KernelBackend;

/// A compute backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// CUDA if built in, else WGPU if built in, else CPU.
    Auto,
    /// ndarray on the CPU: always available.
    Cpu,
    /// WGPU: Vulkan, Metal or DX12 (build with `--features wgpu`).
    Wgpu,
    /// CUDA through NVRTC (build with `--features cuda`).
    Cuda,
}

/// What training keeps for the backward on the GPU backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Checkpointing {
    /// Recompute cheap results (element-wise ops, the convolution, the step sizes, the MLP's
    /// hidden layer, the attention's queries, keys and values) in the backward: about 40% of the
    /// activation memory of `none`, for a slower step (BENCHMARKS.md).
    Balanced,
    /// Keep every result the backward needs: the fastest step, the most memory.
    None,
}

/// Work that runs on whichever backend was chosen.
pub trait OnBackend {
    /// What the work returns.
    type Output;
    /// Runs on backend `B` (with autodiff) on `devices` (at least one; the first is the main one).
    fn run<B>(self, devices: Vec<B::Device>, name: &str) -> Result<Self::Output>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend;
}

/// Whether `B` can run here: a GPU backend without a driver or device panics at first use,
/// so try a tiny tensor with the panic caught and silenced, and return the panic's message.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn probe<B: burn::tensor::backend::Backend>() -> std::result::Result<(), String> {
    use burn::tensor::Tensor;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| Tensor::<B, 1>::zeros([1], &Default::default()).into_data());
    std::panic::set_hook(hook);
    result.map(|_| ()).map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        text.lines().next().unwrap_or("unknown error").to_string()
    })
}

/// `--backend auto`: the first GPU backend built in whose device works, else the CPU; each GPU
/// backend passed over is one line saying why and what runs instead (the probe's own messages
/// stay hidden).
fn first_usable() -> BackendChoice {
    #[cfg(feature = "cuda")]
    match probe::<burn::backend::Cuda>() {
        Ok(()) => return BackendChoice::Cuda,
        Err(why) => {
            let next = if cfg!(feature = "wgpu") {
                "trying WGPU"
            } else {
                "running on the CPU"
            };
            tracing::info!("no usable CUDA device found ({why}); {next}");
        }
    }
    #[cfg(feature = "wgpu")]
    match probe::<burn::backend::Wgpu>() {
        Ok(()) => return BackendChoice::Wgpu,
        Err(why) => tracing::info!("no usable WGPU adapter found ({why}); running on the CPU"),
    }
    BackendChoice::Cpu
}

/// Runs `job` on `choice` on the default device. A backend this binary was built without, or
/// one with no usable device, is a one-line error; `auto` falls back to the next backend.
///
/// On the GPU backends autodiff recomputes cheap results in the backward instead of keeping them
/// ([`Checkpointing::Balanced`]). On the CPU, where memory is not the limit, everything is kept.
pub fn dispatch<J: OnBackend>(choice: BackendChoice, job: J) -> Result<J::Output> {
    dispatch_on::<J, BalancedCheckpointing>(choice, &[], job)
}

/// As [`dispatch`], on the GPUs numbered `ids` (empty: the default device), keeping for the
/// backward what `checkpointing` says. Several devices train data-parallel through burn-train's
/// multi-device strategy.
pub fn dispatch_training<J: OnBackend>(
    choice: BackendChoice,
    ids: &[usize],
    checkpointing: Checkpointing,
    job: J,
) -> Result<J::Output> {
    match checkpointing {
        Checkpointing::Balanced => dispatch_on::<J, BalancedCheckpointing>(choice, ids, job),
        Checkpointing::None => dispatch_on::<J, NoCheckpointing>(choice, ids, job),
    }
}

/// [`dispatch_training`] with strategy `C` on the GPU backends (a CPU-only build has none).
#[cfg_attr(
    not(any(feature = "wgpu", feature = "cuda")),
    allow(clippy::extra_unused_type_parameters)
)]
fn dispatch_on<J: OnBackend, C: CheckpointStrategy>(choice: BackendChoice, ids: &[usize], job: J) -> Result<J::Output> {
    msamamba_kernels::device_failure::watch();
    let choice = match choice {
        BackendChoice::Auto => first_usable(),
        chosen => chosen,
    };
    match choice {
        BackendChoice::Auto | BackendChoice::Cpu => {
            if ids.len() > 1 {
                anyhow::bail!("--devices: the CPU backend has one device; several need --backend cuda or wgpu");
            }
            job.run::<Autodiff<burn::backend::NdArray>>(vec![Default::default()], "cpu (ndarray)")
        }
        #[cfg(feature = "wgpu")]
        BackendChoice::Wgpu => match probe::<burn::backend::Wgpu>() {
            Ok(()) => {
                let devices = match ids {
                    [] => vec![Default::default()],
                    ids => ids
                        .iter()
                        .map(|&i| burn::backend::wgpu::WgpuDevice::DiscreteGpu(i))
                        .collect(),
                };
                job.run::<Autodiff<burn::backend::Wgpu, C>>(devices, "wgpu")
            }
            Err(why) => anyhow::bail!("--backend wgpu: no usable GPU adapter ({why})"),
        },
        #[cfg(feature = "cuda")]
        BackendChoice::Cuda => match probe::<burn::backend::Cuda>() {
            Ok(()) => {
                let devices = match ids {
                    [] => vec![Default::default()],
                    ids => ids.iter().map(|&i| burn::backend::cuda::CudaDevice::new(i)).collect(),
                };
                job.run::<Autodiff<burn::backend::Cuda, C>>(devices, "cuda")
            }
            Err(why) => anyhow::bail!("--backend cuda: no usable CUDA device or driver ({why})"),
        },
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "--backend {}: this msamamba was built without it (rebuild with `--features {0}`)",
            format!("{other:?}").to_lowercase()
        ),
    }
}
