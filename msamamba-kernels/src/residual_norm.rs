//! The residual add and RMSNorm that close every sub-layer of an MSAMamba block (post-norm), as
//! one operation: out = s / sqrt(mean(s²) + eps) · gamma with s = x + r, over the last axis.
//!
//! As tensor ops (an add, then burn's `RmsNorm`) that is six passes over the [B, M, L, D]
//! activations forward, more backward, and autodiff keeps their intermediates; fused, the forward
//! reads x and r and writes the output, the backward reads them with the output's gradient and
//! writes one gradient (x's and r's are the same), and the graph keeps only x and r.
//!
//! [`residual_rms_norm`] is the entry point. Backends implement [`ResidualNormBackend`]; its
//! default methods are the tensor-op reference below, the oracle of the kernels.

use burn::tensor::{Tensor, backend::Backend};

/// Inputs of the residual RMSNorm.
///
/// # Shapes
/// rows (every position of every row of the batch), width d.
#[derive(Debug, Clone)]
pub struct ResidualNormInput<B: Backend> {
    /// The sub-layer's input: [rows, d].
    pub x: Tensor<B, 2>,
    /// The sub-layer's output, added to x: [rows, d].
    pub residual: Tensor<B, 2>,
    /// Scale per channel: \[d\].
    pub gamma: Tensor<B, 1>,
    /// Added to the mean square before the root.
    pub epsilon: f64,
}

/// Gradients of the residual RMSNorm.
#[derive(Debug, Clone)]
pub struct ResidualNormGrads<B: Backend> {
    /// Of x and of the residual alike (the sum's gradient): [rows, d].
    pub sum: Tensor<B, 2>,
    /// \[d\]
    pub gamma: Tensor<B, 1>,
}

impl<B: Backend> ResidualNormInput<B> {
    /// [rows, d], after checking the residual and gamma against x.
    ///
    /// # Panics
    /// When they disagree: a programming error inside the model, never user data.
    pub fn dims(&self) -> [usize; 2] {
        let dims = self.x.dims();
        assert_eq!(
            self.residual.dims(),
            dims,
            "residual_rms_norm: the residual has the shape of x"
        );
        assert_eq!(self.gamma.dims(), [dims[1]], "residual_rms_norm: gamma is [d]");
        dims
    }

    /// x and the residual in gamma's type: the reference computes in the parameters' type (f32
    /// under mixed precision, where x and the residual are f16 or bf16).
    fn widened(self) -> Self {
        let dtype = self.gamma.dtype();
        ResidualNormInput {
            x: self.x.cast(dtype),
            residual: self.residual.cast(dtype),
            ..self
        }
    }
}

/// A backend that can run the residual RMSNorm.
///
/// The defaults are the tensor-op reference; kernel backends override both methods, and autodiff
/// calls `residual_rms_norm_backward` of the inner backend, so the two must agree.
pub trait ResidualNormBackend: Backend {
    /// The normalised sum: [rows, d].
    fn residual_rms_norm(input: ResidualNormInput<Self>) -> Tensor<Self, 2> {
        reference_forward(input)
    }

    /// Gradients of `sum(out * dout)`; `dout`: [rows, d].
    fn residual_rms_norm_backward(input: ResidualNormInput<Self>, dout: Tensor<Self, 2>) -> ResidualNormGrads<Self> {
        reference_backward(input, dout)
    }
}

/// Runs the residual RMSNorm on backend `B`: (x + r) / sqrt(mean((x + r)²) + eps) · gamma, the
/// mean over each row's d channels (burn's `RmsNorm` of the sum).
///
/// # Shapes
/// x, residual: [rows, d]; gamma: \[d\] -> [rows, d]
pub fn residual_rms_norm<B: ResidualNormBackend>(input: ResidualNormInput<B>) -> Tensor<B, 2> {
    input.dims();
    B::residual_rms_norm(input)
}

/// The sum s and 1 / rms(s) per row [rows, 1].
fn sum_and_scale<B: Backend>(input: ResidualNormInput<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let s = input.x + input.residual;
    let scale = (s.clone().square().mean_dim(1) + input.epsilon).sqrt().recip();
    (s, scale)
}

/// The residual RMSNorm in tensor ops, in gamma's type; the output in x's.
pub fn reference_forward<B: Backend>(input: ResidualNormInput<B>) -> Tensor<B, 2> {
    let dtype = input.x.dtype();
    let input = input.widened();
    let gamma = input.gamma.clone().unsqueeze::<2>();
    let (s, scale) = sum_and_scale(input);
    (s * scale * gamma).cast(dtype)
}

/// Its backward, each gradient in its input's type, written out: with ŝ = s / rms(s) and g = dout · gamma,
/// ds = (g - ŝ · mean(g · ŝ)) / rms(s), dgamma = sum over rows of dout · ŝ.
pub fn reference_backward<B: Backend>(input: ResidualNormInput<B>, dout: Tensor<B, 2>) -> ResidualNormGrads<B> {
    let [_, width] = input.dims();
    let dtype = input.x.dtype();
    let input = input.widened();
    let dout = dout.cast(input.gamma.dtype());
    let gamma = input.gamma.clone().unsqueeze::<2>();
    let (s, scale) = sum_and_scale(input);
    let normed = s * scale.clone();
    let g = dout.clone() * gamma;
    let mean = (g.clone() * normed.clone()).mean_dim(1);
    ResidualNormGrads {
        sum: ((g - normed.clone() * mean) * scale).cast(dtype),
        gamma: (dout * normed).sum_dim(0).reshape([width]),
    }
}
