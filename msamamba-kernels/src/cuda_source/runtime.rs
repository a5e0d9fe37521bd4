//! [`CudaSourceRuntime`]: cubecl's runtime trait over the recording server, with the CUDA
//! runtime's compiler and register layout, and a device per compute capability.

use std::sync::{Arc, Mutex};

use cubecl::Runtime;
use cubecl::client::ComputeClient;
use cubecl::device::{DeviceId, ServerUtilitiesHandle};
use cubecl::ir::{ContiguousElements, MatrixLayout, MmaProperties, TargetProperties};
use cubecl::zspace::{Shape, Strides};
use cubecl_common::device::{Device, DeviceService};
use cubecl_cpp::cuda::mma::contiguous_elements_cuda;

use super::capability::Capability;
use super::server::{CudaCompiler, CudaSourceServer, Recorded};

/// The runtime (see the module doc of [`cuda_source`](super)).
#[derive(Debug, Clone)]
pub struct CudaSourceRuntime;

/// A card of one compute capability. Devices of the same capability share one server, and so one
/// record of what was launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CudaSourceDevice {
    /// The capability whose features and limits the kernels are compiled for.
    pub capability: Capability,
}

impl Default for CudaSourceDevice {
    fn default() -> Self {
        CudaSourceDevice {
            capability: Capability::PASCAL,
        }
    }
}

impl Device for CudaSourceDevice {
    fn from_id(device_id: DeviceId) -> Self {
        CudaSourceDevice {
            capability: Capability(device_id.index_id.into()),
        }
    }

    fn to_id(&self) -> DeviceId {
        DeviceId {
            type_id: 0,
            index_id: self.capability.0 as u16,
        }
    }
}

impl burn::tensor::backend::DeviceOps for CudaSourceDevice {}

impl DeviceService for CudaSourceServer {
    fn init(device_id: cubecl_common::device::DeviceId) -> Self {
        CudaSourceServer::new(CudaSourceDevice::from_id(device_id).capability)
    }

    fn utilities(&self) -> ServerUtilitiesHandle {
        cubecl::server::ComputeServer::utilities(self) as ServerUtilitiesHandle
    }
}

impl Runtime for CudaSourceRuntime {
    type Compiler = CudaCompiler;
    type Server = CudaSourceServer;
    type Device = CudaSourceDevice;

    fn client(device: &Self::Device) -> ComputeClient<Self> {
        ComputeClient::load(device)
    }

    fn name(_client: &ComputeClient<Self>) -> &'static str {
        "cuda"
    }

    fn require_array_lengths() -> bool {
        true
    }

    fn max_cube_count() -> (u32, u32, u32) {
        (i32::MAX as u32, u16::MAX as u32, u16::MAX as u32)
    }

    fn can_read_tensor(shape: &Shape, strides: &Strides) -> bool {
        cubecl::std::tensor::is_contiguous(shape, strides)
    }

    fn target_properties() -> TargetProperties {
        TargetProperties {
            mma: MmaProperties {
                register_size_bits: 32,
                const_plane_size: 32,
                register_layout_a: MatrixLayout::RowMajor,
                register_layout_b: MatrixLayout::ColMajor,
                register_layout_acc: MatrixLayout::RowMajor,
                register_duplication_a: 1,
                register_duplication_b: 1,
                register_duplication_acc: 1,
                contiguous_elements: ContiguousElements::new(contiguous_elements_cuda),
            },
        }
    }

    fn enumerate_devices(_type_id: u16, _info: &Arc<Mutex<Recorded>>) -> Vec<DeviceId> {
        vec![CudaSourceDevice::default().to_id()]
    }
}

/// What `device` has been asked to launch so far.
pub fn recorded(device: &CudaSourceDevice) -> Arc<Mutex<Recorded>> {
    let client = CudaSourceRuntime::client(device);
    // Launches reach the server through a queue; a blocking call behind them drains it. The
    // server's flush cannot fail.
    let _ = client.flush();
    client.info().clone()
}

/// burn's cube backend on this runtime, as burn's `CubeBackend<CudaRuntime, ..>`.
pub type CudaSourceBackend = burn_cubecl::CubeBackend<CudaSourceRuntime, f32, i32, u8>;

/// The same with burn's kernel fusion, as burn's `Cuda`.
#[cfg(feature = "fusion")]
pub type FusedCudaSourceBackend = burn_fusion::Fusion<CudaSourceBackend>;
