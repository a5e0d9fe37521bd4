//! The recomputed linear under balanced checkpointing (its output rebuilt in the backward) and the
//! kept one, on 2-, 3- and 4-D inputs, against float64 loops of the projection's gradients; the
//! recomputed one against burn's linear keeping everything; the causal convolution, also
//! recomputed, likewise.

use crate::common::{ConvProblem, assert_close, rng, values};
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::activation::silu;
use burn::tensor::{Tensor, TensorData};
use msamamba_kernels::CausalConvInput;
use msamamba_kernels::RecomputedLinearBackend;
use msamamba_kernels::causal_conv::causal_conv1d;
use msamamba_kernels::recomputed_linear::{linear, recomputed_linear};
use rand::Rng;
use rand::rngs::StdRng;

type F64 = NdArray<f64>;

/// One projection problem: x [rows, k] (rows split as [2, rows / 2] when 3-D), weight [k, n],
/// bias [n].
struct LinearProblem {
    dims: [usize; 3],
    x: Vec<f64>,
    weight: Vec<f64>,
    bias: Vec<f64>,
}

impl LinearProblem {
    fn random(rng: &mut StdRng, [rows, k, n]: [usize; 3]) -> Self {
        let mut uniform = |len: usize| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect::<Vec<f64>>();
        Self {
            dims: [rows, k, n],
            x: uniform(rows * k),
            weight: uniform(k * n),
            bias: uniform(n),
        }
    }
}

/// Gradients of sum(y²) with y = x @ weight (+ bias), from float64 loops: g = 2y, dx = g @ weightᵀ,
/// dweight = xᵀ @ g, dbias = sum of g over rows.
fn loop_grads(p: &LinearProblem, with_bias: bool) -> [Vec<f64>; 3] {
    let [rows, k, n] = p.dims;
    let mut g = vec![0.0; rows * n];
    for r in 0..rows {
        for j in 0..n {
            let mut y = if with_bias { p.bias[j] } else { 0.0 };
            for i in 0..k {
                y += p.x[r * k + i] * p.weight[i * n + j];
            }
            g[r * n + j] = 2.0 * y;
        }
    }
    let (mut dx, mut dw, mut db) = (vec![0.0; rows * k], vec![0.0; k * n], vec![0.0; n]);
    for r in 0..rows {
        for j in 0..n {
            db[j] += g[r * n + j];
            for i in 0..k {
                dx[r * k + i] += g[r * n + j] * p.weight[i * n + j];
                dw[i * n + j] += p.x[r * k + i] * g[r * n + j];
            }
        }
    }
    [dx, dw, db]
}

/// Gradients of sum(y²) through `recomputed_linear` (or the kept `linear`) on Autodiff with
/// strategy `C`; the square's backward needs y, which balanced checkpointing recomputes. x of
/// `rank` 2, 3 ([2, rows / 2, k]) or 4 ([1, 2, rows / 2, k]).
fn node_grads<C: CheckpointStrategy>(
    p: &LinearProblem,
    with_bias: bool,
    rank: usize,
    recomputed: bool,
) -> [Vec<f64>; 3] {
    type B<C> = Autodiff<F64, C>;
    let device = Default::default();
    let [rows, k, n] = p.dims;
    let x = Tensor::<B<C>, 2>::from_data(TensorData::new(p.x.clone(), [rows, k]), &device).require_grad();
    let weight = Tensor::<B<C>, 2>::from_data(TensorData::new(p.weight.clone(), [k, n]), &device).require_grad();
    let bias = Tensor::<B<C>, 1>::from_data(TensorData::new(p.bias.clone(), [n]), &device).require_grad();
    let b = with_bias.then(|| bias.clone());
    let (w, b) = (weight.clone(), b);
    let y = match rank {
        2 => project(x.clone(), w, b, recomputed),
        3 => project(x.clone().reshape([2, rows / 2, k]), w, b, recomputed).reshape([rows, n]),
        _ => project(x.clone().reshape([1, 2, rows / 2, k]), w, b, recomputed).reshape([rows, n]),
    };
    let grads = (y.clone() * y).sum().backward();
    let db = if with_bias {
        values(bias.grad(&grads).expect("bias gradient"))
    } else {
        vec![0.0; n]
    };
    [
        values(x.grad(&grads).expect("x gradient")),
        values(weight.grad(&grads).expect("weight gradient")),
        db,
    ]
}

