//! Multi-head attention across the rows of an MSA at each position, the core of MSAMamba's row
//! attention (the projections stay in the model).
//!
//! [`row_attention`] is the entry point. Backends implement [`RowAttentionBackend`]; its default
//! methods are the tensor-op reference below, so every burn backend runs it, and
//! [`Autodiff`](burn::backend::Autodiff) records it as one graph node whose backward is the inner
//! backend's. Inputs and output keep the model's [B, M, L, ·] layout, so no transpose is needed
//! around the call: the heads are the D axis cut into `n_heads` slices.
//!
//! Queries, keys and values come side by side in one tensor, as one projection makes them: one
//! [tokens, D] x [D, 3D] product instead of three of [D, D] (and, in the backward, one product for
//! the input's gradient instead of three and two sums of them): fewer, larger products keep the
//! tensor cores busier and read the input once.
//!
//! The forward also returns what the backward would otherwise derive again from q, k and v: each
//! query's softmax statistics (its largest score and the inverse of its sum), and the output,
//! whose product with dout is each query's sum_j p_ij dp_ij. The autodiff node keeps both (the
//! output is kept anyway, as the output projection's input), which spares the kernel's backward a
//! pass over the keys.

use burn::tensor::{Bool, Tensor, activation, backend::Backend};

/// Score of a masked key, as burn's `MultiHeadAttention` fills it (its `min_float`): with every
/// key masked the weights are uniform rather than NaN.
pub const MASKED_SCORE: f32 = -1.0e4;

/// Inputs of the row attention.
///
/// # Shapes
/// b batch, m rows, l positions, d width (`n_heads` heads of d / n_heads channels).
#[derive(Debug, Clone)]
pub struct RowAttentionInput<B: Backend> {
    /// Queries, keys and values side by side: [b, m, l, 3d] (channels 0..d the queries, d..2d
    /// the keys, 2d..3d the values).
    pub qkv: Tensor<B, 4>,
    /// 1 where a row may be attended to, 0 where it is masked as a key: [b, m].
    pub key_keep: Tensor<B, 2>,
    /// Attention heads; divides d.
    pub n_heads: usize,
}

/// The row attention's output and what its backward reuses.
///
/// # Shapes
/// b batch, m rows, l positions, `n_heads` heads.
#[derive(Debug, Clone)]
pub struct RowAttentionOutput<B: Backend> {
    /// Context vectors: [b, m, l, d].
    pub out: Tensor<B, 4>,
    /// Per query: its largest score (plane 0) and 1 / the sum of exp(score - largest) over the
    /// keys (plane 1): [2, b, l, n_heads, m]. Kept apart rather than as one log-sum-exp: with
    /// every key masked the scores are all -1e4, where a float's spacing (~1e-3) would blur
    /// exp(score - lse).
    pub stats: Tensor<B, 5>,
}

impl<B: Backend> RowAttentionInput<B> {
    /// [b, m, l, d] of the attention (d a third of qkv's width), after checking the mask and the
    /// head count against it.
    ///
    /// # Panics
    /// When they disagree: a programming error inside the model, never user data.
    pub fn dims(&self) -> [usize; 4] {
        let [batch, rows, len, packed] = self.qkv.dims();
        assert!(
            packed.is_multiple_of(3),
            "row_attention: qkv's width {packed} is not three widths"
        );
        let width = packed / 3;
        assert_eq!(self.key_keep.dims(), [batch, rows], "row_attention: key_keep is [b, m]");
        assert!(
            self.n_heads > 0 && width.is_multiple_of(self.n_heads),
            "row_attention: {} heads do not divide width {width}",
            self.n_heads
        );
        [batch, rows, len, width]
    }

    /// Queries, keys and values: each [b, m, l, d].
    pub fn split(&self) -> [Tensor<B, 4>; 3] {
        let [_, _, _, width] = self.dims();
        [0, 1, 2].map(|i| self.qkv.clone().narrow(3, i * width, width))
    }

    /// qkv in the key mask's type: the reference computes in f32 when qkv is f16 or bf16.
    fn widened(self) -> Self {
        RowAttentionInput {
            qkv: self.qkv.cast(self.key_keep.dtype()),
            ..self
        }
    }
}

/// A backend that can run the row attention.
///
/// The defaults are the tensor-op reference: correct on every backend, and the oracle the kernels
/// are tested against. Kernel backends override both methods; autodiff calls
/// `row_attention_backward` of the inner backend, so the two must agree.
pub trait RowAttentionBackend: Backend {
    /// Context vectors and softmax statistics.
    fn row_attention(input: RowAttentionInput<Self>) -> RowAttentionOutput<Self> {
        reference_forward(input)
    }

    /// The gradient of `sum(out * dout)` for qkv ([b, m, l, 3d]), given what the forward returned
    /// for the same input; `dout`: [b, m, l, d]. The reference derives everything again from the
    /// input.
    fn row_attention_backward(
        input: RowAttentionInput<Self>,
        _saved: RowAttentionOutput<Self>,
        dout: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        reference_backward(input, dout)
    }
}

