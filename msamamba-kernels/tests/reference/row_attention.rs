//! The row attention's tensor-op reference (what the kernels are checked against, and the CPU's
//! backward) and the CPU's forward loop against a float64 loop written here, and the reference's
//! hand-written backward against burn's autodiff of its forward; the attention inside autodiff as
//! one node.

use crate::common::{AttentionProblem, Mask, assert_close, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::Tensor;
use msamamba_kernels::row_attention::{MASKED_SCORE, reference_backward, reference_forward, row_attention};
use msamamba_kernels::{RowAttentionBackend, RowAttentionInput};

type F64 = NdArray<f64>;

/// (b, m, l, d, heads): one row, one position, one head, rows and widths that are multiples of
/// nothing, heads of one channel.
const SHAPES: [([usize; 4], usize); 6] = [
    ([2, 5, 3, 8], 2),
    ([1, 1, 4, 4], 1),
    ([3, 7, 1, 12], 3),
    ([1, 33, 2, 16], 4),
    ([2, 9, 5, 3], 3),
    ([1, 90, 2, 32], 1),
];

const MASKS: [Mask; 4] = [Mask::None, Mask::Random, Mask::AllButFirst, Mask::All];

/// The attention in float64 loops, straight from its definition: the output [b, m, l, d] and the
/// softmax statistics [2, b, l, heads, m] (largest score, 1 / the sum of exp(score - largest)).
fn loop_forward(p: &AttentionProblem) -> (Vec<f64>, Vec<f64>) {
    let [b, m, l, d] = p.dims;
    let head = d / p.n_heads;
    let at = |bi: usize, row: usize, pos: usize, c: usize| ((bi * m + row) * l + pos) * d + c;
    let mut out = vec![0.0; b * m * l * d];
    let queries = b * l * p.n_heads * m;
    let mut stats = vec![0.0; 2 * queries];
    for bi in 0..b {
        for pos in 0..l {
            for h in 0..p.n_heads {
                let channels = h * head..(h + 1) * head;
                for i in 0..m {
                    let scores: Vec<f64> = (0..m)
                        .map(|j| {
                            if p.keep[bi * m + j] > 0.5 {
                                let dot: f64 = channels
                                    .clone()
                                    .map(|c| p.q[at(bi, i, pos, c)] * p.k[at(bi, j, pos, c)])
                                    .sum();
                                dot / (head as f64).sqrt()
                            } else {
                                MASKED_SCORE as f64
                            }
                        })
                        .collect();
                    let top = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for c in channels.clone() {
                        out[at(bi, i, pos, c)] =
                            (0..m).map(|j| weights[j] / total * p.v[at(bi, j, pos, c)]).sum::<f64>();
                    }
                    let query = ((bi * l + pos) * p.n_heads + h) * m + i;
                    stats[query] = top;
                    stats[queries + query] = 1.0 / total;
                }
            }
        }
    }
    (out, stats)
}

fn problems() -> Vec<AttentionProblem> {
    let mut rng = rng();
    SHAPES
        .iter()
        .flat_map(|&(dims, heads)| MASKS.map(|mask| (dims, heads, mask)))
        .map(|(dims, heads, mask)| AttentionProblem::random(&mut rng, dims, heads, mask))
        .collect()
}

#[test]
fn forward_matches_float64_loop() {
    let device = Default::default();
    for p in problems() {
        let got = reference_forward(p.input::<F64>(&device));
        let (out, stats) = loop_forward(&p);
        let label = format!("{:?} heads {}", p.dims, p.n_heads);
        assert_close(&format!("out {label}"), &values(got.out), &out, 1e-12);
        assert_close(&format!("stats {label}"), &values(got.stats), &stats, 1e-12);
    }
}

#[test]
fn cpu_forward_matches_float64_loop() {
    let device = Default::default();
    for p in problems() {
        let (out, stats) = loop_forward(&p);
        let label = format!("{:?} heads {}", p.dims, p.n_heads);
        let exact = F64::row_attention(p.input::<F64>(&device));
        assert_close(&format!("out, float64 {label}"), &values(exact.out), &out, 1e-12);
        assert_close(&format!("stats, float64 {label}"), &values(exact.stats), &stats, 1e-12);
        let single = NdArray::<f32>::row_attention(p.input::<NdArray<f32>>(&device));
        assert_close(&format!("out, float32 {label}"), &values(single.out), &out, 1e-5);
        assert_close(&format!("stats, float32 {label}"), &values(single.stats), &stats, 1e-5);
    }
}

/// The gradient of sum(out * dout) for qkv through burn's autodiff of `forward`.
fn autodiff_grad(
    p: &AttentionProblem,
    forward: fn(RowAttentionInput<Autodiff<F64>>) -> Tensor<Autodiff<F64>, 4>,
) -> Vec<f64> {
    let device = Default::default();
    let input = p.input::<Autodiff<F64>>(&device);
    let qkv = input.qkv.require_grad();
    let out = forward(RowAttentionInput {
        qkv: qkv.clone(),
        ..input
    });
    let grads = (out * p.dout::<Autodiff<F64>>(&device)).sum().backward();
    values(qkv.grad(&grads).expect("gradient"))
}

#[test]
fn backward_matches_autodiff_of_the_forward() {
    let device = Default::default();
    for p in problems() {
        let want = autodiff_grad(&p, |input| reference_forward(input).out);
        let got = reference_backward(p.input::<F64>(&device), p.dout::<F64>(&device));
        assert_close(
            &format!("dqkv {:?} heads {}", p.dims, p.n_heads),
            &values(got),
            &want,
            1e-10,
        );
    }
}

#[test]
fn autodiff_node_runs_the_backend_backward() {
    for p in problems() {
        let want = autodiff_grad(&p, |input| reference_forward(input).out);
        let got = autodiff_grad(&p, row_attention);
        assert_close(
            &format!("node dqkv {:?} heads {}", p.dims, p.n_heads),
            &got,
            &want,
            1e-10,
        );
    }
}

#[test]
fn masked_keys_take_no_weight_and_get_no_key_gradient() {
    let device = Default::default();
    let mut rng = rng();
    let p = AttentionProblem::random(&mut rng, [2, 6, 3, 8], 2, Mask::Random);
    let mut changed = p.clone();
    let [b, m, l, d] = p.dims;
    for bi in 0..b {
        for row in (0..m).filter(|row| p.keep[bi * m + row] < 0.5) {
            for i in 0..l * d {
                let at = (bi * m + row) * l * d + i;
                changed.k[at] += 5.0;
                changed.v[at] -= 3.0;
            }
        }
    }
    let out = values(reference_forward(p.input::<F64>(&device)).out);
    let out_changed = values(reference_forward(changed.input::<F64>(&device)).out);
    assert_close("masked keys change nothing", &out_changed, &out, 1e-12);
    let dk = values(reference_backward(p.input::<F64>(&device), p.dout::<F64>(&device)).narrow(3, d, d));
    for bi in 0..b {
        for row in (0..m).filter(|row| p.keep[bi * m + row] < 0.5) {
            let at = (bi * m + row) * l * d;
            assert!(dk[at..at + l * d].iter().all(|g| *g == 0.0), "dk of a masked row");
        }
    }
}
