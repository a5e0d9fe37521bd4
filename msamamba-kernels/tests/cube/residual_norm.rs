//! The residual-RMSNorm kernels against the tensor-op reference (on NdArray, float64): forward and
//! both gradients, directly and inside burn's autodiff with fusion; on WGPU (the `wgpu` feature)
//! and on CUDA (`cuda`).

use crate::common::{Activations, NormProblem, assert_close_above, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::DType;
use msamamba_kernels::ResidualNormInput;
use msamamba_kernels::cube::residual_norm::{backward, forward, supported};
use msamamba_kernels::residual_norm::{reference_backward, reference_forward, residual_rms_norm};

/// (rows, width): one row, one channel, widths off the warp size (a lane holding one, two or
/// several channels, some lanes none), the paper's width, the widest the kernels take, and more
/// rows than the cubes cover in one sweep (2048 cubes of 8 rows), rows off the cube's 8.
pub(crate) const SHAPES: [[usize; 2]; 8] = [
    [1, 1],
    [7, 5],
    [9, 33],
    [100, 128],
    [13, 70],
    [3, 1024],
    [20_001, 3],
    [2, 200],
];

/// f32 kernels against the float64 reference, relative to the largest value or 1: inputs and
/// outputs are O(1), gamma's gradient sums up to 20 001 terms.
const TOLERANCE: f64 = 1e-4;

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_close_above(what, got, want, TOLERANCE, 1.0);
}

/// Checks the kernels' forward and backward on `problem`, its activations in `a`, against the
/// reference on the same (rounded) values; outputs and gradients in their inputs' types.
fn check<R, BT>(problem: &NormProblem, a: Activations)
where
    R: burn_cubecl::CubeRuntime,
    BT: burn_cubecl::BoolElement,
{
    type G<R, BT> = burn_cubecl::CubeBackend<R, f32, i32, BT>;
    let (gpu, cpu) = (Default::default(), Default::default());
    let problem = problem.rounded(a);
    let label = format!("{:?} {a:?}", problem.dims);
    let tolerance = a.tolerance(TOLERANCE);
    let close = |what: &str, got: &[f64], want: &[f64]| {
        assert_close_above(&format!("{what} {label}"), got, want, tolerance, 1.0)
    };
    let input = || {
        let input = problem.input::<G<R, BT>>(&gpu);
        ResidualNormInput {
            x: input.x.cast(a.dtype()),
            residual: input.residual.cast(a.dtype()),
            ..input
        }
    };
    assert!(supported(&input()), "{label}: the kernels cover it");
    let out = forward(input());
    assert_eq!(out.dtype(), a.dtype(), "{label}: output type");
    let want = values(reference_forward(problem.input::<NdArray<f64>>(&cpu)));
    close("out", &values(out), &want);

    let want = reference_backward(problem.input::<NdArray<f64>>(&cpu), problem.dout::<NdArray<f64>>(&cpu));
    let got = backward(input(), problem.dout::<G<R, BT>>(&gpu).cast(a.dtype()));
    assert_eq!(
        (got.sum.dtype(), got.gamma.dtype()),
        (a.dtype(), DType::F32),
        "{label}: gradient types"
    );
    close("dsum", &values(got.sum), &values(want.sum));
    close("dgamma", &values(got.gamma), &values(want.gamma));
}

/// Gradients of sum(out * dout) for x, residual and gamma through burn's autodiff.
pub(crate) fn autodiff_grads<B: msamamba_kernels::ResidualNormBackend>(
    problem: &NormProblem,
    device: &B::Device,
) -> Vec<Vec<f64>> {
    let input = problem.input::<Autodiff<B>>(device);
    let (x, residual, gamma) = (
        input.x.require_grad(),
        input.residual.require_grad(),
        input.gamma.require_grad(),
    );
    let out = residual_rms_norm(ResidualNormInput {
        x: x.clone(),
        residual: residual.clone(),
        gamma: gamma.clone(),
        epsilon: problem.epsilon,
    });
    let grads = (out * problem.dout::<Autodiff<B>>(device)).sum().backward();
    vec![
        values(x.grad(&grads).expect("gradient")),
        values(residual.grad(&grads).expect("gradient")),
        values(gamma.grad(&grads).expect("gradient")),
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
                    check::<R, BT>(&NormProblem::random(&mut rng, dims), Activations::F32);
                }
            }

            #[test]
            fn half_precision_activations_match_reference() {
                let mut rng = rng();
                for a in $halves {
                    for dims in SHAPES {
                        check::<R, BT>(&NormProblem::random(&mut rng, dims), a);
                    }
                }
            }

            #[test]
            fn widths_past_the_kernels_fall_back_to_the_reference() {
                type G = burn_cubecl::CubeBackend<R, f32, i32, BT>;
                let mut rng = rng();
                let problem = NormProblem::random(&mut rng, [3, 1025]);
                assert!(!supported(&problem.input::<G>(&Default::default())));
                let got = autodiff_grads::<Gpu>(&problem, &Default::default());
                let want = autodiff_grads::<NdArray>(&problem, &Default::default());
                for ((name, g), w) in ["dx", "dresidual", "dgamma"].iter().zip(&got).zip(&want) {
                    assert_close(&format!("fallback {name}"), g, w);
                }
            }

            #[test]
            fn autodiff_on_gpu_matches_autodiff_on_ndarray() {
                let mut rng = rng();
                let problem = NormProblem::random(&mut rng, [2 * 90 * 4, 128]);
                let got = autodiff_grads::<Gpu>(&problem, &Default::default());
                let want = autodiff_grads::<NdArray>(&problem, &Default::default());
                for ((name, g), w) in ["dx", "dresidual", "dgamma"].iter().zip(&got).zip(&want) {
                    assert_close(&format!("autodiff {name}"), g, w);
                }
            }
        }
    };
}

#[cfg(feature = "wgpu")]
// WGPU has no bf16.
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
