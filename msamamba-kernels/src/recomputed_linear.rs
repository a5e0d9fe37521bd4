//! A linear projection whose output autodiff recomputes rather than keeps.
//!
//! burn's linear is compute-bound to its checkpointing: its output stays alive until every
//! consumer's backward has run. For the projections whose output is wide and cheap to redo (the
//! step-size projection's rank-8 -> E, the MLP's D -> 4D, the row attention's query, key and
//! value) that is the largest share of a block's activation memory; under balanced checkpointing
//! this projection is memory-bound instead, and the backward recomputes the output from the input
//! (kept anyway) with one more matmul, as mamba_ssm's fused Mamba recomputes its step sizes.
//! Without checkpointing (`NoCheckpointing`) it is burn's linear.
//!
//! [`recomputed_linear`] is the entry point. Backends implement [`RecomputedLinearBackend`]; only
//! autodiff overrides its default, burn's linear.

use burn::tensor::{Tensor, TensorPrimitive, backend::Backend, ops::FloatTensor};

/// A backend that can run a linear projection whose output may be recomputed in the backward.
pub trait RecomputedLinearBackend: Backend {
    /// `x @ weight (+ bias)`; x: [..., k], weight: [k, n], bias: [n] -> [..., n].
    fn recomputed_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        Self::linear(x, weight, bias)
    }
}

/// `x @ weight + bias` with its output recomputed in the backward (see the module doc).
///
/// # Shapes
/// x: [..., k]; weight: [k, n]; bias: [n] -> [..., n]
pub fn recomputed_linear<B: RecomputedLinearBackend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    let float = |t: FloatTensor<B>| Tensor::from_primitive(TensorPrimitive::Float(t));
    float(B::recomputed_linear(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
    ))
}
