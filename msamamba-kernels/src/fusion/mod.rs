//! The fused operations as custom operations of burn-fusion, so that burn's default `Wgpu` and
//! `Cuda` backends (fusion on) run the cube kernels: the fuser flushes the element-wise work queued
//! before the operation, then the inner backend runs its kernel on the resolved buffers.

mod causal_conv;
mod residual_norm;
mod row_attention;
mod scan;

use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};
use burn_fusion::{Fusion, FusionBackend};

use crate::RecomputedLinearBackend;

/// burn's linear, queued like any other matmul (only autodiff treats it differently).
impl<B: FusionBackend> RecomputedLinearBackend for Fusion<B> {}

fn tensor<B: Backend, const D: usize>(primitive: B::FloatTensorPrimitive) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

fn primitive<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> B::FloatTensorPrimitive {
    tensor.into_primitive().tensor()
}
