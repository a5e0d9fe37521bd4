//! The model's projections: the wide, cheap ones recomputed in the backward instead of kept (under
//! burn's balanced checkpointing; their kept outputs were most of a block's activation memory),
//! the others kept. Both sum their gradients on the backend's kernels. See
//! [`msamamba_kernels::recomputed_linear`].

use std::ops::Range;

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

/// Output features `columns` of `linear.forward(x)`, as a product of their own, its output kept
/// for the backward.
///
/// # Shapes
/// x: [..., d_input] -> [..., columns.len()]
pub fn kept_columns<B: RecomputedLinearBackend, const D: usize>(
    linear: &Linear<B>,
    x: Tensor<B, D>,
    columns: Range<usize>,
) -> Tensor<B, D> {
    let (start, len) = (columns.start, columns.len());
    let weight = linear.weight.val().narrow(1, start, len);
    let bias = linear.bias.as_ref().map(|b| b.val().narrow(0, start, len));
    self::linear(x, weight, bias)
}
