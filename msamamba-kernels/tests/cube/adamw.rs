//! The AdamW kernel against the tensor-op reference in float64 (on NdArray), directly and through
//! burn-fusion, over several steps; on WGPU (the `wgpu` feature) and on CUDA (`cuda`).

use crate::common::{assert_close_above, rng, values};
use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use msamamba_kernels::AdamWBackend;
use msamamba_kernels::adamw::{AdamWStep, AdamWTensors, adamw_step, reference};
use rand::Rng;

/// Elements: one, off the cube's 256, several cubes, past one grid row of cubes on WGPU.
const LENGTHS: [usize; 4] = [1, 33, 1000, 70_000];

/// f32 against float64, relative to the largest value or 1: the update divides by sqrt(v) + ε,
/// O(1) for these gradients.
const TOLERANCE: f64 = 1e-5;

fn tensor<B: Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

/// Three steps from zero moments on backend B with gradients `grads`: the final parameter and
/// moments.
pub(crate) fn three_steps<B: AdamWBackend>(
    param: &[f64],
    grads: &[Vec<f64>],
    weight_decay: f64,
    kernel: bool,
) -> [Vec<f64>; 3] {
    let device = Default::default();
    let n = param.len();
    let mut state = AdamWTensors::<B> {
        param: tensor(param, &device),
        moment_1: Tensor::zeros([n], &device),
        moment_2: Tensor::zeros([n], &device),
    };
    for (t, grad) in grads.iter().enumerate() {
        let step = AdamWStep {
            lr: 3e-2,
            beta_1: 0.9,
            beta_2: 0.95,
            epsilon: 1e-8,
            weight_decay,
            time: t + 1,
        };
        state = if kernel {
            adamw_step(state, tensor(grad, &device), &step)
        } else {
            reference(state, tensor(grad, &device), &step)
        };
    }
    [values(state.param), values(state.moment_1), values(state.moment_2)]
}

/// The tests, instantiated per GPU backend (`Gpu`: with fusion).
macro_rules! gpu_tests {
    ($name:ident, $gpu:ty, $runtime:ty, $bool:ty) => {
        mod $name {
            use super::*;
            type Gpu = $gpu;
            type Cube = burn_cubecl::CubeBackend<$runtime, f32, i32, $bool>;

            #[test]
            fn kernel_matches_float64_reference() {
                let mut rng = rng();
                for n in LENGTHS {
                    let mut uniform = |n: usize| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect::<Vec<f64>>();
                    let param = uniform(n);
                    let grads = [uniform(n), uniform(n), uniform(n)];
                    for weight_decay in [0.0, 0.1] {
                        let want = three_steps::<NdArray<f64>>(&param, &grads, weight_decay, false);
                        let kernel = three_steps::<Cube>(&param, &grads, weight_decay, true);
                        let fused = three_steps::<Gpu>(&param, &grads, weight_decay, true);
                        for (i, name) in ["param", "moment_1", "moment_2"].iter().enumerate() {
                            let what = format!("{name} n={n} decay={weight_decay}");
                            assert_close_above(&format!("kernel {what}"), &kernel[i], &want[i], TOLERANCE, 1.0);
                            assert_close_above(&format!("fusion {what}"), &fused[i], &want[i], TOLERANCE, 1.0);
                        }
                    }
                }
            }
        }
    };
}

#[cfg(feature = "wgpu")]
gpu_tests!(wgpu, burn::backend::Wgpu, cubecl::wgpu::WgpuRuntime, u32);
#[cfg(feature = "cuda")]
gpu_tests!(cuda, burn::backend::Cuda, cubecl::cuda::CudaRuntime, u8);
