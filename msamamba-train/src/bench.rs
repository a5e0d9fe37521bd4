//! What the benchmark binaries (`train_bench`, `score_bench`) share: the `--backend` flag, the
//! GPU allocator's memory readout (cubecl's bytes in use and bytes its pool reserved; the CPU
//! backend has none), and the process's GPU memory as the driver reports it.

use std::any::Any;

use clap::ValueEnum;

/// The backend a benchmark runs on; the GPU ones need the binary built with their feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// ndarray.
    Cpu,
    /// WGPU (`--features wgpu`).
    Wgpu,
    /// CUDA (`--features cuda`).
    Cuda,
}

impl BenchBackend {
    /// The error for a backend this binary was built without.
    pub fn not_built(self) -> anyhow::Error {
        let name = format!("{self:?}").to_lowercase();
        anyhow::anyhow!("--backend {name}: build with `--features {name}`")
    }
}

/// (bytes in use, bytes reserved) on `device` when it is a cube backend's device; None on the CPU.
pub fn device_memory(device: &dyn Any) -> Option<(u64, u64)> {
    #[cfg(feature = "cuda")]
    if let Some(device) = device.downcast_ref::<cubecl::cuda::CudaDevice>() {
        return usage::<cubecl::cuda::CudaRuntime>(device);
    }
    #[cfg(feature = "wgpu")]
    if let Some(device) = device.downcast_ref::<cubecl::wgpu::WgpuDevice>() {
        return usage::<cubecl::wgpu::WgpuRuntime>(device);
    }
    let _ = device;
    None
}

/// The GPU memory `nvidia-smi` shows for this process, in bytes: what the card has given it,
/// which is what other processes cannot have. None without `nvidia-smi` or where it does not list
/// the process.
pub fn process_gpu_memory() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
        .output()
        .ok()?;
    let pid = std::process::id().to_string();
    String::from_utf8_lossy(&out.stdout).lines().find_map(|line| {
        let (p, mib) = line.split_once(',')?;
        (p.trim() == pid).then(|| mib.trim().parse::<u64>().ok().map(|m| m << 20))?
    })
}

/// The allocator's (bytes in use, bytes reserved) on `device` of runtime `R`.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn usage<R: cubecl::Runtime>(device: &R::Device) -> Option<(u64, u64)> {
    let usage = R::client(device).memory_usage().ok()?;
    Some((usage.bytes_in_use, usage.bytes_reserved))
}
