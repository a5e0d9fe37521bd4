//! The residual RMSNorm's tensor-op reference (what the CPU runs and what the kernels are checked
//! against) against a float64 loop written here and against burn's `RmsNorm` of the sum, its
//! hand-written backward against burn's autodiff of both; the norm inside autodiff as one node.

use crate::common::{NormProblem, assert_close, assert_close_above, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::nn::RmsNormConfig;
use burn::tensor::Tensor;
use msamamba_kernels::ResidualNormInput;
use msamamba_kernels::residual_norm::{reference_backward, reference_forward, residual_rms_norm};

type F64 = NdArray<f64>;

/// (rows, width): one row, one channel, widths off the warp size, the paper's width.
const SHAPES: [[usize; 2]; 6] = [[1, 1], [3, 5], [7, 128], [20, 33], [2, 1], [1, 40]];

fn problems() -> Vec<NormProblem> {
    let mut rng = rng();
    SHAPES.iter().map(|&dims| NormProblem::random(&mut rng, dims)).collect()
}

/// The norm in float64 loops, straight from its definition.
fn loop_forward(p: &NormProblem) -> Vec<f64> {
    let [rows, width] = p.dims;
    let mut out = vec![0.0; rows * width];
    for r in 0..rows {
        let s: Vec<f64> = (0..width)
            .map(|c| p.x[r * width + c] + p.residual[r * width + c])
            .collect();
        let rms = (s.iter().map(|v| v * v).sum::<f64>() / width as f64 + p.epsilon).sqrt();
        for c in 0..width {
            out[r * width + c] = s[c] / rms * p.gamma[c];
        }
    }
    out
}

/// The largest term of the input gradient, |dout · gamma| / rms, over rows and channels.
fn gradient_term_scale(p: &NormProblem) -> f64 {
    let [rows, width] = p.dims;
    (0..rows)
        .flat_map(|r| {
            let s = |c: usize| p.x[r * width + c] + p.residual[r * width + c];
            let rms = ((0..width).map(|c| s(c) * s(c)).sum::<f64>() / width as f64 + p.epsilon).sqrt();
            (0..width).map(move |c| (p.dout[r * width + c] * p.gamma[c]).abs() / rms)
        })
        .fold(0.0, f64::max)
}

#[test]
fn forward_matches_float64_loop() {
    let device = Default::default();
    for p in problems() {
        let got = values(reference_forward(p.input::<F64>(&device)));
        assert_close(&format!("out {:?}", p.dims), &got, &loop_forward(&p), 1e-12);
    }
}

/// Gradients of sum(out * dout) for x, residual and gamma through burn's autodiff of `norm`.
fn autodiff_grads(
    p: &NormProblem,
    norm: impl Fn(ResidualNormInput<Autodiff<F64>>) -> Tensor<Autodiff<F64>, 2>,
) -> [Vec<f64>; 3] {
    let device = Default::default();
    let input = p.input::<Autodiff<F64>>(&device);
    let (x, residual, gamma) = (
        input.x.require_grad(),
        input.residual.require_grad(),
        input.gamma.require_grad(),
    );
    let out = norm(ResidualNormInput {
        x: x.clone(),
        residual: residual.clone(),
        gamma: gamma.clone(),
        epsilon: p.epsilon,
    });
    let grads = (out * p.dout::<Autodiff<F64>>(&device)).sum().backward();
    [
        values(x.grad(&grads).expect("gradient")),
        values(residual.grad(&grads).expect("gradient")),
        values(gamma.grad(&grads).expect("gradient")),
    ]
}

/// The hand-written backward's gradients, x's and the residual's being the sum's.
fn reference_grads(p: &NormProblem) -> [Vec<f64>; 3] {
    let device = Default::default();
    let g = reference_backward(p.input::<F64>(&device), p.dout::<F64>(&device));
    let sum = values(g.sum);
    [sum.clone(), sum, values(g.gamma)]
}

#[test]
fn backward_matches_autodiff_of_the_forward() {
    for p in problems() {
        let want = autodiff_grads(&p, reference_forward);
        for ((name, g), w) in ["dx", "dresidual", "dgamma"].iter().zip(reference_grads(&p)).zip(&want) {
            // At width 1 the sum's gradient is g · eps / (s² + eps) / rms: 1 - ŝ² cancels to ~1e-5
            // of its terms, so the error is measured against the terms' scale (>= 1e-3), not ~0.
            assert_close_above(&format!("{name} {:?}", p.dims), &g, w, 1e-10, 1e-3);
        }
    }
}

/// burn's `RmsNorm` computes the root mean square in f32 whatever the element type: compared
/// relative to the largest value or 1 (inputs are O(1)), as the f32 kernels are.
const BURN_F32_TOLERANCE: f64 = 1e-6;

#[test]
fn matches_burns_rms_norm_of_the_sum() {
    let device = Default::default();
    for p in problems() {
        let burn_norm = |input: ResidualNormInput<Autodiff<F64>>| {
            let mut norm = RmsNormConfig::new(p.dims[1]).with_epsilon(input.epsilon).init(&device);
            norm.gamma = norm.gamma.map(|_| input.gamma);
            norm.forward(input.x + input.residual)
        };
        let want = values(burn_norm(p.input::<Autodiff<F64>>(&device)));
        let got = values(residual_rms_norm(p.input::<Autodiff<F64>>(&device)));
        assert_close_above(&format!("out {:?}", p.dims), &got, &want, BURN_F32_TOLERANCE, 1.0);
        let want = autodiff_grads(&p, burn_norm);
        let got = autodiff_grads(&p, residual_rms_norm);
        // burn's f32 rounding is relative to the gradient's terms, which grow as 1 / rms: a row
        // whose sum is near 0 has terms far above 1 that cancel (at width 1, to ~0).
        let floor = gradient_term_scale(&p).max(1.0);
        for ((name, g), w) in ["dx", "dresidual", "dgamma"].iter().zip(&got).zip(&want) {
            assert_close_above(
                &format!("autodiff {name} {:?}", p.dims),
                g,
                w,
                BURN_F32_TOLERANCE,
                floor,
            );
        }
    }
}
