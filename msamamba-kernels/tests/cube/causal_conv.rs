//! The causal-convolution kernels against the tensor-op reference (on NdArray, float64): forward
//! and the three gradients, on contiguous inputs and on a slice of a wider tensor (as the model
//! passes x), directly and inside burn's autodiff with fusion; on WGPU (the `wgpu` feature) and on
//! CUDA (`cuda`).

use crate::common::{Activations, ConvProblem, assert_close_above, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::DType;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use msamamba_kernels::CausalConvInput;
use msamamba_kernels::causal_conv::{causal_conv1d, reference_backward, reference_forward};
use msamamba_kernels::cube::causal_conv::{backward, forward, supported};

/// (rows, positions, channels, taps): one position, fewer positions than taps, positions past one
/// run of 64 and off it, channels off the cube's 64, one tap, two, mamba's four, eight; and rows
/// x positions large enough (300 000) that the runs grow past 64 positions.
pub(crate) const SHAPES: [[usize; 4]; 7] = [
    [1, 1, 1, 4],
    [2, 3, 5, 4],
    [3, 200, 70, 4],
    [1, 130, 64, 1],
    [2, 70, 5, 2],
    [1, 300, 33, 8],
    [3, 100_000, 2, 4],
];

/// f32 kernels against the float64 reference, relative to the largest value or 1; the weight
/// gradients sum up to 300 000 terms.
const TOLERANCE: f64 = 1e-4;

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_close_above(what, got, want, TOLERANCE, 1.0);
}

/// x as channels 2.. of a wider channels-last tensor of `dtype` (the model's x is the first half
/// of the input projection's output).
pub(crate) fn sliced<B: Backend>(p: &ConvProblem, dtype: DType, device: &B::Device) -> CausalConvInput<B> {
    let [rows, len, channels, _] = p.dims;
    let width = channels + 5;
    let mut wide = vec![1e3; rows * len * width];
    for (i, v) in p.x.iter().enumerate() {
        wide[(i / channels) * width + 2 + i % channels] = *v;
    }
    let wide = Tensor::<B, 3>::from_data(
        TensorData::new(wide, [rows, len, width]).convert::<B::FloatElem>(),
        device,
    );
    CausalConvInput {
        x: wide.cast(dtype).narrow(2, 2, channels),
        ..p.input(device)
    }
}

/// Checks the kernels' forward and backward on `problem`, its activations in `a`, against the
/// reference on the same (rounded) values, x contiguous and sliced; outputs and gradients in their
/// inputs' types.
fn check<R, BT>(problem: &ConvProblem, a: Activations)
where
    R: burn_cubecl::CubeRuntime,
    BT: burn_cubecl::BoolElement,
{
    type G<R, BT> = burn_cubecl::CubeBackend<R, f32, i32, BT>;
    let (gpu, cpu) = (Default::default(), Default::default());
    let problem = &problem.rounded(a);
    let tolerance = a.tolerance(TOLERANCE);
    let y_want = values(reference_forward(problem.input::<NdArray<f64>>(&cpu)));
    let want = reference_backward(problem.input::<NdArray<f64>>(&cpu), problem.dy::<NdArray<f64>>(&cpu));
    let want = [values(want.x), values(want.weight), values(want.bias)];
    let contiguous = problem.input::<G<R, BT>>(&gpu);
    let contiguous = CausalConvInput {
        x: contiguous.x.cast(a.dtype()),
        ..contiguous
    };
    for (layout, input) in [
        ("contiguous", contiguous),
        ("sliced", sliced::<G<R, BT>>(problem, a.dtype(), &gpu)),
    ] {
        let label = format!("{:?} silu={} {layout} {a:?}", problem.dims, problem.silu);
        let close = |what: &str, got: &[f64], want: &[f64]| {
            assert_close_above(&format!("{what} {label}"), got, want, tolerance, 1.0)
        };
        assert!(supported(&input), "{label}: the kernels cover it");
        let y = forward(input.clone());
        assert_eq!(y.dtype(), a.dtype(), "{label}: output type");
        close("y", &values(y), &y_want);
        let got = backward(input, problem.dy::<G<R, BT>>(&gpu).cast(a.dtype()));
        assert_eq!(
            [got.x.dtype(), got.weight.dtype(), got.bias.dtype()],
            [a.dtype(), DType::F32, DType::F32],
            "{label}: gradient types"
        );
        let got = [values(got.x), values(got.weight), values(got.bias)];
        for ((name, g), w) in ["dx", "dweight", "dbias"].iter().zip(&got).zip(&want) {
            close(name, g, w);
        }
    }
}

