//! The server of [`CudaSourceRuntime`](super::CudaSourceRuntime): host memory for the tensors,
//! and a launch that compiles the kernel for the device's capability and records it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cubecl::prelude::{CubeCount, CubeDim, ExecutionMode};
use cubecl::server::{
    Binding, ComputeServer, CopyDescriptor, IoError, KernelArguments, ProfileError, ProfilingToken,
    ServerCommunication, ServerError, ServerUtilities,
};
use cubecl::{MemoryConfiguration, MemoryUsage};
use cubecl_common::bytes::Bytes;
use cubecl_common::future::DynFut;
use cubecl_common::profile::ProfileDuration;
use cubecl_common::stream_id::StreamId;
use cubecl_cpp::cuda::CudaDialect;
use cubecl_cpp::cuda::mma::CudaWmmaCompiler;
use cubecl_cpp::shared::CppCompiler;
use cubecl_runtime::allocator::ContiguousMemoryLayoutPolicy;
use cubecl_runtime::compiler::CubeTask;
use cubecl_runtime::logging::ServerLogger;
use cubecl_runtime::memory_management::{
    ManagedMemoryHandle, MemoryAllocationMode, MemoryManagement, MemoryManagementOptions,
};
use cubecl_runtime::storage::{BytesResource, BytesStorage, ComputeStorage, ManagedResource};
use cubecl_runtime::timestamp_profiler::TimestampProfiler;

use super::capability::Capability;

/// cubecl's CUDA compiler, as the CUDA runtime instantiates it.
pub(crate) type CudaCompiler = CppCompiler<CudaDialect<CudaWmmaCompiler>>;

/// One kernel variant as the CUDA compiler wrote it.
#[derive(Debug, Clone)]
pub struct RecordedKernel {
    /// The kernel's type, with its comptime type parameters.
    pub name: &'static str,
    /// What tells this variant from the kernel's others: cube size, execution mode and the
    /// kernel's comptime arguments.
    pub variant: String,
    /// The entry point in `source`.
    pub entrypoint: String,
    /// The CUDA C++ source.
    pub source: String,
}

/// A kernel that cubecl's compiler, or the card's limits, refused.
#[derive(Debug, Clone)]
pub struct CompileFailure {
    /// The kernel's type.
    pub name: &'static str,
    /// Its variant, as in [`RecordedKernel::variant`].
    pub variant: String,
    /// Why.
    pub reason: String,
}

/// Everything one device has been asked to launch, each variant once.
#[derive(Debug, Default)]
pub struct Recorded {
    /// By variant.
    pub kernels: BTreeMap<String, RecordedKernel>,
    /// Variants that did not compile or do not fit the card.
    pub failures: Vec<CompileFailure>,
}

/// The recording server. One stream: nothing runs, so nothing overlaps.
#[derive(Debug)]
pub struct CudaSourceServer {
    capability: Capability,
    memory: MemoryManagement<BytesStorage>,
    timestamps: TimestampProfiler,
    utilities: Arc<ServerUtilities<CudaSourceServer>>,
}

impl CudaSourceServer {
    pub(crate) fn new(capability: Capability) -> Self {
        let properties = capability.properties();
        let logger = Arc::new(ServerLogger::default());
        let memory = MemoryManagement::from_configuration(
            BytesStorage::default(),
            &properties.memory,
            MemoryConfiguration::default(),
            logger.clone(),
            MemoryManagementOptions::new("CUDA source"),
        );
        let policy = ContiguousMemoryLayoutPolicy::new(properties.memory.alignment as usize);
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let utilities = Arc::new(ServerUtilities::new(properties, logger, recorded, policy));
        CudaSourceServer {
            capability,
            memory,
            timestamps: TimestampProfiler::default(),
            utilities,
        }
    }

    fn resource(&mut self, binding: &Binding) -> Result<BytesResource, IoError> {
        self.memory
            .get_resource(binding.memory.clone(), binding.offset_start, binding.offset_end)
    }

    /// Compiles `kernel` unless this variant was compiled before, and checks it against the card's
    /// limits, as the CUDA runtime does before loading it.
    fn record(&mut self, kernel: &dyn CubeTask<CudaCompiler>, count: &CubeCount, mode: ExecutionMode) {
        let id = kernel.id();
        let variant = id.stable_format();
        let mut recorded = self.utilities.info.lock().unwrap_or_else(|e| e.into_inner());
        if recorded.kernels.contains_key(&variant) {
            return;
        }
        let fail = |reason: String| CompileFailure {
            name: kernel.name(),
            variant: variant.clone(),
            reason,
        };
        let options = self.capability.compilation_options();
        let compiled = match kernel.compile(&mut Default::default(), &options, mode, kernel.address_type()) {
            Ok(compiled) => compiled,
            Err(error) => return recorded.failures.push(fail(error.to_string())),
        };
        let hardware = &self.utilities.properties.hardware;
        let shared = compiled.repr.as_ref().map_or(0, |repr| repr.shared_memory_size());
        if let Some(reason) = over_limits(compiled.cube_dim, shared, count, hardware) {
            return recorded.failures.push(fail(format!("{reason} on {}", self.capability)));
        }
        recorded.kernels.insert(
            variant.clone(),
            RecordedKernel {
                name: kernel.name(),
                variant,
                entrypoint: compiled.entrypoint_name,
                source: compiled.source,
            },
        );
    }
}

