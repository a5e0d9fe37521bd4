use burn::backend::ndarray::{
    FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
};

use crate::SelectiveScanBackend;

/// The CPU backend runs the tensor-op reference.
impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> SelectiveScanBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
}
