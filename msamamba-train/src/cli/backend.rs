//! `--backend cpu|wgpu|cuda`: which burn backend a command runs on.

use anyhow::Result;
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use clap::ValueEnum;
use msamamba_kernels::SelectiveScanBackend;

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

/// Work that runs on whichever backend was chosen.
pub trait OnBackend {
    /// What the work returns.
    type Output;
    /// Runs on backend `B` (with autodiff) on `device`.
    fn run<B>(self, device: B::Device, name: &str) -> Result<Self::Output>
    where
        B: AutodiffBackend + SelectiveScanBackend,
        B::InnerBackend: SelectiveScanBackend;
}

/// Runs `job` on `choice`; a backend this binary was built without is a one-line error.
pub fn dispatch<J: OnBackend>(choice: BackendChoice, job: J) -> Result<J::Output> {
    match choice {
        BackendChoice::Auto if cfg!(feature = "cuda") => dispatch(BackendChoice::Cuda, job),
        BackendChoice::Auto if cfg!(feature = "wgpu") => dispatch(BackendChoice::Wgpu, job),
        BackendChoice::Auto | BackendChoice::Cpu => {
            job.run::<Autodiff<burn::backend::NdArray>>(Default::default(), "cpu (ndarray)")
        }
        #[cfg(feature = "wgpu")]
        BackendChoice::Wgpu => job.run::<Autodiff<burn::backend::Wgpu>>(Default::default(), "wgpu"),
        #[cfg(feature = "cuda")]
        BackendChoice::Cuda => job.run::<Autodiff<burn::backend::Cuda>>(Default::default(), "cuda"),
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "--backend {}: this msamamba was built without it (rebuild with `--features {0}`)",
            format!("{other:?}").to_lowercase()
        ),
    }
}
