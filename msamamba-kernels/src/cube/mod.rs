//! The selective scan as CubeCL kernels, for burn's cube backends (CUDA and WGPU).
//!
//! `forward.rs` and `backward.rs` hold the `#[cube]` kernels, `combine.rs` the kernel that chains
//! segments of L scanned in parallel, `launch.rs` the glue (and the choice to split L). The kernels
//! compute in f32 with plain arithmetic, `exp`/`log1p`, shared memory and cube barriers: nothing
//! newer than sm_60 (Pascal) on CUDA. Other float types fall back to the tensor-op reference.

mod backward;
mod combine;
mod forward;
mod launch;

use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

pub use launch::{KernelConfig, backward, forward, supported};

use crate::{ScanGrads, SelectiveScanBackend, SelectiveScanInput, reference};

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> SelectiveScanBackend
    for CubeBackend<R, F, I, BT>
{
    fn selective_scan(input: SelectiveScanInput<Self>) -> burn::tensor::Tensor<Self, 3> {
        let config = KernelConfig::default();
        if supported(&input, &config) {
            forward(input, &config)
        } else {
            reference::forward(input)
        }
    }

    fn selective_scan_backward(input: SelectiveScanInput<Self>, dy: burn::tensor::Tensor<Self, 3>) -> ScanGrads<Self> {
        let config = KernelConfig::default();
        if supported(&input, &config) {
            backward(input, dy, &config)
        } else {
            reference::backward(input, dy)
        }
    }
}
