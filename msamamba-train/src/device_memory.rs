//! The GPU allocator's memory readout, for the benchmarks: cubecl's bytes in use and bytes its
//! pool reserved on a device. The CPU backend has no such readout.

use std::any::Any;

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

/// The allocator's (bytes in use, bytes reserved) on `device` of runtime `R`.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn usage<R: cubecl::Runtime>(device: &R::Device) -> Option<(u64, u64)> {
    let usage = R::client(device).memory_usage().ok()?;
    Some((usage.bytes_in_use, usage.bytes_reserved))
}