/// What of a launch exceeds the card: the cube's threads or shape, its shared memory, or the grid.
fn over_limits(
    cube: CubeDim,
    shared: usize,
    count: &CubeCount,
    hardware: &cubecl::ir::HardwareProperties,
) -> Option<String> {
    let (dx, dy, dz) = hardware.max_cube_dim;
    if cube.num_elems() > hardware.max_units_per_cube || cube.x > dx || cube.y > dy || cube.z > dz {
        return Some(format!("a cube of {}x{}x{} threads", cube.x, cube.y, cube.z));
    }
    if shared > hardware.max_shared_memory_size {
        return Some(format!(
            "{shared} bytes of shared memory (at most {})",
            hardware.max_shared_memory_size
        ));
    }
    let (gx, gy, gz) = hardware.max_cube_count;
    match *count {
        CubeCount::Static(x, y, z) if x > gx || y > gy || z > gz => Some(format!("a grid of {x}x{y}x{z} cubes")),
        _ => None,
    }
}

impl ComputeServer for CudaSourceServer {
    type Kernel = Box<dyn CubeTask<CudaCompiler>>;
    type Info = Arc<Mutex<Recorded>>;
    type MemoryLayoutPolicy = ContiguousMemoryLayoutPolicy;
    type Storage = BytesStorage;

    fn initialize_memory(&mut self, memory: ManagedMemoryHandle, size: u64, _stream_id: StreamId) {
        // Host memory: an allocation fails only when the process's does.
        let reserved = self.memory.reserve(size).expect("host memory for a tensor");
        self.memory
            .bind(reserved, memory, 0)
            .expect("binding a fresh allocation");
    }

    fn logger(&self) -> Arc<ServerLogger> {
        self.utilities.logger.clone()
    }

    fn utilities(&self) -> Arc<ServerUtilities<Self>> {
        self.utilities.clone()
    }

    fn read(
        &mut self,
        descriptors: Vec<CopyDescriptor>,
        _stream_id: StreamId,
    ) -> DynFut<Result<Vec<Bytes>, ServerError>> {
        let bytes = descriptors
            .iter()
            .map(|descriptor| {
                let resource = self.resource(&descriptor.handle)?;
                let len = descriptor.handle.size_in_used() as usize;
                Ok(Bytes::from_bytes_vec(resource.read()[..len].to_vec()))
            })
            .collect::<Result<Vec<_>, IoError>>()
            .map_err(ServerError::from);
        Box::pin(async move { bytes })
    }

    fn write(&mut self, descriptors: Vec<(CopyDescriptor, Bytes)>, _stream_id: StreamId) {
        for (descriptor, data) in descriptors {
            // Tensors are contiguous under this layout policy; a failed write only leaves bytes
            // that nothing reads for their values.
            if let Ok(mut resource) = self.resource(&descriptor.handle) {
                let target = resource.write();
                let len = target.len().min(data.len());
                target[..len].copy_from_slice(&data[..len]);
            }
        }
    }

    fn sync(&mut self, _stream_id: StreamId) -> DynFut<Result<(), ServerError>> {
        Box::pin(async { Ok(()) })
    }

    fn get_resource(
        &mut self,
        binding: Binding,
        _stream_id: StreamId,
    ) -> Result<ManagedResource<<Self::Storage as ComputeStorage>::Resource>, ServerError> {
        let resource = self.resource(&binding)?;
        Ok(ManagedResource::new(binding.memory, resource))
    }

    unsafe fn launch(
        &mut self,
        kernel: Self::Kernel,
        count: CubeCount,
        _bindings: KernelArguments,
        mode: ExecutionMode,
        _stream_id: StreamId,
    ) {
        self.record(kernel.as_ref(), &count, mode);
    }

    fn flush(&mut self, _stream_id: StreamId) -> Result<(), ServerError> {
        Ok(())
    }

    fn memory_usage(&mut self, _stream_id: StreamId) -> Result<MemoryUsage, ServerError> {
        Ok(self.memory.memory_usage())
    }

    fn memory_cleanup(&mut self, _stream_id: StreamId) {
        self.memory.cleanup(true);
    }

    fn start_profile(&mut self, _stream_id: StreamId) -> Result<ProfilingToken, ServerError> {
        Ok(self.timestamps.start())
    }

    fn end_profile(&mut self, _stream_id: StreamId, token: ProfilingToken) -> Result<ProfileDuration, ProfileError> {
        self.timestamps.stop(token)
    }

    fn allocation_mode(&mut self, mode: MemoryAllocationMode, _stream_id: StreamId) {
        self.memory.mode(mode);
    }
}

impl ServerCommunication for CudaSourceServer {
    const SERVER_COMM_ENABLED: bool = false;
}
