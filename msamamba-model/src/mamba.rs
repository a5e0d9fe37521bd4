use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use msamamba_kernels::KernelBackend;

use crate::recomputed::{kept, kept_columns};
use crate::selective_ssm::{SelectiveSsm, SelectiveSsmConfig};

/// The Mamba-1 mixer of mamba_ssm: in_proj to (x, z), a selective SSM on x gated by z, out_proj.
#[derive(Config, Debug)]
pub struct MambaConfig {
    /// Model width D.
    #[config(default = 128)]
    pub d_model: usize,
    /// E = expand * D.
    #[config(default = 2)]
    pub expand: usize,
    /// State size N.
    #[config(default = 16)]
    pub d_state: usize,
    /// Width of the causal depthwise convolution.
    #[config(default = 4)]
    pub d_conv: usize,
    /// Add a reverse-direction scan sharing in_proj and out_proj (Caduceus BiMamba). Off in
    /// the paper: the model then stays causal along the sequence.
    #[config(default = false)]
    pub bidirectional: bool,
}

/// See [`MambaConfig`].
#[derive(Module, Debug)]
pub struct Mamba<B: Backend> {
    /// D -> 2E, no bias.
    pub in_proj: Linear<B>,
    /// The left-to-right scan.
    pub forward_ssm: SelectiveSsm<B>,
    /// The right-to-left scan, when bidirectional.
    pub reverse_ssm: Option<SelectiveSsm<B>>,
    /// E -> D, no bias.
    pub out_proj: Linear<B>,
}

impl MambaConfig {
    /// E, the inner width.
    pub fn d_inner(&self) -> usize {
        self.expand * self.d_model
    }

    /// Initialises the mixer.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mamba<B> {
        let e = self.d_inner();
        let ssm = SelectiveSsmConfig::new(e, self.d_model.div_ceil(16))
            .with_d_state(self.d_state)
            .with_d_conv(self.d_conv);
        Mamba {
            in_proj: LinearConfig::new(self.d_model, 2 * e).with_bias(false).init(device),
            forward_ssm: ssm.init(device),
            reverse_ssm: self.bidirectional.then(|| ssm.init(device)),
            out_proj: LinearConfig::new(e, self.d_model).with_bias(false).init(device),
        }
    }
}

impl<B: KernelBackend> Mamba<B> {
    /// The in-projection's two halves (the sequence and the gate) are two products rather than one
    /// split in two: the split's backward writes each half's gradient into a zero [R, L, 2E]
    /// tensor and adds the two, where two products need one add of [R, L, D].
    ///
    /// # Shapes
    /// x: [R, L, D] -> [R, L, D], R the scanned rows.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let e = self.in_proj.weight.dims()[1] / 2;
        let u = kept_columns(&self.in_proj, x.clone(), 0..e); // [R, L, E]
        let z = kept_columns(&self.in_proj, x, e..2 * e); // [R, L, E]
        let mut y = self.forward_ssm.forward(u.clone(), z.clone()); // [R, L, E]
        if let Some(reverse) = &self.reverse_ssm {
            y = y + reverse.forward(u.flip([1]), z.flip([1])).flip([1]);
        }
        kept(&self.out_proj, y)
    }
}
