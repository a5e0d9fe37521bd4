//! The row-attention kernels against the tensor-op reference (on NdArray): forward, its softmax
//! statistics and the three gradients (the backward from the kernels' own forward), directly and
//! inside burn's autodiff with fusion; on WGPU (the `wgpu` feature) and on CUDA (`cuda`).

use crate::common::{Activations, AttentionProblem, Mask, assert_close_above, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::DType;
use msamamba_kernels::RowAttentionInput;
use msamamba_kernels::cube::row_attention::{backward, forward, supported};
use msamamba_kernels::row_attention::{reference_backward, reference_forward, row_attention};

/// (b, m, l, d, heads): the paper's rows and head width (90 rows, 4 heads of 32), the most rows
/// the paper model takes (128), one row, rows off the warp size and the tile, one position, heads
/// of one and of 64 channels, more rows than the smallest WGPU cube limit (256), heads read in
/// vectors of 2 (6 channels) and of 1 (5 channels).
pub(crate) const SHAPES: [([usize; 4], usize); 10] = [
    ([2, 90, 3, 128], 4),
    ([1, 128, 2, 64], 2),
    ([2, 1, 5, 16], 2),
    ([3, 33, 4, 24], 3),
    ([1, 7, 1, 8], 8),
    ([2, 40, 3, 64], 1),
    ([1, 65, 2, 40], 5),
    ([1, 250, 2, 8], 2),
    ([2, 9, 3, 12], 2),
    ([1, 5, 2, 15], 3),
];

const MASKS: [Mask; 4] = [Mask::None, Mask::Random, Mask::AllButFirst, Mask::All];

/// f32 kernels against the float64 reference (sums of up to 128 terms), relative to the largest
/// value or 1, whichever is larger: inputs are O(1), so are outputs and gradients.
const TOLERANCE: f64 = 1e-4;

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_close_above(what, got, want, TOLERANCE, 1.0);
}

type G<R, BT> = burn_cubecl::CubeBackend<R, f32, i32, BT>;

/// Checks the kernels' forward and backward on `problem`, its activations in `a`, against the
/// reference on the same (rounded) values, their inputs built by `input`; outputs and gradients
/// in their inputs' types, the statistics f32.
fn check_with<R, BT>(
    problem: &AttentionProblem,
    a: Activations,
    input: impl Fn(&AttentionProblem) -> RowAttentionInput<G<R, BT>>,
) where
    R: burn_cubecl::CubeRuntime,
    BT: burn_cubecl::BoolElement,
{
    let (gpu, cpu) = (Default::default(), Default::default());
    let problem = &problem.rounded(a);
    let label = format!("{:?} heads {} {a:?}", problem.dims, problem.n_heads);
    let tolerance = a.tolerance(TOLERANCE);
    let assert_close = |what: &str, got: &[f64], want: &[f64]| assert_close_above(what, got, want, tolerance, 1.0);
    let input = |p: &AttentionProblem| {
        let input = input(p);
        RowAttentionInput {
            qkv: input.qkv.cast(a.dtype()),
            ..input
        }
    };
    assert!(supported(&input(problem)), "{label}: the kernels cover it");
    let want = reference_forward(problem.input::<NdArray<f64>>(&cpu));
    let saved = forward(input(problem));
    assert_eq!(
        (saved.out.dtype(), saved.stats.dtype()),
        (a.dtype(), DType::F32),
        "{label}: output types"
    );
    assert_close(&format!("out {label}"), &values(saved.out.clone()), &values(want.out));
    // Plane by plane: the largest scores reach -1e4 where every key is masked, which would set
    // the scale of the inverse sums' tolerance.
    for (plane, name) in ["largest score", "inverse sum"].iter().enumerate() {
        assert_close(
            &format!("{name} {label}"),
            &values(saved.stats.clone().narrow(0, plane, 1)),
            &values(want.stats.clone().narrow(0, plane, 1)),
        );
    }

    let want = reference_backward(problem.input::<NdArray<f64>>(&cpu), problem.dout::<NdArray<f64>>(&cpu));
    let got = backward(input(problem), saved, problem.dout::<G<R, BT>>(&gpu).cast(a.dtype()));
    assert_eq!(got.dtype(), a.dtype(), "{label}: gradient type");
    assert_close(&format!("dqkv {label}"), &values(got), &values(want));
}

