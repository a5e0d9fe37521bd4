//! The causal depthwise convolution in front of each selective scan (mamba_ssm's causal_conv1d).
//!
//! It runs as the fused operation of `msamamba_kernels::causal_conv` (one kernel each way on the
//! GPU backends, with the SiLU that follows it) on the channels-last activations: burn's grouped
//! `Conv1d` runs its backward as one single-warp launch per channel, which leaves the GPU nearly
//! idle, and needs channels-first copies.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use msamamba_kernels::causal_conv::causal_conv1d;
use msamamba_kernels::{CausalConvBackend, CausalConvInput};

/// Depthwise causal convolution: y[l, e] = bias\[e\] + sum_k weight[e, k] * x[l - (K - 1) + k, e],
/// zeros before the first position.
#[derive(Config, Debug)]
pub struct CausalConvConfig {
    /// Channels E.
    pub channels: usize,
    /// Kernel width K (mamba_ssm's d_conv).
    #[config(default = 4)]
    pub kernel_size: usize,
}

/// See [`CausalConvConfig`].
#[derive(Module, Debug)]
pub struct CausalConv<B: Backend> {
    /// One filter per channel: [E, K]; tap K - 1 is the current position.
    pub weight: Param<Tensor<B, 2>>,
    /// \[E\]
    pub bias: Param<Tensor<B, 1>>,
}

impl CausalConvConfig {
    /// Initialises as PyTorch's `Conv1d` (mamba_ssm's): weight and bias uniform in
    /// ±1/sqrt(fan_in), fan_in = K for a depthwise filter.
    pub fn init<B: Backend>(&self, device: &B::Device) -> CausalConv<B> {
        let bound = 1.0 / (self.kernel_size as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        CausalConv {
            weight: Param::from_tensor(Tensor::random([self.channels, self.kernel_size], uniform, device)),
            bias: Param::from_tensor(Tensor::random([self.channels], uniform, device)),
        }
    }
}

impl<B: CausalConvBackend> CausalConv<B> {
    /// # Shapes
    /// x: [R, L, E] -> [R, L, E], R the scanned rows.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.apply(x, false)
    }

    /// SiLU(conv(x)), as one operation: what the selective scan takes.
    ///
    /// # Shapes
    /// x: [R, L, E] -> [R, L, E]
    pub fn forward_silu(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.apply(x, true)
    }

    fn apply(&self, x: Tensor<B, 3>, silu: bool) -> Tensor<B, 3> {
        causal_conv1d(CausalConvInput {
            x,
            weight: self.weight.val(),
            bias: self.bias.val(),
            silu,
        })
    }
}
