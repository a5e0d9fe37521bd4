//! The fused operations as single nodes of burn's autodiff graph: each backward calls the inner
//! backend's backward, so a kernel backend trains through its own backward kernel.

mod causal_conv;
mod recomputed_linear;
mod residual_norm;
mod row_attention;
mod scan;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend, ops::FloatTensor};

use crate::AdamWBackend;

/// The optimizer steps the inner backend's parameters; through autodiff the step is the
/// reference, untracked like any optimizer arithmetic.
impl<B: Backend, C: CheckpointStrategy> AdamWBackend for Autodiff<B, C> {}

fn inner<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}
