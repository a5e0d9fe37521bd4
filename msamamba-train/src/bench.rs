//! What the benchmark binaries (`train_bench`, `score_bench`) share: the `--backend` flag, the
//! GPU allocator's memory readout (cubecl's bytes in use and bytes it reserved; the CPU backend
//! has none), the peak in use sampled while work runs, and the process's GPU memory as the driver
//! reports it.

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

/// The most bytes in use on a cube backend's device while work runs, sampled from a thread of its
/// own: cubecl counts the bytes in use but keeps no peak, and reading them only between phases
/// misses the backward's peak. The samples queue behind the work's launches, so a sampled step's
/// time is not a timing.
pub struct InUsePeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl InUsePeak {
    /// Starts sampling the buffers that the calling thread allocates on `device`; None on the
    /// CPU.
    pub fn start(device: &dyn Any) -> Option<Self> {
        #[cfg(feature = "cuda")]
        if let Some(device) = device.downcast_ref::<cubecl::cuda::CudaDevice>() {
            return Some(Self::sample::<cubecl::cuda::CudaRuntime>(device));
        }
        #[cfg(feature = "wgpu")]
        if let Some(device) = device.downcast_ref::<cubecl::wgpu::WgpuDevice>() {
            return Some(Self::sample::<cubecl::wgpu::WgpuRuntime>(device));
        }
        let _ = device;
        None
    }

    /// The most bytes in use seen since [`InUsePeak::start`].
    pub fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }

    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    fn sample<R: cubecl::Runtime>(device: &R::Device) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut client = R::client(device);
        // cubecl keeps a pool per stream, and a stream per thread: read the caller's.
        // SAFETY: the client only reads the memory counters of the caller's stream.
        unsafe { client.set_stream(cubecl::stream_id::StreamId::current()) };
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut most = 0;
            // A failed device's runner is gone: reading it then would only panic.
            while !stopped.load(Ordering::Relaxed) && msamamba_kernels::device_failure::failure().is_none() {
                if let Ok(usage) = client.memory_usage() {
                    most = most.max(usage.bytes_in_use);
                }
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            most
        });
        Self { stop, thread }
    }
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
