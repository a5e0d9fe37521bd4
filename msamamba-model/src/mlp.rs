use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use msamamba_kernels::RecomputedLinearBackend;

use crate::recomputed::{kept, recomputed};

/// The position-wise transition: D -> 4D -> D with SiLU.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Model width D.
    #[config(default = 128)]
    pub d_model: usize,
    /// Hidden width as a multiple of D.
    #[config(default = 4)]
    pub expansion: usize,
}

/// See [`MlpConfig`].
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// D -> expansion * D.
    pub up: Linear<B>,
    /// expansion * D -> D.
    pub down: Linear<B>,
}

impl MlpConfig {
    /// Initialises the MLP.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        let hidden = self.expansion * self.d_model;
        Mlp {
            up: LinearConfig::new(self.d_model, hidden).init(device),
            down: LinearConfig::new(hidden, self.d_model).init(device),
        }
    }
}

impl<B: RecomputedLinearBackend> Mlp<B> {
    /// The hidden activations (4D wide) are recomputed in the backward, not kept.
    ///
    /// # Shapes
    /// x: [..., D] -> [..., D]
    pub fn forward<const K: usize>(&self, x: Tensor<B, K>) -> Tensor<B, K> {
        kept(&self.down, silu(recomputed(&self.up, x)))
    }
}
