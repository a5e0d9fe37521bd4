//! The causal depthwise convolution in front of each selective scan, with its SiLU (mamba_ssm's
//! `causal_conv1d_fn` with `activation="silu"`), as one operation over channels-last [R, L, E]
//! activations: y[l, e] = act(bias\[e\] + sum_k weight[e, k] · x[l - (K - 1) + k, e]), zeros before
//! the first position.
//!
//! In tensor ops that is K shifted multiply-adds and the activation, and its backward K more plus
//! K + 1 reductions over every row and position for the weight and bias gradients; the kernels
//! read x once (and dy once backward) and sum the weight gradients per cube.
//!
//! [`causal_conv1d`] is the entry point. Backends implement [`CausalConvBackend`]; its default
//! methods are the tensor-op reference below, the oracle of the kernels.

use burn::tensor::{Tensor, backend::Backend};

/// Inputs of the causal convolution.
///
/// # Shapes
/// r rows, l positions, e channels, k taps.
#[derive(Debug, Clone)]
pub struct CausalConvInput<B: Backend> {
    /// The sequences, channels last: [r, l, e] (any strides).
    pub x: Tensor<B, 3>,
    /// One filter per channel, tap k - 1 on the current position: [e, k].
    pub weight: Tensor<B, 2>,
    /// \[e\]
    pub bias: Tensor<B, 1>,
    /// Apply SiLU to the convolution's output.
    pub silu: bool,
}

/// Gradients of the causal convolution.
#[derive(Debug, Clone)]
pub struct CausalConvGrads<B: Backend> {
    /// [r, l, e]
    pub x: Tensor<B, 3>,
    /// [e, k]
    pub weight: Tensor<B, 2>,
    /// \[e\]
    pub bias: Tensor<B, 1>,
}

impl<B: Backend> CausalConvInput<B> {
    /// [r, l, e, k], after checking the weight and bias against x.
    ///
    /// # Panics
    /// When they disagree: a programming error inside the model, never user data.
    pub fn dims(&self) -> [usize; 4] {
        let [rows, len, channels] = self.x.dims();
        let [weight_channels, taps] = self.weight.dims();
        assert_eq!(weight_channels, channels, "causal_conv1d: weight is [e, k]");
        assert!(taps > 0, "causal_conv1d: at least one tap");
        assert_eq!(self.bias.dims(), [channels], "causal_conv1d: bias is [e]");
        [rows, len, channels, taps]
    }

    /// x in the filters' type: the reference computes in the parameters' type (f32 under mixed
    /// precision, where x is f16 or bf16).
    fn widened(self) -> Self {
        CausalConvInput {
            x: self.x.cast(self.weight.dtype()),
            ..self
        }
    }
}

/// A backend that can run the causal convolution.
///
/// The defaults are the tensor-op reference; kernel backends override both methods, and autodiff
/// calls `causal_conv_backward` of the inner backend, so the two must agree.
pub trait CausalConvBackend: Backend {
    /// The convolved (and activated) sequences: [r, l, e].
    fn causal_conv(input: CausalConvInput<Self>) -> Tensor<Self, 3> {
        reference_forward(input)
    }

    /// Gradients of `sum(y * dy)`; `dy`: [r, l, e].
    fn causal_conv_backward(input: CausalConvInput<Self>, dy: Tensor<Self, 3>) -> CausalConvGrads<Self> {
        reference_backward(input, dy)
    }
}

/// Runs the causal depthwise convolution (and SiLU when asked) on backend `B`.
///
/// # Shapes
/// x: [r, l, e]; weight: [e, k]; bias: \[e\] -> [r, l, e]
pub fn causal_conv1d<B: CausalConvBackend>(input: CausalConvInput<B>) -> Tensor<B, 3> {
    input.dims();
    B::causal_conv(input)
}

/// `t` [r, l, e] with `before` zero positions in front and `after` behind.
fn pad<B: Backend>(t: Tensor<B, 3>, before: usize, after: usize) -> Tensor<B, 3> {
    let [rows, _, channels] = t.dims();
    let device = t.device();
    let zeros = |positions| Tensor::zeros([rows, positions, channels], &device);
    // No empty pieces: burn's fusion mishandles a cat with a zero-length part.
    let parts = [
        (before > 0).then(|| zeros(before)),
        Some(t),
        (after > 0).then(|| zeros(after)),
    ];
    Tensor::cat(parts.into_iter().flatten().collect(), 1)
}

/// Tap `k` of the weight, broadcastable over [r, l, e].
fn tap<B: Backend>(weight: &Tensor<B, 2>, k: usize) -> Tensor<B, 3> {
    // Not a reshape of the column: burn's cube backends reshaped such a strided [e, 1] view as
    // if it were contiguous once its offset was aligned (wrong taps past the fourth).
    weight.clone().narrow(1, k, 1).swap_dims(0, 1).unsqueeze_dim(0)
}

/// The convolution before the activation, as K shifted multiply-adds.
fn convolve<B: Backend>(input: &CausalConvInput<B>) -> Tensor<B, 3> {
    let [_, len, channels, taps] = input.dims();
    let padded = pad(input.x.clone(), taps - 1, 0);
    (0..taps).fold(input.bias.clone().reshape([1, 1, channels]), |y, k| {
        y + padded.clone().narrow(1, k, len) * tap(&input.weight, k)
    })
}

/// The logistic sigmoid in the element type (burn's activation computes it in f32, which would
/// blur a float64 oracle).
fn sigmoid<B: Backend>(t: Tensor<B, 3>) -> Tensor<B, 3> {
    (t.neg().exp() + 1.0).recip()
}

/// The causal convolution in tensor ops, in the filters' type; the output in x's.
pub fn reference_forward<B: Backend>(input: CausalConvInput<B>) -> Tensor<B, 3> {
    let dtype = input.x.dtype();
    let input = input.widened();
    let y = convolve(&input);
    let y = if input.silu { y.clone() * sigmoid(y) } else { y };
    y.cast(dtype)
}

/// Its backward, each gradient in its input's type, written out: with g = dy · silu'(pre) (or dy), dx\[l\] = sum_k weight\[k\] ·
/// g[l + K - 1 - k], dweight\[k\] = sum over rows and positions of g\[l\] · x[l - (K - 1) + k],
/// dbias = sum of g.
pub fn reference_backward<B: Backend>(input: CausalConvInput<B>, dy: Tensor<B, 3>) -> CausalConvGrads<B> {
    let [_, len, channels, taps] = input.dims();
    let dtype = input.x.dtype();
    let input = input.widened();
    let dy = dy.cast(input.weight.dtype());
    let g = if input.silu {
        let pre = convolve(&input);
        let s = sigmoid(pre.clone());
        dy * s.clone() * (pre * (s.neg() + 1.0) + 1.0)
    } else {
        dy
    };
    let g_ahead = pad(g.clone(), 0, taps - 1);
    let x_behind = pad(input.x.clone(), taps - 1, 0);
    let sum_over_positions = |t: Tensor<B, 3>| t.sum_dim(0).sum_dim(1).reshape([channels, 1]);
    let x = (0..taps)
        .map(|k| g_ahead.clone().narrow(1, taps - 1 - k, len) * tap(&input.weight, k))
        .reduce(|a, b| a + b)
        .expect("at least one tap");
    let weight = Tensor::cat(
        (0..taps)
            .map(|k| sum_over_positions(g.clone() * x_behind.clone().narrow(1, k, len)))
            .collect(),
        1,
    );
    CausalConvGrads {
        x: x.cast(dtype),
        weight,
        bias: sum_over_positions(g).reshape([channels]),
    }
}