/// Runs the row attention on backend `B`: for every batch item, position and head, scores
/// s_ij = q_i . k_j / sqrt(d / n_heads) over the rows, [`MASKED_SCORE`] where row j is masked,
/// softmax over j, out_i = sum_j p_ij v_j.
///
/// # Shapes
/// qkv: [b, m, l, 3d]; key_keep: [b, m] -> [b, m, l, d]
pub fn row_attention<B: RowAttentionBackend>(input: RowAttentionInput<B>) -> Tensor<B, 4> {
    input.dims();
    B::row_attention(input).out
}

/// The 1 / sqrt(head width) that scales the scores.
pub fn score_scale(width: usize, n_heads: usize) -> f64 {
    1.0 / ((width / n_heads) as f64).sqrt()
}

/// [b, m, l, d] -> [b, l, heads, m, d / heads]: one attention problem per (b, l, head).
fn heads<B: Backend>(t: Tensor<B, 4>, n_heads: usize) -> Tensor<B, 5> {
    let [batch, rows, len, width] = t.dims();
    t.reshape([batch, rows, len, n_heads, width / n_heads])
        .permute([0, 2, 3, 1, 4])
}

/// The inverse of [`heads`].
fn unheads<B: Backend>(t: Tensor<B, 5>) -> Tensor<B, 4> {
    let [batch, len, n_heads, rows, head] = t.dims();
    t.permute([0, 3, 1, 2, 4]).reshape([batch, rows, len, n_heads * head])
}

/// Masked keys, broadcastable over scores [b, l, heads, m, m]: [b, 1, 1, 1, m].
fn masked_keys<B: Backend>(key_keep: Tensor<B, 2>) -> Tensor<B, 5, Bool> {
    let [batch, rows] = key_keep.dims();
    key_keep.lower_elem(0.5).reshape([batch, 1, 1, 1, rows])
}

/// The scores [b, l, heads, m, m], [`MASKED_SCORE`] at masked keys, and the masked keys.
fn scores<B: Backend>(input: &RowAttentionInput<B>) -> (Tensor<B, 5>, Tensor<B, 5, Bool>) {
    let [_, _, _, width] = input.dims();
    let [q, k, _] = input.split().map(|t| heads(t, input.n_heads));
    let scores = q
        .matmul(k.swap_dims(3, 4))
        .mul_scalar(score_scale(width, input.n_heads));
    let masked = masked_keys(input.key_keep.clone()).expand(scores.shape());
    (scores.mask_fill(masked.clone(), MASKED_SCORE), masked)
}

/// The attention weights p [b, l, heads, m, m] and the masked keys.
fn weights<B: Backend>(input: &RowAttentionInput<B>) -> (Tensor<B, 5>, Tensor<B, 5, Bool>) {
    let (scores, masked) = scores(input);
    (activation::softmax(scores, 4), masked)
}

/// The row attention in tensor ops (batched matmuls over one problem per (b, l, head)), with the
/// softmax statistics of [`RowAttentionOutput`].
pub fn reference_forward<B: Backend>(input: RowAttentionInput<B>) -> RowAttentionOutput<B> {
    let dtype = input.qkv.dtype();
    let input = input.widened();
    let (scores, _) = scores(&input);
    let [batch, len, n_heads, rows, _] = scores.dims();
    let top = scores.clone().max_dim(4);
    let exp = (scores - top.clone()).exp();
    let inverse_sum = exp.clone().sum_dim(4).recip();
    let [_, _, v] = input.split();
    let out = unheads((exp * inverse_sum.clone()).matmul(heads(v, input.n_heads)));
    let plane = |t: Tensor<B, 5>| t.reshape([1, batch, len, n_heads, rows]);
    RowAttentionOutput {
        out: out.cast(dtype),
        stats: Tensor::cat(vec![plane(top), plane(inverse_sum)], 0),
    }
}

/// Its backward, written out: with dp = dout v^T and ds = p (dp - rowsum(p dp)), zero where the
/// key was masked (the fill cuts the score from q and k): dq = ds k, dk = ds^T q (both scaled),
/// dv = p^T dout; returned side by side as qkv's gradient, in qkv's type.
pub fn reference_backward<B: Backend>(input: RowAttentionInput<B>, dout: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, _, width] = input.dims();
    let dtype = input.qkv.dtype();
    let input = input.widened();
    let dout = dout.cast(input.key_keep.dtype());
    let n_heads = input.n_heads;
    let scale = score_scale(width, n_heads);
    let (p, masked) = weights(&input);
    let [q, k, v] = input.split().map(|t| heads(t, n_heads));
    let dout = heads(dout, n_heads);
    let dp = dout.clone().matmul(v.swap_dims(3, 4));
    let centre = (dp.clone() * p.clone()).sum_dim(4);
    let ds = (p.clone() * (dp - centre)).mask_fill(masked, 0.0).mul_scalar(scale);
    let grads = vec![
        ds.clone().matmul(k),
        ds.swap_dims(3, 4).matmul(q),
        p.swap_dims(3, 4).matmul(dout),
    ];
    Tensor::cat(grads.into_iter().map(unheads).collect(), 3).cast(dtype)
}
