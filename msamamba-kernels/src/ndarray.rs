use burn::backend::ndarray::{
    FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
};
use burn::tensor::Tensor;

use crate::{
    AdamWBackend, CausalConvBackend, RecomputedLinearBackend, ResidualNormBackend, RowAttentionBackend,
    ScanCheckpoints, ScanGrads, SelectiveScanBackend, SelectiveScanInput, cpu,
};

/// The CPU backend runs the scan as plain loops (see [`cpu`]).
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> SelectiveScanBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
    fn selective_scan(input: SelectiveScanInput<Self>) -> Tensor<Self, 3> {
        cpu::forward(input)
    }

    fn selective_scan_backward(
        input: SelectiveScanInput<Self>,
        _checkpoints: Option<ScanCheckpoints<Self>>,
        dy: Tensor<Self, 3>,
    ) -> ScanGrads<Self> {
        cpu::backward(input, dy)
    }
}

/// The CPU backend runs the row attention as the tensor-op reference (batched matmuls).
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> RowAttentionBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
}

/// The CPU backend runs the residual RMSNorm as the tensor-op reference.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> ResidualNormBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
}

/// The CPU backend runs the causal convolution as the tensor-op reference.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> CausalConvBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
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
