//! What cubecl's CUDA runtime registers for a card of a given compute capability: features, type
//! usages and limits, and the compiler's options. Mirrors cubecl-cuda 0.10's start-up (its
//! `DeviceService::init`), which reads the capability from the driver; the limits are those of a
//! representative card of each capability.

use cubecl::ir::{
    BarrierLevel, DeviceProperties, ElemType, FloatKind, HardwareProperties, MemoryDeviceProperties, OpaqueType,
    SemanticType, StorageType, Type, VectorSize,
    features::{AtomicUsage, Plane, Tma, TypeUsage},
};
use cubecl_common::profile::TimingMethod;
use cubecl_cpp::DialectWmmaCompiler;
use cubecl_cpp::cuda::CudaDialect;
use cubecl_cpp::cuda::arch::CudaArchitecture;
use cubecl_cpp::cuda::mma::CudaWmmaCompiler;
use cubecl_cpp::register_supported_types;
use cubecl_cpp::shared::{
    CompilationOptions, CppSupportedFeatures, register_mma_features, register_scaled_mma_features,
    register_wmma_features,
};

/// Bytes of a buffer's row alignment, as the CUDA runtime sets it (`cuMallocPitched`'s).
pub(crate) const ALIGNMENT: u64 = 512;

/// A CUDA compute capability, as major × 10 + minor (60 for Pascal's P100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(pub u32);

impl Capability {
    /// Pascal (P100), the oldest the kernels are written for.
    pub const PASCAL: Capability = Capability(60);

    /// Shared memory one cube may use, in bytes (the opt-in maximum per block).
    fn max_shared_bytes(self) -> usize {
        match self.0 {
            ..70 => 48 * 1024,
            70..75 => 96 * 1024,
            75..80 => 64 * 1024,
            80 => 163 * 1024,
            81..90 => 99 * 1024,
            _ => 227 * 1024,
        }
    }

    /// Streaming multiprocessors of a representative card (P100, V100, T4, A100, RTX 3090,
    /// L40, H100).
    fn multiprocessors(self) -> u32 {
        match self.0 {
            ..70 => 56,
            70..75 => 80,
            75..80 => 40,
            80 => 108,
            81..89 => 82,
            89 => 142,
            _ => 132,
        }
    }

    /// Device memory of that card, in bytes.
    fn memory_bytes(self) -> u64 {
        let gib = match self.0 {
            ..75 => 16,
            75..80 => 16,
            80 => 80,
            81..90 => 24,
            _ => 80,
        };
        gib << 30
    }

    /// Tensor cores per multiprocessor, as the CUDA runtime counts them.
    fn tensor_cores(self) -> Option<u32> {
        match self.0 {
            70 | 75 => Some(8),
            80 | 86 | 89 | 90 | 91 | 92 | 100 => Some(4),
            _ => None,
        }
    }

    /// The device properties the CUDA runtime registers on such a card.
    pub(crate) fn properties(self) -> DeviceProperties {
        let arch = CudaArchitecture { version: self.0 };
        let wmma =
            <CudaWmmaCompiler as DialectWmmaCompiler<CudaDialect<CudaWmmaCompiler>>>::supported_wmma_combinations(
                &arch,
            );
        let mma =
            <CudaWmmaCompiler as DialectWmmaCompiler<CudaDialect<CudaWmmaCompiler>>>::supported_mma_combinations(&arch);
        let scaled =
            <CudaWmmaCompiler as DialectWmmaCompiler<CudaDialect<CudaWmmaCompiler>>>::supported_scaled_mma_combinations(
                &arch,
            );
        let memory = MemoryDeviceProperties {
            max_page_size: self.memory_bytes() / 4,
            alignment: ALIGNMENT,
        };
        let hardware = HardwareProperties {
            load_width: 128,
            plane_size_min: 32,
            plane_size_max: 32,
            max_bindings: 1024,
            max_shared_memory_size: self.max_shared_bytes(),
            max_cube_count: (i32::MAX as u32, u16::MAX as u32, u16::MAX as u32),
            max_units_per_cube: 1024,
            max_cube_dim: (1024, 1024, 64),
            num_streaming_multiprocessors: Some(self.multiprocessors()),
            num_tensor_cores: self.tensor_cores(),
            min_tensor_cores_dim: if wmma.is_empty() { None } else { Some(8) },
            num_cpu_cores: None,
            max_vector_size: VectorSize::MAX,
        };
        let mut props = DeviceProperties::new(Default::default(), memory, hardware, TimingMethod::System);
        register_supported_types(&mut props);
        props.register_type_usage(ElemType::Float(FloatKind::TF32), TypeUsage::Conversion);
        let atomic = |kind, vector| Type::new(StorageType::Atomic(ElemType::Float(kind))).with_vector_size(vector);
        if self.0 >= 60 {
            props.register_atomic_type_usage(atomic(FloatKind::F64, 1), AtomicUsage::Add | AtomicUsage::LoadStore);
        }
        if self.0 >= 70 {
            for vector in [1, 2] {
                props.register_atomic_type_usage(
                    atomic(FloatKind::F16, vector),
                    AtomicUsage::Add | AtomicUsage::LoadStore,
                );
            }
            props.register_semantic_type(SemanticType::Pipeline);
            props.register_type_usage(OpaqueType::Barrier(BarrierLevel::Unit), TypeUsage::Buffer);
            props.register_type_usage(OpaqueType::Barrier(BarrierLevel::Cube), TypeUsage::Buffer);
            props.features.plane.insert(Plane::Sync);
        }
        if self.0 >= 75 {
            props
                .features
                .matmul
                .ldmatrix
                .insert(ElemType::Float(FloatKind::F16).into());
            props
                .features
                .matmul
                .ldmatrix
                .insert(ElemType::Float(FloatKind::BF16).into());
        }
        if self.0 >= 80 {
            props.features.copy_async = true;
        }
        if self.0 >= 89 {
            for kind in [FloatKind::E4M3, FloatKind::E5M2] {
                props.register_type_usage(ElemType::Float(kind), TypeUsage::Conversion | TypeUsage::Buffer);
            }
        }
        if self.0 >= 90 {
            props.features.tma.insert(Tma::Base);
            props.register_semantic_type(SemanticType::TensorMap);
            props.features.cube_cluster = true;
            props
                .features
                .matmul
                .stmatrix
                .insert(ElemType::Float(FloatKind::F16).into());
            props
                .features
                .matmul
                .stmatrix
                .insert(ElemType::Float(FloatKind::BF16).into());
            for vector in [2, 4] {
                props.register_atomic_type_usage(
                    atomic(FloatKind::F32, vector),
                    AtomicUsage::LoadStore | AtomicUsage::Add,
                );
            }
        }
        props.features.memory_reinterpret = true;
        props.features.alignment = true;
        props.features.plane.insert(Plane::Ops);
        props.features.plane.insert(Plane::NonUniformControlFlow);
        register_wmma_features(wmma, &mut props);
        register_mma_features(mma, &mut props);
        register_scaled_mma_features(scaled, &mut props);
        props
    }

    /// The CUDA compiler's options on such a card. Fast tanh (sm_75 with CUDA 12.8) is left off:
    /// it depends on the toolkit the runtime was built against, not on the card.
    pub(crate) fn compilation_options(self) -> CompilationOptions {
        CompilationOptions {
            warp_size: 32,
            supports_features: CppSupportedFeatures {
                fast_math: true,
                grid_constants: self.0 >= 70,
                clusters: self.0 >= 90,
                elect_sync: self.0 >= 90,
                ..Default::default()
            },
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sm_{}", self.0)
    }
}
