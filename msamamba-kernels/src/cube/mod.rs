//! The fused operations as CubeCL kernels, for burn's cube backends (CUDA and WGPU).
//!
//! The selective scan: `forward.rs` and `backward.rs` hold the `#[cube]` kernels (`forward_lanes.rs`
//! and `backward_lanes.rs` those with L across a plane's lanes, where they fill the GPU), `combine.rs` the
//! kernel that chains segments of L scanned in parallel, `launch.rs` the glue (and the choice to
//! split L). The row attention, the residual RMSNorm and the causal convolution:
//! `row_attention.rs`, `residual_norm.rs` and `causal_conv.rs`, kernels and glue each. The kernels compute in f32
//! with plain arithmetic, `exp`/`log1p`/`ln`, shared memory and cube barriers: nothing newer than
//! sm_60 (Pascal) on CUDA. The scan's take f32, f16 or bf16 activations with f32 parameters
//! (`precision.rs`); other float types, and sizes the kernels do not cover, fall back to the
//! tensor-op references.

pub mod adamw;
mod backward;
mod backward_lanes;
pub mod causal_conv;
pub mod column_sums;
mod combine;
mod forward;
mod forward_lanes;
mod launch;
pub mod matmul;
mod precision;
pub mod residual_norm;
pub mod row_attention;

use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn::tensor::{DType, TensorPrimitive};
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

pub use launch::{KernelConfig, LaneBackward, ScanPlan, backward, forward, forward_saving, plan, supported};

use crate::adamw::{AdamWBackend, AdamWStep, AdamWTensors};
use crate::row_attention::{RowAttentionInput, RowAttentionOutput, reference_backward, reference_forward};
use crate::{
    CausalConvBackend, CausalConvGrads, CausalConvInput, RecomputedLinearBackend, ResidualNormBackend,
    ResidualNormGrads, ResidualNormInput, RowAttentionBackend, ScanCheckpoints, ScanGrads, ScanOutput,
    SelectiveScanBackend, SelectiveScanInput, causal_conv as conv, reference, residual_norm as norm,
};

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

    fn selective_scan_saving(input: SelectiveScanInput<Self>) -> ScanOutput<Self> {
        let config = KernelConfig::default();
        if supported(&input, &config) {
            forward_saving(input, &config)
        } else {
            ScanOutput {
                y: reference::forward(input),
                checkpoints: None,
            }
        }
    }

    fn scan_checkpoint_shapes(dims: [usize; 4], dtype: DType, device: &Self::Device) -> Option<[Vec<usize>; 2]> {
        launch::checkpoint_shapes(dims, dtype, &R::client(device), &KernelConfig::default())
    }

    fn selective_scan_backward(
        input: SelectiveScanInput<Self>,
        checkpoints: Option<ScanCheckpoints<Self>>,
        dy: burn::tensor::Tensor<Self, 3>,
    ) -> ScanGrads<Self> {
        let config = KernelConfig::default();
        if supported(&input, &config) {
            backward(input, checkpoints, dy, &config)
        } else {
            reference::backward(input, dy)
        }
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> RowAttentionBackend for CubeBackend<R, F, I, BT> {
    fn row_attention(input: RowAttentionInput<Self>) -> RowAttentionOutput<Self> {
        if row_attention::supported(&input) {
            row_attention::forward(input)
        } else {
            reference_forward(input)
        }
    }

    fn row_attention_backward(
        input: RowAttentionInput<Self>,
        saved: RowAttentionOutput<Self>,
        dout: burn::tensor::Tensor<Self, 4>,
    ) -> burn::tensor::Tensor<Self, 4> {
        if row_attention::supported(&input) {
            row_attention::backward(input, saved, dout)
        } else {
            reference_backward(input, dout)
        }
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> ResidualNormBackend for CubeBackend<R, F, I, BT> {
    fn residual_rms_norm(input: ResidualNormInput<Self>) -> burn::tensor::Tensor<Self, 2> {
        if residual_norm::supported(&input) {
            residual_norm::forward(input)
        } else {
            norm::reference_forward(input)
        }
    }

    fn residual_rms_norm_backward(
        input: ResidualNormInput<Self>,
        dout: burn::tensor::Tensor<Self, 2>,
    ) -> ResidualNormGrads<Self> {
        if residual_norm::supported(&input) {
            residual_norm::backward(input, dout)
        } else {
            norm::reference_backward(input, dout)
        }
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> CausalConvBackend for CubeBackend<R, F, I, BT> {
    fn causal_conv(input: CausalConvInput<Self>) -> burn::tensor::Tensor<Self, 3> {
        if causal_conv::supported(&input) {
            causal_conv::forward(input)
        } else {
            conv::reference_forward(input)
        }
    }

    fn causal_conv_backward(input: CausalConvInput<Self>, dy: burn::tensor::Tensor<Self, 3>) -> CausalConvGrads<Self> {
        if causal_conv::supported(&input) {
            causal_conv::backward(input, dy)
        } else {
            conv::reference_backward(input, dy)
        }
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> AdamWBackend for CubeBackend<R, F, I, BT> {
    fn adamw_step(
        state: AdamWTensors<Self>,
        grad: burn::tensor::Tensor<Self, 1>,
        step: &AdamWStep,
    ) -> AdamWTensors<Self> {
        if adamw::supported(&state) {
            adamw::step(state, grad, step)
        } else {
            crate::adamw::reference(state, grad, step)
        }
    }
}

/// The projections' products with the strategy of `matmul.rs`, the gradients' sums on the kernel.
impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> RecomputedLinearBackend
    for CubeBackend<R, F, I, BT>
{
    fn projection_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        matmul::matmul(&lhs, &rhs).unwrap_or_else(|| <Self as FloatTensorOps<Self>>::float_matmul(lhs, rhs))
    }

    fn matmul_accelerates(dtype: DType, device: &Self::Device) -> bool {
        matmul::accelerates(&R::client(device), dtype)
    }

    fn column_sums(t: FloatTensor<Self>) -> FloatTensor<Self> {
        let t = burn::tensor::Tensor::<Self, 2>::from_primitive(TensorPrimitive::Float(t));
        if column_sums::supported(&t) {
            column_sums::column_sums(t).into_primitive().tensor()
        } else {
            crate::recomputed_linear::summed_rows::<Self>(t.into_primitive().tensor())
        }
    }
}
