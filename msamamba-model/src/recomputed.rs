//! The model's projections: the wide, cheap ones recomputed in the backward instead of kept (under
//! burn's balanced checkpointing; their kept outputs were most of a block's activation memory),
//! the others kept. Both sum their gradients on the backend's kernels. See
//! [`msamamba_kernels::recomputed_linear`].

use std::ops::Range;

use burn::nn::Linear;
use burn::prelude::*;
use msamamba_kernels::RecomputedLinearBackend;
use msamamba_kernels::recomputed_linear::{linear, recomputed_linear};

/// `linear.forward(x)`, its output recomputed in the backward; weights cast to x's type.
///
/// # Shapes
/// x: [..., d_input] -> [..., d_output]
pub fn recomputed<B: RecomputedLinearBackend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let (weight, bias) = weights_like(linear, &x);
    recomputed_linear(x, weight, bias)
}

/// `linear.forward(x)`, its output kept for the backward; weights cast to x's type.
///
/// # Shapes
/// x: [..., d_input] -> [..., d_output]
pub fn kept<B: RecomputedLinearBackend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let (weight, bias) = weights_like(linear, &x);
    self::linear(x, weight, bias)
}

/// The linear's weight and bias in `x`'s type (the parameters stay f32; see [`crate::precision`]).
fn weights_like<B: Backend, const D: usize>(
    linear: &Linear<B>,
    x: &Tensor<B, D>,
) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
    let dtype = x.dtype();
    (
        linear.weight.val().cast(dtype),
        linear.bias.as_ref().map(|b| b.val().cast(dtype)),
    )
}

/// Output features `columns` of `linear.forward(x)`, as a product of their own, its output kept
/// for the backward; weights cast to x's type.
///
/// # Shapes
/// x: [..., d_input] -> [..., columns.len()]
pub fn kept_columns<B: RecomputedLinearBackend, const D: usize>(
    linear: &Linear<B>,
    x: Tensor<B, D>,
    columns: Range<usize>,
) -> Tensor<B, D> {
    let (start, len) = (columns.start, columns.len());
    let (weight, bias) = weights_like(linear, &x);
    self::linear(x, weight.narrow(1, start, len), bias.map(|b| b.narrow(0, start, len)))
}
