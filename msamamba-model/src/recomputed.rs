//! The model's projections: the wide, cheap ones recomputed in the backward instead of kept (under
//! burn's balanced checkpointing; their kept outputs were most of a block's activation memory),
//! the others kept. Both sum their gradients on the backend's kernels. See
//! [`msamamba_kernels::recomputed_linear`].

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use msamamba_kernels::RecomputedLinearBackend;
use msamamba_kernels::recomputed_linear::{linear, recomputed_linear};

/// `linear.forward(x)`, its output recomputed in the backward.
///
/// # Shapes
/// x: [..., d_input] -> [..., d_output]
pub fn recomputed<B: RecomputedLinearBackend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    recomputed_linear(x, linear.weight.val(), linear.bias.as_ref().map(Param::val))
}

/// `linear.forward(x)`, its output kept for the backward.
///
/// # Shapes
/// x: [..., d_input] -> [..., d_output]
pub fn kept<B: RecomputedLinearBackend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    self::linear(x, linear.weight.val(), linear.bias.as_ref().map(Param::val))
}
