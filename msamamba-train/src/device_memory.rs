//! The GPU allocator's memory readout, for the benchmarks: cubecl's bytes in use and bytes its
//! pool reserved on a device. The CPU backend has no such readout.

use std::any::Any;

/// (bytes in use, bytes reserved) on `device` when it is a cube backend's device; None on the CPU.
pub fn device_memory(device: &dyn Any) -> Option<(u64, u64)> {
    #[cfg(feature = "cuda")]
    if let Some(device) = device.downcast_ref::<cubecl::cuda::CudaDevice>() {
        let usage = <cubecl::cuda::CudaRuntime as cubecl::Runtime>::client(device)
            .memory_usage()
            .ok()?;
        return Some((usage.bytes_in_use, usage.bytes_reserved));
    }
    #[cfg(feature = "wgpu")]
    if let Some(device) = device.downcast_ref::<cubecl::wgpu::WgpuDevice>() {
        let usage = <cubecl::wgpu::WgpuRuntime as cubecl::Runtime>::client(device)
            .memory_usage()
            .ok()?;
        return Some((usage.bytes_in_use, usage.bytes_reserved));
    }
    let _ = device;
    None
}
