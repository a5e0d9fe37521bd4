use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use msamamba_kernels::mlp::mlp;
use msamamba_kernels::{MlpBackend, MlpInput};

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

impl<B: MlpBackend> Mlp<B> {
    /// One fused operation ([`msamamba_kernels::mlp`]): the hidden activations (4D wide) are
    /// recomputed in the backward, not kept.
    ///
    /// # Shapes
    /// x: [B, M, L, D] -> [B, M, L, D]
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [batch, rows, len, width] = x.dims();
        let bias = |linear: &Linear<B>| {
            let bias = linear
                .bias
                .as_ref()
                .expect("MlpConfig::init gives both projections a bias");
            bias.val()
        };
        mlp(MlpInput {
            x: x.clone().reshape([batch * rows, len, width]),
            up_weight: self.up.weight.val(),
            up_bias: bias(&self.up),
            down_weight: self.down.weight.val(),
            down_bias: bias(&self.down),
        })
        .reshape([batch, rows, len, width])
    }
}
