use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use msamamba_kernels::{KernelBackend, SelectiveScanInput, selective_scan};

use crate::causal_conv::{CausalConv, CausalConvConfig};
use crate::recomputed::{kept, recomputed};

/// One scan direction of a Mamba layer: causal depthwise conv, SiLU, then the selective SSM
/// whose step size and B, C depend on the input.
#[derive(Config, Debug)]
pub struct SelectiveSsmConfig {
    /// Channels E (d_inner).
    pub d_inner: usize,
    /// State size N.
    #[config(default = 16)]
    pub d_state: usize,
    /// Width of the causal depthwise convolution.
    #[config(default = 4)]
    pub d_conv: usize,
    /// Rank of the step-size projection (mamba_ssm: ceil(d_model / 16)).
    pub dt_rank: usize,
    /// Smallest initial step size.
    #[config(default = 1e-3)]
    pub dt_min: f64,
    /// Largest initial step size.
    #[config(default = 1e-1)]
    pub dt_max: f64,
    /// Floor of the initial step size.
    #[config(default = 1e-4)]
    pub dt_init_floor: f64,
}

/// See [`SelectiveSsmConfig`].
#[derive(Module, Debug)]
pub struct SelectiveSsm<B: Backend> {
    /// Depthwise causal convolution over each channel.
    pub conv: CausalConv<B>,
    /// E -> dt_rank + 2N, no bias.
    pub x_proj: Linear<B>,
    /// dt_rank -> E, no bias: the bias is `dt_bias`, added inside the scan as mamba_ssm does.
    pub dt_proj: Linear<B>,
    /// Step-size bias \[E\], softplus^-1 of the initial step size.
    pub dt_bias: Param<Tensor<B, 1>>,
    /// log(-A) [E, N]; A = -exp(a_log) stays negative whatever the optimiser does.
    pub a_log: Param<Tensor<B, 2>>,
    /// Skip connection D \[E\].
    pub d: Param<Tensor<B, 1>>,
    /// Rank of the step-size projection.
    pub dt_rank: usize,
    /// State size N.
    pub d_state: usize,
}

impl SelectiveSsmConfig {
    /// Initialises as mamba_ssm's Mamba-1: A = -(1..N) per channel, D = 1, step sizes
    /// log-uniform in [dt_min, dt_max].
    pub fn init<B: Backend>(&self, device: &B::Device) -> SelectiveSsm<B> {
        let (e, n) = (self.d_inner, self.d_state);
        let conv = CausalConvConfig::new(e).with_kernel_size(self.d_conv).init(device);
        let x_proj = LinearConfig::new(e, self.dt_rank + 2 * n).with_bias(false).init(device);
        let std = (self.dt_rank as f64).powf(-0.5);
        let dt_proj = LinearConfig::new(self.dt_rank, e)
            .with_bias(false)
            .with_initializer(Initializer::Uniform { min: -std, max: std })
            .init(device);
        let (lo, hi) = (self.dt_min.ln(), self.dt_max.ln());
        let dt = Tensor::<B, 1>::random([e], Distribution::Uniform(lo, hi), device)
            .exp()
            .clamp_min(self.dt_init_floor);
        // softplus^-1(dt) = dt + log(1 - exp(-dt))
        let dt_bias = dt.clone() + (dt.neg().exp().neg() + 1.0).log();
        let a_log = Tensor::<B, 1, Int>::arange(1..n as i64 + 1, device)
            .float()
            .log()
            .unsqueeze_dim::<2>(0)
            .repeat_dim(0, e);
        SelectiveSsm {
            conv,
            x_proj,
            dt_proj,
            dt_bias: Param::from_tensor(dt_bias),
            a_log: Param::from_tensor(a_log),
            d: Param::from_tensor(Tensor::ones([e], device)),
            dt_rank: self.dt_rank,
            d_state: n,
        }
    }
}

impl<B: KernelBackend> SelectiveSsm<B> {
    /// # Shapes
    /// x: [R, L, E], z (gate): [R, L, E] -> [R, L, E], R the scanned rows.
    pub fn forward(&self, x: Tensor<B, 3>, z: Tensor<B, 3>) -> Tensor<B, 3> {
        let u = self.conv.forward_silu(x); // [R, L, E]
        selective_scan(self.scan_input(u, z)).swap_dims(1, 2) // [R, L, E]
    }

    /// The scan's inputs from the convolved sequence: B, C and the step size projected from
    /// it, in the channels-first layout the scan takes. The convolution's output and the step
    /// sizes (E wide each) are recomputed in the backward, not kept.
    ///
    /// # Shapes
    /// u, z: [R, L, E]
    pub fn scan_input(&self, u: Tensor<B, 3>, z: Tensor<B, 3>) -> SelectiveScanInput<B> {
        let n = self.d_state;
        let x_dbl = kept(&self.x_proj, u.clone()); // [R, L, dt_rank + 2N]
        let dt = x_dbl.clone().narrow(2, 0, self.dt_rank); // [R, L, dt_rank]
        let b = x_dbl.clone().narrow(2, self.dt_rank, n).swap_dims(1, 2); // [R, N, L]
        let c = x_dbl.narrow(2, self.dt_rank + n, n).swap_dims(1, 2); // [R, N, L]
        SelectiveScanInput {
            u: u.swap_dims(1, 2),                                 // [R, E, L]
            delta: recomputed(&self.dt_proj, dt).swap_dims(1, 2), // [R, E, L], recomputed in the backward
            a: self.a_log.val().exp().neg(),
            b,
            c,
            d: self.d.val(),
            z: Some(z.swap_dims(1, 2)), // [R, E, L]
            delta_bias: self.dt_bias.val(),
            delta_softplus: true,
        }
    }
}