/// Checks the kernels on `problem`'s inputs as plain tensors, its activations in `a`.
fn check<R, BT>(problem: &AttentionProblem, a: Activations)
where
    R: burn_cubecl::CubeRuntime,
    BT: burn_cubecl::BoolElement,
{
    check_with::<R, BT>(problem, a, |p| p.input(&Default::default()));
}

/// The gradient of sum(out * dout) for qkv through burn's autodiff of the entry point.
pub(crate) fn autodiff_grad<B: msamamba_kernels::RowAttentionBackend>(
    problem: &AttentionProblem,
    device: &B::Device,
) -> Vec<f64> {
    let input = problem.input::<Autodiff<B>>(device);
    let qkv = input.qkv.require_grad();
    let out = row_attention(RowAttentionInput {
        qkv: qkv.clone(),
        ..input
    });
    let grads = (out * problem.dout::<Autodiff<B>>(device)).sum().backward();
    values(qkv.grad(&grads).expect("gradient"))
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
            fn kernels_match_reference_on_every_mask() {
                let mut rng = rng();
                for (dims, heads) in SHAPES {
                    for mask in MASKS {
                        check::<R, BT>(
                            &AttentionProblem::random(&mut rng, dims, heads, mask),
                            Activations::F32,
                        );
                    }
                }
            }

            #[test]
            fn half_precision_activations_match_reference() {
                let mut rng = rng();
                for a in $halves {
                    for (dims, heads) in SHAPES {
                        check::<R, BT>(&AttentionProblem::random(&mut rng, dims, heads, Mask::Random), a);
                    }
                }
            }

            #[test]
            fn kernels_match_reference_past_the_launch_grid() {
                // 1 x 16 400 positions x 4 heads = 65 600 problems, past the 65 535 cubes of one
                // grid dimension.
                let mut rng = rng();
                check::<R, BT>(
                    &AttentionProblem::random(&mut rng, [1, 3, 16_400, 8], 4, Mask::Random),
                    Activations::F32,
                );
            }

            #[test]
            fn sizes_the_kernels_do_not_cover_fall_back_to_the_reference() {
                type G = burn_cubecl::CubeBackend<R, f32, i32, BT>;
                let mut rng = rng();
                let gpu = Default::default();
                // 1 100 rows need more threads than a cube has; 128-channel heads do not fit in
                // registers.
                for (dims, heads) in [([1, 1100, 1, 4], 1), ([1, 4, 2, 128], 1)] {
                    let problem = AttentionProblem::random(&mut rng, dims, heads, Mask::Random);
                    assert!(
                        !supported(&problem.input::<G>(&gpu)),
                        "{dims:?}: outside the kernels"
                    );
                    // Both sides are f32 tensor ops, summing up to 1 100 terms in different
                    // orders (2e-4 seen on CUDA), against a float64 oracle elsewhere.
                    let got = autodiff_grad::<Gpu>(&problem, &gpu);
                    let want = autodiff_grad::<NdArray>(&problem, &Default::default());
                    assert_close_above(&format!("fallback dqkv {dims:?}"), &got, &want, 1e-3, 1.0);
                }
            }

            #[test]
            fn autodiff_on_gpu_matches_autodiff_on_ndarray() {
                let mut rng = rng();
                let problem = AttentionProblem::random(&mut rng, [2, 90, 4, 128], 4, Mask::Random);
                let got = autodiff_grad::<Gpu>(&problem, &Default::default());
                let want = autodiff_grad::<NdArray>(&problem, &Default::default());
                assert_close("autodiff dqkv", &got, &want);
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
