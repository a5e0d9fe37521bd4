use burn::backend::ndarray::{
    FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
};
use burn::tensor::Tensor;

use crate::causal_conv::CausalConvInput;
use crate::row_attention::{RowAttentionInput, RowAttentionOutput};
use crate::{
    AdamWBackend, CausalConvBackend, RecomputedLinearBackend, ResidualNormBackend, RowAttentionBackend,
    ScanCheckpoints, ScanGrads, SelectiveScanBackend, SelectiveScanInput, cpu,
};

/// The CPU backend runs the scan as plain loops (see [`cpu::scan`]).
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> SelectiveScanBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
    fn selective_scan(input: SelectiveScanInput<Self>) -> Tensor<Self, 3> {
        cpu::scan::forward(input)
    }

    fn selective_scan_backward(
        input: SelectiveScanInput<Self>,
        _checkpoints: Option<ScanCheckpoints<Self>>,
        dy: Tensor<Self, 3>,
    ) -> ScanGrads<Self> {
        cpu::scan::backward(input, dy)
    }
}

/// The CPU backend runs the row attention's forward as plain loops (see [`cpu::row_attention`]),
/// its backward as the tensor-op reference.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> RowAttentionBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
    fn row_attention(input: RowAttentionInput<Self>) -> RowAttentionOutput<Self> {
        cpu::row_attention::forward(input)
    }
}

/// The CPU backend runs the residual RMSNorm as the tensor-op reference.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> ResidualNormBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
}

/// The CPU backend runs the causal convolution's forward as plain loops (see
/// [`cpu::causal_conv`]), its backward as the tensor-op reference.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> CausalConvBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
    fn causal_conv(input: CausalConvInput<Self>) -> Tensor<Self, 3> {
        cpu::causal_conv::forward(input)
    }
}

/// The CPU backend recomputes with burn's linear.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> RecomputedLinearBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
}

/// The CPU backend steps AdamW with the tensor-op reference.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> AdamWBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
}
