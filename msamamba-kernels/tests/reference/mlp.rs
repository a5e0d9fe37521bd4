//! The MLP's tensor-op reference against a float64 loop, its hand-written backward (hidden layer
//! recomputed) against burn's autodiff of its forward, and the MLP inside autodiff as one node,
//! with and without checkpointing.

use crate::common::{assert_close, rng, values};
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy, NoCheckpointing};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use msamamba_kernels::MlpInput;
use msamamba_kernels::mlp::{mlp, reference_backward, reference_forward};
use rand::Rng;
use rand::rngs::StdRng;

type F64 = NdArray<f64>;

/// One MLP problem as float64 buffers: x and dy [r, l, d], up [d, h] + [h], down [h, d] + [d].
struct MlpProblem {
    dims: [usize; 4],
    x: Vec<f64>,
    up_weight: Vec<f64>,
    up_bias: Vec<f64>,
    down_weight: Vec<f64>,
    down_bias: Vec<f64>,
    dy: Vec<f64>,
}

impl MlpProblem {
    fn random(rng: &mut StdRng, dims: [usize; 4]) -> Self {
        let [r, l, d, h] = dims;
        let mut uniform = |len: usize| (0..len).map(|_| rng.random_range(-1.5..1.5)).collect::<Vec<f64>>();
        Self {
            dims,
            x: uniform(r * l * d),
            up_weight: uniform(d * h),
            up_bias: uniform(h),
            down_weight: uniform(h * d),
            down_bias: uniform(d),
            dy: uniform(r * l * d),
        }
    }

    fn input<B: Backend>(&self, device: &B::Device) -> MlpInput<B> {
        let [r, l, d, h] = self.dims;
        MlpInput {
            x: Tensor::from_data(TensorData::new(self.x.clone(), [r, l, d]), device),
            up_weight: Tensor::from_data(TensorData::new(self.up_weight.clone(), [d, h]), device),
            up_bias: Tensor::from_data(TensorData::new(self.up_bias.clone(), [h]), device),
            down_weight: Tensor::from_data(TensorData::new(self.down_weight.clone(), [h, d]), device),
            down_bias: Tensor::from_data(TensorData::new(self.down_bias.clone(), [d]), device),
        }
    }

    fn dy<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3> {
        let [r, l, d, _] = self.dims;
        Tensor::from_data(TensorData::new(self.dy.clone(), [r, l, d]), device)
    }
}

/// (rows, positions, width, hidden): one of each, odd sizes, a hidden layer narrower than d.
const SHAPES: [[usize; 4]; 4] = [[1, 1, 1, 1], [2, 5, 3, 7], [3, 4, 6, 24], [1, 3, 5, 2]];

/// The MLP in float64 loops, straight from its definition.
fn loop_forward(p: &MlpProblem) -> Vec<f64> {
    let [r, l, d, h] = p.dims;
    let mut out = vec![0.0; r * l * d];
    for t in 0..r * l {
        let hidden: Vec<f64> = (0..h)
            .map(|j| {
                let pre = p.up_bias[j] + (0..d).map(|i| p.x[t * d + i] * p.up_weight[i * h + j]).sum::<f64>();
                pre / (1.0 + (-pre).exp())
            })
            .collect();
        for i in 0..d {
            out[t * d + i] = p.down_bias[i] + (0..h).map(|j| hidden[j] * p.down_weight[j * d + i]).sum::<f64>();
        }
    }
    out
}

#[test]
fn forward_matches_float64_loop() {
    let mut rng = rng();
    let device = Default::default();
    for dims in SHAPES {
        let p = MlpProblem::random(&mut rng, dims);
        let got = values(reference_forward(p.input::<F64>(&device)));
        assert_close(&format!("y {dims:?}"), &got, &loop_forward(&p), 1e-12);
    }
}

