//! How the GPU backends hold device memory: `--gpu-memory exact|pool`.
//!
//! cubecl's default pool carves buffers out of pages of up to a quarter of the card and keeps
//! every page it ever made, so the card holds well beyond what is in use, and the largest
//! activations of a long window find no room although the card has it in pieces. Its
//! "persistent" mode gives each buffer an allocation of exactly its size from the driver's
//! stream-ordered allocator, and hands a freed one to the next buffer of the same size. A
//! training step repeats its buffers' sizes, so the card holds about what the step needs at its
//! peak; where the sizes change (a row-sparse step keeps another number of rows, validation runs
//! whole batches), [`release_unused`] before each step hands the driver back the buffers no tensor
//! holds, so that sizes no longer in use do not pile up. On CUDA the driver's pool is told to keep
//! what it gets back instead of unmapping it at the next synchronisation, so that the next step's
//! allocations come from memory the process already holds, whatever their sizes.
//!
//! Hand-written: cubecl's CUDA runtime builds its pool layout inside its own device set-up, so a
//! program cannot pass it another; the allocation mode is what its configuration lets a program
//! choose, and the configuration must be set, once, before the first device is opened. The kernel
//! cache ([`crate::kernel_cache`]) is set in the same configuration. The driver pool's release
//! threshold is one driver call that neither cubecl nor burn makes.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::backend::Backend;
use clap::ValueEnum;

/// How GPU buffers are allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum GpuMemory {
    /// Each buffer its own allocation of its exact size, reused by the next buffer of that size;
    /// unused ones go back to the driver before each training step.
    #[default]
    Exact,
    /// cubecl's pool of large pages, each sliced among many buffers and kept for the process's
    /// life.
    Pool,
}

/// Whether [`configure`] chose [`GpuMemory::Exact`].
static EXACT: AtomicBool = AtomicBool::new(false);

/// Sets cubecl's configuration for this process: the allocation mode and, on CUDA, the kernel
/// cache. Call it before any GPU device is opened; later calls, and settings a `cubecl.toml` makes
/// itself, leave what is set.
pub fn configure(memory: GpuMemory) {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    {
        use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
        use std::sync::Once;
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
            EXACT.store(choose(&mut config, memory), Ordering::Relaxed);
            #[cfg(feature = "cuda")]
            crate::kernel_cache::apply(&mut config);
            // `set` panics once the configuration was read: then cubecl's own settings stay.
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            if std::panic::catch_unwind(|| CubeClRuntimeConfig::set(config)).is_err() {
                EXACT.store(false, Ordering::Relaxed);
            }
            std::panic::set_hook(hook);
        });
    }
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    let _ = memory;
}

/// Sets `memory` in cubecl's `config` unless the configuration (a `cubecl.toml`) chose an
/// allocation mode itself; returns whether buffers will get allocations of their exact size.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn choose(config: &mut cubecl::config::CubeClRuntimeConfig, memory: GpuMemory) -> bool {
    use cubecl::config::memory::PersistentMemory;
    if matches!(config.memory.persistent_memory, PersistentMemory::Enabled) && memory == GpuMemory::Exact {
        config.memory.persistent_memory = PersistentMemory::Enforced;
    }
    matches!(config.memory.persistent_memory, PersistentMemory::Enforced)
}

/// Whether buffers get allocations of their exact size in this process.
pub fn exact() -> bool {
    EXACT.load(Ordering::Relaxed)
}

/// Hands the device's unused buffers back to the driver when buffers are exact-sized; a no-op
/// with the pool (whose pages stay) and on the CPU. Training calls it before each step.
pub fn release_unused<B: Backend>(device: &B::Device) {
    if exact() {
        #[cfg(feature = "cuda")]
        if let Some(device) = (device as &dyn std::any::Any).downcast_ref::<cubecl::cuda::CudaDevice>() {
            keep_returned_memory(device.index);
        }
        B::memory_cleanup(device);
    }
}

/// Sets CUDA device `index`'s default memory pool, which cubecl's stream-ordered allocations come
/// from, to keep the memory returned to it (once per device). Best effort: without it the step is
/// slower, not wrong.
#[cfg(feature = "cuda")]
fn keep_returned_memory(index: usize) {
    use cudarc::driver::sys;
    use std::collections::HashSet;
    use std::sync::Mutex;
    static DONE: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if !done.get_or_insert_with(HashSet::new).insert(index) {
        return;
    }
    // SAFETY: plain driver calls on out-parameters that live across them; the device was opened
    // by cubecl, so the driver is initialised.
    unsafe {
        let mut device = 0;
        let mut pool = std::ptr::null_mut();
        let mut keep = u64::MAX;
        let ok = sys::cuDeviceGet(&mut device, index as i32) == sys::CUresult::CUDA_SUCCESS
            && sys::cuDeviceGetDefaultMemPool(&mut pool, device) == sys::CUresult::CUDA_SUCCESS
            && sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut keep as *mut u64).cast(),
            ) == sys::CUresult::CUDA_SUCCESS;
        if !ok {
            tracing::debug!("CUDA device {index}: its memory pool keeps no returned memory");
        }
    }
}

#[cfg(all(test, any(feature = "cuda", feature = "wgpu")))]
mod tests {
    use super::*;
    use cubecl::config::CubeClRuntimeConfig;
    use cubecl::config::memory::PersistentMemory;

    #[test]
    fn exact_enforces_cubecls_persistent_mode_unless_its_configuration_chose_a_mode() {
        let mut config = CubeClRuntimeConfig::default();
        assert!(choose(&mut config, GpuMemory::Exact));
        assert!(matches!(config.memory.persistent_memory, PersistentMemory::Enforced));
        let mut config = CubeClRuntimeConfig::default();
        assert!(!choose(&mut config, GpuMemory::Pool));
        assert!(matches!(config.memory.persistent_memory, PersistentMemory::Enabled));
        let mut config = CubeClRuntimeConfig::default();
        config.memory.persistent_memory = PersistentMemory::Disabled;
        assert!(!choose(&mut config, GpuMemory::Exact), "a cubecl.toml's choice stays");
    }
}
