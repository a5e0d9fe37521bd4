//! The causal depthwise convolution in front of each selective scan (mamba_ssm's causal_conv1d).
//!
//! Written as K shifted multiply-adds over the channels-last activations rather than burn's
//! grouped `Conv1d`: on the GPU backends burn's grouped conv runs its backward as one
//! single-warp launch per channel (94% of a training step's GPU time on the H200), while K
//! element-wise passes fuse into a few memory-bound kernels, forward and backward. Working on
//! [R, L, E] also drops the transposes to and from the channels-first layout a `Conv1d` needs.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;

/// Depthwise causal convolution: y[l, e] = bias[e] + sum_k weight[e, k] * x[l - (K - 1) + k, e],
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
    /// [E]
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

impl<B: Backend> CausalConv<B> {
    /// # Shapes
    /// x: [R, L, E] -> [R, L, E], R the scanned rows.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [rows, len, channels] = x.dims();
        let weight = self.weight.val();
        let [_, k] = weight.dims();
        let padded = Tensor::cat(vec![Tensor::zeros([rows, k - 1, channels], &x.device()), x], 1); // [R, L + K - 1, E]
        (0..k).fold(self.bias.val().reshape([1, 1, channels]), |y, tap| {
            let w = weight.clone().narrow(1, tap, 1).reshape([1, 1, channels]); // [1, 1, E]
            y + padded.clone().narrow(1, tap, len) * w
        })
    }
}
