//! Projections whose output the backward recomputes instead of keeping (under burn's balanced
//! checkpointing): the wide, cheap ones, whose kept outputs were most of a block's activation
//! memory. See [`msamamba_kernels::recomputed_linear`].

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use msamamba_kernels::RecomputedLinearBackend;
use msamamba_kernels::recomputed_linear::recomputed_linear;

/// `linear.forward(x)`, its output recomputed in the backward.
///
/// # Shapes
/// x: [..., d_input] -> [..., d_output]
pub fn recomputed<B: RecomputedLinearBackend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    recomputed_linear(x, linear.weight.val(), linear.bias.as_ref().map(Param::val))
}