/// `recomputed_linear` or the kept `linear`.
fn project<B: RecomputedLinearBackend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    recomputed: bool,
) -> Tensor<B, D> {
    if recomputed {
        recomputed_linear(x, weight, bias)
    } else {
        linear(x, weight, bias)
    }
}

#[test]
fn linear_gradients_match_float64_loops() {
    let mut rng = rng();
    // One row and one channel; odd sizes; rows split in two for the 3-D case.
    for dims in [[2, 1, 1], [6, 5, 3], [10, 7, 9], [34, 8, 33]] {
        let p = LinearProblem::random(&mut rng, dims);
        for with_bias in [true, false] {
            let mut want = loop_grads(&p, with_bias);
            if !with_bias {
                want[2] = vec![0.0; dims[2]];
            }
            for (rank, recomputed) in [2, 3, 4].into_iter().flat_map(|rank| [(rank, true), (rank, false)]) {
                let balanced = node_grads::<BalancedCheckpointing>(&p, with_bias, rank, recomputed);
                let kept = node_grads::<NoCheckpointing>(&p, with_bias, rank, recomputed);
                for (strategy, got) in [("balanced", balanced), ("none", kept)] {
                    for (name, (got, want)) in ["dx", "dweight", "dbias"].iter().zip(got.iter().zip(&want)) {
                        let what = format!(
                            "{name} {dims:?} bias={with_bias} rank={rank} recomputed={recomputed} checkpointing={strategy}"
                        );
                        assert_close(&what, got, want, 1e-12);
                    }
                }
            }
        }
    }
}

/// Gradients of sum(conv(x)² · dy) through a recomputed projection feeding the convolution and a
/// recomputed projection after it, on strategy `C`: recomputations that chain.
fn chained_grads<C: CheckpointStrategy>(p: &ConvProblem, weight_in: &[f64], weight_out: &[f64]) -> Vec<Vec<f64>> {
    type B<C> = Autodiff<F64, C>;
    let device = Default::default();
    let channels = p.dims[2];
    let input = p.input::<B<C>>(&device);
    let (x, weight, bias) = (
        input.x.require_grad(),
        input.weight.require_grad(),
        input.bias.require_grad(),
    );
    let square = |v: &[f64]| {
        Tensor::<B<C>, 2>::from_data(TensorData::new(v.to_vec(), [channels, channels]), &device).require_grad()
    };
    let (w_in, w_out) = (square(weight_in), square(weight_out));
    let projected = recomputed_linear(silu(x.clone()), w_in.clone(), None);
    let y = causal_conv1d(CausalConvInput {
        x: projected,
        weight: weight.clone(),
        bias: bias.clone(),
        silu: p.silu,
    });
    let out = recomputed_linear(y, w_out.clone(), None);
    let grads = (out.clone() * out * p.dy::<B<C>>(&device)).sum().backward();
    vec![
        values(x.grad(&grads).expect("x")),
        values(weight.grad(&grads).expect("conv weight")),
        values(bias.grad(&grads).expect("conv bias")),
        values(w_in.grad(&grads).expect("w_in")),
        values(w_out.grad(&grads).expect("w_out")),
    ]
}

#[test]
fn recomputed_convolution_and_projections_give_the_kept_gradients() {
    let mut rng = rng();
    for (dims, silu) in [([1, 1, 1, 4], true), ([2, 9, 5, 4], true), ([3, 7, 6, 3], false)] {
        let p = ConvProblem::random(&mut rng, dims, silu);
        let channels = dims[2];
        let mut square = || {
            (0..channels * channels)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect::<Vec<f64>>()
        };
        let (w_in, w_out) = (square(), square());
        let want = chained_grads::<NoCheckpointing>(&p, &w_in, &w_out);
        let got = chained_grads::<BalancedCheckpointing>(&p, &w_in, &w_out);
        for (name, (g, w)) in ["dx", "dweight", "dbias", "dw_in", "dw_out"]
            .iter()
            .zip(got.iter().zip(&want))
        {
            assert_close(&format!("{name} {dims:?} silu={silu}"), g, w, 1e-12);
        }
    }
}
