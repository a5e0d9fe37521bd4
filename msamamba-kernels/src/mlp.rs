//! The position-wise MLP of every block, D -> 4D -> D with SiLU, as one operation that keeps only
//! its input for the backward.
//!
//! As tensor ops under autodiff the graph keeps the hidden layer and its SiLU, two [.., 4D]
//! tensors per block: eight times the block's [.., D] input, whatever the checkpointing. Here the
//! backward recomputes them from the input with one more matmul (mamba_ssm's fused MLP trades the
//! same way), so training without checkpointing, the fastest, fits in less memory.
//!
//! [`mlp`] is the entry point. Backends implement [`MlpBackend`]; its default methods are the
//! tensor-op reference below (burn's matmuls: no kernel of our own would beat them).

use burn::tensor::module::linear;
use burn::tensor::{Tensor, backend::Backend};

use crate::causal_conv::sigmoid;

/// Inputs of the MLP.
///
/// # Shapes
/// r rows (the weight gradients are batched over them), l positions, d width, h hidden width.
#[derive(Debug, Clone)]
pub struct MlpInput<B: Backend> {
    /// [r, l, d]
    pub x: Tensor<B, 3>,
    /// [d, h]
    pub up_weight: Tensor<B, 2>,
    /// [h]
    pub up_bias: Tensor<B, 1>,
    /// [h, d]
    pub down_weight: Tensor<B, 2>,
    /// [d]
    pub down_bias: Tensor<B, 1>,
}

/// Gradients of the MLP, one per input.
#[derive(Debug, Clone)]
pub struct MlpGrads<B: Backend> {
    /// [r, l, d]
    pub x: Tensor<B, 3>,
    /// [d, h]
    pub up_weight: Tensor<B, 2>,
    /// [h]
    pub up_bias: Tensor<B, 1>,
    /// [h, d]
    pub down_weight: Tensor<B, 2>,
    /// [d]
    pub down_bias: Tensor<B, 1>,
}

impl<B: Backend> MlpInput<B> {
    /// [r, l, d, h], after checking the weights against x.
    ///
    /// # Panics
    /// When they disagree: a programming error inside the model, never user data.
    pub fn dims(&self) -> [usize; 4] {
        let [rows, len, width] = self.x.dims();
        let [up_in, hidden] = self.up_weight.dims();
        assert_eq!(up_in, width, "mlp: the up projection is [d, h]");
        assert_eq!(self.up_bias.dims(), [hidden], "mlp: the up bias is [h]");
        assert_eq!(
            self.down_weight.dims(),
            [hidden, width],
            "mlp: the down projection is [h, d]"
        );
        assert_eq!(self.down_bias.dims(), [width], "mlp: the down bias is [d]");
        [rows, len, width, hidden]
    }
}

/// A backend that can run the MLP. Autodiff calls `mlp_backward` of the inner backend.
pub trait MlpBackend: Backend {
    /// down(silu(up(x))): [r, l, d].
    fn mlp(input: MlpInput<Self>) -> Tensor<Self, 3> {
        reference_forward(input)
    }

    /// Gradients of `sum(y * dy)`; `dy`: [r, l, d].
    fn mlp_backward(input: MlpInput<Self>, dy: Tensor<Self, 3>) -> MlpGrads<Self> {
        reference_backward(input, dy)
    }
}

/// Runs the MLP on backend `B`.
///
/// # Shapes
/// x: [r, l, d]; up: [d, h], [h]; down: [h, d], [d] -> [r, l, d]
pub fn mlp<B: MlpBackend>(input: MlpInput<B>) -> Tensor<B, 3> {
    input.dims();
    B::mlp(input)
}

/// The hidden layer before its activation: [r, l, h].
fn hidden<B: Backend>(input: &MlpInput<B>) -> Tensor<B, 3> {
    linear(input.x.clone(), input.up_weight.clone(), Some(input.up_bias.clone()))
}

/// The MLP in tensor ops.
pub fn reference_forward<B: Backend>(input: MlpInput<B>) -> Tensor<B, 3> {
    let h = hidden(&input);
    let a = h.clone() * sigmoid(h);
    linear(a, input.down_weight, Some(input.down_bias))
}

/// xᵀ · g summed over the rows: a weight's gradient, as batched matmuls over r (one matmul over
/// every row and position would leave the GPU nearly idle: its output is only [k, n]).
fn weight_grad<B: Backend>(x: Tensor<B, 3>, g: Tensor<B, 3>) -> Tensor<B, 2> {
    let k = x.dims()[2];
    let n = g.dims()[2];
    x.swap_dims(1, 2).matmul(g).sum_dim(0).reshape([k, n])
}

/// g summed over rows and positions: a bias's gradient.
fn bias_grad<B: Backend>(g: Tensor<B, 3>) -> Tensor<B, 1> {
    let n = g.dims()[2];
    g.sum_dim(0).sum_dim(1).reshape([n])
}

/// Its backward, written out, the hidden layer recomputed: with h = up(x), s = sigmoid(h),
/// a = h · s: da = dy · downᵀ, dh = da · s · (1 + h · (1 - s)), dx = dh · upᵀ; each weight's
/// gradient is its input's transpose times its output's gradient, each bias's the sum of the
/// latter.
pub fn reference_backward<B: Backend>(input: MlpInput<B>, dy: Tensor<B, 3>) -> MlpGrads<B> {
    input.dims();
    let h = hidden(&input);
    let s = sigmoid(h.clone());
    let a = h.clone() * s.clone();
    let da = dy.clone().matmul(input.down_weight.clone().transpose().unsqueeze());
    let dh = da * s.clone() * (h * (s.neg() + 1.0) + 1.0);
    MlpGrads {
        x: dh.clone().matmul(input.up_weight.clone().transpose().unsqueeze()),
        up_weight: weight_grad(input.x, dh.clone()),
        up_bias: bias_grad(dh),
        down_weight: weight_grad(a, dy.clone()),
        down_bias: bias_grad(dy),
    }
}
