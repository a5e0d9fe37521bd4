//! The causal convolution's forward as plain loops for the CPU backend: one row per rayon task,
//! in the tensors' own precision (see [`Real`]).
//!
//! The tensor-op reference pads x and sums K shifted products, each an array of its own (an
//! allocation and a pass over memory per tap on ndarray). Here each position is one pass over the
//! channels (contiguous in the channels-last input), which the compiler vectorises. The backward
//! stays the reference's.

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

use super::{Real, sigmoid, values};
use crate::causal_conv::CausalConvInput;

/// The convolved (and activated) sequences [r, l, e], as
/// [`crate::causal_conv::reference_forward`].
pub fn forward<B: Backend>(input: CausalConvInput<B>) -> Tensor<B, 3> {
    match input.x.dtype() {
        DType::F64 => forward_in::<B, f64>(input),
        _ => forward_in::<B, f32>(input),
    }
}

fn forward_in<B: Backend, F: Real>(input: CausalConvInput<B>) -> Tensor<B, 3> {
    let [rows, len, channels, taps] = input.dims();
    let device = input.x.device();
    let x: Vec<F> = values(input.x);
    let bias: Vec<F> = values(input.bias);
    // The weight as [k, e]: tap k - 1 on the current position.
    let weight: Vec<F> = values(input.weight.transpose());
    let mut y = vec![F::zero(); rows * len * channels];
    y.par_chunks_mut(len * channels)
        .zip(x.par_chunks(len * channels))
        .for_each(|(y, x)| {
            for (t, y) in y.chunks_exact_mut(channels).enumerate() {
                y.copy_from_slice(&bias);
                // Tap k reads position t - (K - 1) + k; those before the first are zeros.
                for k in (taps - 1).saturating_sub(t)..taps {
                    let source = &x[(t + k + 1 - taps) * channels..][..channels];
                    let w = &weight[k * channels..][..channels];
                    for ((y, &x), &w) in y.iter_mut().zip(source).zip(w) {
                        *y += w * x;
                    }
                }
                if input.silu {
                    for y in y.iter_mut() {
                        *y *= sigmoid(*y);
                    }
                }
            }
        });
    Tensor::from_data(
        TensorData::new(y, [rows, len, channels]).convert::<B::FloatElem>(),
        &device,
    )
}
