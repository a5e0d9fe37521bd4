//! Linear projections whose gradients' reductions run on the backend's kernels, and whose output
//! autodiff may recompute rather than keep.
//!
//! burn's linear is compute-bound to its checkpointing: its output stays alive until every
//! consumer's backward has run. For the projections whose output is wide and cheap to redo (the
//! step-size projection's rank-8 -> E, the MLP's D -> 4D, the row attention's query, key and
//! value) that is the largest share of a block's activation memory; under balanced checkpointing
//! this projection is memory-bound instead, and the backward recomputes the output from the input
//! (kept anyway) with one more matmul, as mamba_ssm's fused Mamba recomputes its step sizes.
//! Without checkpointing (`NoCheckpointing`) it keeps its output like burn's linear.
//!
//! Both kinds sum their bias gradient over rows, and their weight gradient over the batch of a
//! batched matmul, with [`RecomputedLinearBackend::column_sums`]: burn's linear sums along the
//! leading axes one axis at a time, and those reductions, narrow outputs over long axes, run on
//! one to a few cubes, so each walks its long axis nearly serially.
//!
//! Every product, forward and backward, goes through
//! [`RecomputedLinearBackend::projection_matmul`], the input flattened to [tokens, k] (a copy
//! only where it is not contiguous): the cube backends launch it with a matmul strategy of their
//! own choosing (see `cube/matmul.rs`), which burn's linear does not let them pick.
//!
//! [`recomputed_linear`] and [`linear`] are the entry points. Backends implement
//! [`RecomputedLinearBackend`]; autodiff overrides the projections, the cube backends the sums
//! and the products.

use burn::tensor::backend::{Backend, DTypeUsage};
use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive, ops::FloatTensor};

/// A backend that can run a linear projection whose output may be recomputed in the backward.
pub trait RecomputedLinearBackend: Backend {
    /// `x @ weight (+ bias)`, its output recomputed in the backward; x: [..., k], weight: [k, n],
    /// bias: \[n\] -> [..., n].
    fn recomputed_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        project::<Self>(x, weight, bias)
    }

    /// `x @ weight (+ bias)`, its output kept for the backward; shapes as
    /// [`Self::recomputed_linear`].
    fn kept_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        project::<Self>(x, weight, bias)
    }

    /// `lhs @ rhs`, batched over the leading axes, which both share (or neither has): the
    /// products of the projections and of their gradients. lhs: [..., m, k], rhs: [..., k, n]
    /// -> [..., m, n].
    fn projection_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(lhs, rhs)
    }

    /// The sums of t's rows; t: [rows, cols] -> \[cols\].
    fn column_sums(t: FloatTensor<Self>) -> FloatTensor<Self> {
        summed_rows::<Self>(t)
    }

    /// Whether [`Self::projection_matmul`] multiplies `dtype` operands on `device`'s tensor cores:
    /// what makes computing in that type pay.
    fn matmul_accelerates(dtype: DType, device: &Self::Device) -> bool {
        Self::dtype_usage(device, dtype).contains(DTypeUsage::Accelerated)
    }
}

/// The sums of t's rows by the backend's own reduction; t: [rows, cols] -> \[cols\].
pub fn summed_rows<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let cols = t.shape()[1];
    B::float_reshape(B::float_sum_dim(t, 0), Shape::new([cols]))
}

/// t [..., c] as [rows, c], and its leading dims.
fn flat<B: Backend>(t: FloatTensor<B>) -> (FloatTensor<B>, Vec<usize>) {
    let shape = t.shape();
    let c = shape[shape.num_dims() - 1];
    let lead = shape.as_slice()[..shape.num_dims() - 1].to_vec();
    (
        B::float_reshape(t, Shape::new([shape.num_elements() / c.max(1), c])),
        lead,
    )
}

/// t [rows, c] back to [lead..., c].
fn unflat<B: Backend>(t: FloatTensor<B>, mut lead: Vec<usize>) -> FloatTensor<B> {
    lead.push(t.shape()[1]);
    B::float_reshape(t, Shape::from(lead))
}

/// `x @ weight (+ bias)` as one product of the flat input with the weight. The bias is added in
/// x's own shape, so that burn-fusion can fuse the add with the element-wise operations that
/// follow (the MLP's SiLU); added to the flat product, it would be a kernel of its own, one more
/// pass over the output.
///
/// # Shapes
/// x: [..., k]; weight: [k, n]; bias: \[n\] -> [..., n]
pub fn project<B: RecomputedLinearBackend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    let (x, lead) = flat::<B>(x);
    let out = unflat::<B>(B::projection_matmul(x, weight), lead);
    match bias {
        Some(bias) => {
            let mut shape = vec![1; out.shape().num_dims()];
            *shape.last_mut().expect("the output has a last axis") = bias.shape()[0];
            B::float_add(out, B::float_reshape(bias, Shape::from(shape)))
        }
        None => out,
    }
}

/// The input's gradient `grad @ weightᵀ`, as one product of the flat gradient.
///
/// # Shapes
/// weight: [k, n]; grad: [..., n] -> [..., k]
pub fn input_gradient<B: RecomputedLinearBackend>(weight: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let (grad, lead) = flat::<B>(grad);
    unflat::<B>(B::projection_matmul(grad, B::float_swap_dims(weight, 0, 1)), lead)
}

/// `x @ weight + bias` with its output recomputed in the backward (see the module doc).
///
/// # Shapes
/// x: [..., k]; weight: [k, n]; bias: \[n\] -> [..., n]
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

/// `x @ weight + bias`, its output kept like burn's linear's, the gradients' reductions on the
/// kernels (see the module doc).
///
/// # Shapes
/// x: [..., k]; weight: [k, n]; bias: \[n\] -> [..., n]
pub fn linear<B: RecomputedLinearBackend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::kept_linear(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
    )))
}

/// The weight's gradient `xᵀ @ grad` summed over x's leading axes: one matmul per leading index,
/// as burn's linear, then one [`RecomputedLinearBackend::column_sums`]. (One product over all
/// tokens instead would leave a long k-loop on a handful of cubes: 128 x 512 outputs.)
///
/// # Shapes
/// x: [..., l, k]; grad: [..., l, n] -> [k, n]
pub fn weight_gradient<B: RecomputedLinearBackend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let shape = x.shape();
    let rank = shape.num_dims();
    if rank <= 2 {
        return B::projection_matmul(B::float_swap_dims(x, 0, 1), grad);
    }
    let (len, k, n) = (shape[rank - 2], shape[rank - 1], grad.shape()[rank - 1]);
    let batch = shape.num_elements() / (len * k);
    let x = B::float_swap_dims(B::float_reshape(x, Shape::new([batch, len, k])), 1, 2);
    let per_batch = B::projection_matmul(x, B::float_reshape(grad, Shape::new([batch, len, n])));
    B::float_reshape(
        B::column_sums(B::float_reshape(per_batch, Shape::new([batch, k * n]))),
        Shape::new([k, n]),
    )
}

/// The bias's gradient: `grad` summed over every axis but its last.
///
/// # Shapes
/// grad: [..., n] -> \[n\]
pub fn bias_gradient<B: RecomputedLinearBackend>(grad: FloatTensor<B>) -> FloatTensor<B> {
    let shape = grad.shape();
    let n = shape[shape.num_dims() - 1];
    B::column_sums(B::float_reshape(grad, [shape.num_elements() / n, n].into()))
}