/// Gradients of sum(y * dy) of every input through `run` on Autodiff with strategy `C`.
fn autodiff_grads<C: CheckpointStrategy>(
    p: &MlpProblem,
    run: impl Fn(MlpInput<Autodiff<F64, C>>) -> Tensor<Autodiff<F64, C>, 3>,
) -> [Vec<f64>; 5] {
    let device = Default::default();
    let input = p.input::<Autodiff<F64, C>>(&device);
    let leaves = (
        input.x.require_grad(),
        input.up_weight.require_grad(),
        input.up_bias.require_grad(),
        input.down_weight.require_grad(),
        input.down_bias.require_grad(),
    );
    let y = run(MlpInput {
        x: leaves.0.clone(),
        up_weight: leaves.1.clone(),
        up_bias: leaves.2.clone(),
        down_weight: leaves.3.clone(),
        down_bias: leaves.4.clone(),
    });
    // y² makes the consumer's backward need y itself, as the residual norm's does.
    let grads = (y.clone() * y * p.dy::<Autodiff<F64, C>>(&device)).sum().backward();
    let g = |t: &Tensor<Autodiff<F64, C>, 1>| values(t.grad(&grads).expect("gradient"));
    [
        values(leaves.0.grad(&grads).expect("dx")),
        values(leaves.1.grad(&grads).expect("dup_weight")),
        g(&leaves.2),
        values(leaves.3.grad(&grads).expect("ddown_weight")),
        g(&leaves.4),
    ]
}

const NAMES: [&str; 5] = ["dx", "dup_weight", "dup_bias", "ddown_weight", "ddown_bias"];

#[test]
fn backward_matches_autodiff_of_the_forward() {
    let mut rng = rng();
    let device = Default::default();
    for dims in SHAPES {
        let p = MlpProblem::random(&mut rng, dims);
        // The hand-written backward against burn's autodiff of sum(y * dy).
        let input = p.input::<Autodiff<F64>>(&device);
        let x = input.x.clone().require_grad();
        let leaves = [input.up_weight.require_grad(), input.down_weight.require_grad()];
        let (up_bias, down_bias) = (input.up_bias.require_grad(), input.down_bias.require_grad());
        let y = reference_forward(MlpInput {
            x: x.clone(),
            up_weight: leaves[0].clone(),
            up_bias: up_bias.clone(),
            down_weight: leaves[1].clone(),
            down_bias: down_bias.clone(),
        });
        let grads = (y * p.dy::<Autodiff<F64>>(&device)).sum().backward();
        let want = [
            values(x.grad(&grads).expect("dx")),
            values(leaves[0].grad(&grads).expect("dup_weight")),
            values(up_bias.grad(&grads).expect("dup_bias")),
            values(leaves[1].grad(&grads).expect("ddown_weight")),
            values(down_bias.grad(&grads).expect("ddown_bias")),
        ];
        let got = reference_backward(p.input::<F64>(&device), p.dy::<F64>(&device));
        let got = [
            values(got.x),
            values(got.up_weight),
            values(got.up_bias),
            values(got.down_weight),
            values(got.down_bias),
        ];
        for ((name, g), w) in NAMES.iter().zip(&got).zip(&want) {
            assert_close(&format!("{name} {dims:?}"), g, w, 1e-10);
        }
        // The entry point inside autodiff: one node, whose backward is the reference's, with and
        // without checkpointing.
        let want = autodiff_grads::<NoCheckpointing>(&p, reference_forward);
        let kept = autodiff_grads::<NoCheckpointing>(&p, mlp);
        let balanced = autodiff_grads::<BalancedCheckpointing>(&p, mlp);
        for (name, ((k, b), w)) in NAMES.iter().zip(kept.iter().zip(&balanced).zip(&want)) {
            assert_close(&format!("node {name} {dims:?}"), k, w, 1e-10);
            assert_close(&format!("node, balanced, {name} {dims:?}"), b, w, 1e-10);
        }
    }
}