/// Gradients of sum(y * dy) for x, weight and bias through burn's autodiff.
pub(crate) fn autodiff_grads<B: msamamba_kernels::CausalConvBackend>(
    problem: &ConvProblem,
    device: &B::Device,
) -> Vec<Vec<f64>> {
    let input = problem.input::<Autodiff<B>>(device);
    let (x, weight, bias) = (
        input.x.require_grad(),
        input.weight.require_grad(),
        input.bias.require_grad(),
    );
    let y = causal_conv1d(CausalConvInput {
        x: x.clone(),
        weight: weight.clone(),
        bias: bias.clone(),
        silu: problem.silu,
    });
    let grads = (y * problem.dy::<Autodiff<B>>(device)).sum().backward();
    vec![
        values(x.grad(&grads).expect("gradient")),
        values(weight.grad(&grads).expect("gradient")),
        values(bias.grad(&grads).expect("gradient")),
    ]
}

/// The tests, instantiated per GPU backend.
macro_rules! gpu_tests {
    ($name:ident, $gpu:ty, $runtime:ty, $bool:ty, $halves:expr) => {
        mod $name {
            use super::*;
            type Gpu = $gpu;
            type R = $runtime;
            type BT = $bool;

            #[test]
            fn kernels_match_reference() {
                let mut rng = rng();
                for dims in SHAPES {
                    for silu in [true, false] {
                        check::<R, BT>(&ConvProblem::random(&mut rng, dims, silu), Activations::F32);
                    }
                }
            }

            #[test]
            fn half_precision_activations_match_reference() {
                let mut rng = rng();
                for a in $halves {
                    for dims in SHAPES {
                        check::<R, BT>(&ConvProblem::random(&mut rng, dims, true), a);
                    }
                }
            }

            #[test]
            fn taps_past_the_kernels_fall_back_to_the_reference() {
                type G = burn_cubecl::CubeBackend<R, f32, i32, BT>;
                let mut rng = rng();
                let problem = ConvProblem::random(&mut rng, [2, 20, 3, 9], true);
                assert!(!supported(&problem.input::<G>(&Default::default())));
                let got = autodiff_grads::<Gpu>(&problem, &Default::default());
                let want = autodiff_grads::<NdArray>(&problem, &Default::default());
                for ((name, g), w) in ["dx", "dweight", "dbias"].iter().zip(&got).zip(&want) {
                    assert_close(&format!("fallback {name}"), g, w);
                }
            }

            #[test]
            fn autodiff_on_gpu_matches_autodiff_on_ndarray() {
                let mut rng = rng();
                let problem = ConvProblem::random(&mut rng, [6, 300, 256, 4], true);
                let got = autodiff_grads::<Gpu>(&problem, &Default::default());
                let want = autodiff_grads::<NdArray>(&problem, &Default::default());
                for ((name, g), w) in ["dx", "dweight", "dbias"].iter().zip(&got).zip(&want) {
                    assert_close(&format!("autodiff {name}"), g, w);
                }
            }
        }
    };
}

// WGPU has no bf16.
#[cfg(feature = "wgpu")]
gpu_tests!(
    wgpu,
    burn::backend::Wgpu,
    cubecl::wgpu::WgpuRuntime,
    u32,
    [Activations::F16]
);
#[cfg(feature = "cuda")]
gpu_tests!(
    cuda,
    burn::backend::Cuda,
    cubecl::cuda::CudaRuntime,
    u8,
    [Activations::F16, Activations::Bf16]
);
