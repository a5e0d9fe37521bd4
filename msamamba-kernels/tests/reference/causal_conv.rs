//! The causal convolution's tensor-op reference (what the kernels are checked against, and the
//! CPU's backward) and the CPU's forward loop against a float64 loop written here, and the
//! reference's hand-written backward against burn's autodiff of its forward; the convolution
//! inside autodiff as one node.

use crate::common::{ConvProblem, assert_close, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::Tensor;
use msamamba_kernels::causal_conv::{causal_conv1d, reference_backward, reference_forward};
use msamamba_kernels::{CausalConvBackend, CausalConvInput};

type F64 = NdArray<f64>;

/// (rows, positions, channels, taps): one of each, fewer positions than taps, one tap, mamba's
/// four, eight.
const SHAPES: [[usize; 4]; 6] = [
    [1, 1, 1, 4],
    [2, 3, 5, 4],
    [3, 17, 7, 4],
    [1, 9, 2, 1],
    [2, 12, 3, 8],
    [1, 6, 4, 2],
];

fn problems() -> Vec<ConvProblem> {
    let mut rng = rng();
    SHAPES
        .iter()
        .flat_map(|&dims| [false, true].map(|silu| (dims, silu)))
        .map(|(dims, silu)| ConvProblem::random(&mut rng, dims, silu))
        .collect()
}

/// The convolution in float64 loops, straight from its definition.
fn loop_forward(p: &ConvProblem) -> Vec<f64> {
    let [rows, len, channels, taps] = p.dims;
    let mut out = vec![0.0; rows * len * channels];
    for r in 0..rows {
        for l in 0..len {
            for e in 0..channels {
                let mut acc = p.bias[e];
                for k in 0..taps {
                    // Tap k reads position l - (taps - 1) + k; none before the first.
                    if let Some(pos) = (l + k).checked_sub(taps - 1) {
                        acc += p.weight[e * taps + k] * p.x[(r * len + pos) * channels + e];
                    }
                }
                out[(r * len + l) * channels + e] = if p.silu { acc / (1.0 + (-acc).exp()) } else { acc };
            }
        }
    }
    out
}

#[test]
fn forward_matches_float64_loop() {
    let device = Default::default();
    for p in problems() {
        let got = values(reference_forward(p.input::<F64>(&device)));
        assert_close(
            &format!("y {:?} silu={}", p.dims, p.silu),
            &got,
            &loop_forward(&p),
            1e-12,
        );
    }
}

#[test]
fn cpu_forward_matches_float64_loop() {
    let device = Default::default();
    for p in problems() {
        let want = loop_forward(&p);
        let label = format!("{:?} silu={}", p.dims, p.silu);
        let exact = values(F64::causal_conv(p.input::<F64>(&device)));
        assert_close(&format!("y, float64 {label}"), &exact, &want, 1e-12);
        // As the model hands it over: a channels-last slice of a wider projection.
        let mut input = p.input::<NdArray<f32>>(&device);
        let channels = p.dims[2];
        input.x = Tensor::cat(vec![input.x.clone(), input.x], 2).narrow(2, channels, channels);
        let single = values(NdArray::<f32>::causal_conv(input));
        assert_close(&format!("y, float32 {label}"), &single, &want, 1e-5);
    }
}

/// Gradients of sum(y * dy) for x, weight and bias through burn's autodiff of `conv`.
fn autodiff_grads(
    p: &ConvProblem,
    conv: impl Fn(CausalConvInput<Autodiff<F64>>) -> Tensor<Autodiff<F64>, 3>,
) -> [Vec<f64>; 3] {
    let device = Default::default();
    let input = p.input::<Autodiff<F64>>(&device);
    let (x, weight, bias) = (
        input.x.require_grad(),
        input.weight.require_grad(),
        input.bias.require_grad(),
    );
    let y = conv(CausalConvInput {
        x: x.clone(),
        weight: weight.clone(),
        bias: bias.clone(),
        silu: p.silu,
    });
    let grads = (y * p.dy::<Autodiff<F64>>(&device)).sum().backward();
    [
        values(x.grad(&grads).expect("gradient")),
        values(weight.grad(&grads).expect("gradient")),
        values(bias.grad(&grads).expect("gradient")),
    ]
}

#[test]
fn backward_matches_autodiff_of_the_forward() {
    let device = Default::default();
    for p in problems() {
        let want = autodiff_grads(&p, reference_forward);
        let got = reference_backward(p.input::<F64>(&device), p.dy::<F64>(&device));
        let got = [values(got.x), values(got.weight), values(got.bias)];
        for ((name, g), w) in ["dx", "dweight", "dbias"].iter().zip(&got).zip(&want) {
            assert_close(&format!("{name} {:?} silu={}", p.dims, p.silu), g, w, 1e-10);
        }
        // The entry point inside autodiff: one node, whose backward is the reference's.
        let node = autodiff_grads(&p, causal_conv1d);
        for ((name, g), w) in ["dx", "dweight", "dbias"].iter().zip(&node).zip(&want) {
            assert_close(&format!("node {name} {:?} silu={}", p.dims, p.silu), g, w, 1e-10);
        }
    }
}
