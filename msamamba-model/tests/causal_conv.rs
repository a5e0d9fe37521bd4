//! The causal depthwise convolution against a float64 loop, forward and every gradient.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::prelude::*;
use common::rng;
use msamamba_model::causal_conv::CausalConvConfig;
use rand::Rng;
use rand::rngs::StdRng;

type Exact = Autodiff<NdArray<f64>>;

fn random(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn to_vec<const D: usize>(t: Tensor<NdArray<f64>, D>) -> Vec<f64> {
    t.into_data().to_vec().expect("f64 data")
}

/// y, dx, dweight, dbias of sum(y * g) for x, g: [R, L, E], weight [E, K], bias [E], by loops.
fn reference(
    [rows, len, channels, k]: [usize; 4],
    x: &[f64],
    weight: &[f64],
    bias: &[f64],
    g: &[f64],
) -> [Vec<f64>; 4] {
    let at = |r: usize, l: usize, e: usize| (r * len + l) * channels + e;
    let mut y = vec![0.0; x.len()];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; weight.len()];
    let mut db = vec![0.0; bias.len()];
    for r in 0..rows {
        for l in 0..len {
            for e in 0..channels {
                y[at(r, l, e)] = bias[e];
                db[e] += g[at(r, l, e)];
                for tap in 0..k {
                    // Tap `tap` reads position l - (K - 1) + tap; before the start it reads zero.
                    let Some(src) = (l + tap).checked_sub(k - 1) else {
                        continue;
                    };
                    y[at(r, l, e)] += weight[e * k + tap] * x[at(r, src, e)];
                    dx[at(r, src, e)] += weight[e * k + tap] * g[at(r, l, e)];
                    dw[e * k + tap] += x[at(r, src, e)] * g[at(r, l, e)];
                }
            }
        }
    }
    [y, dx, dw, db]
}

fn assert_close(name: &str, shape: [usize; 4], got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 + 1e-10 * w.abs(),
            "{name} at {i} for [R, L, E, K] = {shape:?}: {g} vs {w}"
        );
    }
}

#[test]
fn causal_conv_matches_a_float64_loop_forward_and_backward() {
    let mut rng = rng();
    let device = Default::default();
    // Odd sizes: one row, one position, a kernel longer than the sequence, a width-1 kernel.
    let shapes = [
        [1, 1, 1, 4],
        [3, 7, 5, 4],
        [2, 2, 3, 4],
        [2, 9, 6, 1],
        [4, 13, 11, 3],
        [1, 5, 2, 6],
    ];
    for shape @ [rows, len, channels, k] in shapes {
        let x = random(&mut rng, rows * len * channels);
        let g = random(&mut rng, rows * len * channels);
        let mut conv = CausalConvConfig::new(channels)
            .with_kernel_size(k)
            .init::<Exact>(&device);
        let weight = random(&mut rng, channels * k);
        let bias = random(&mut rng, channels);
        conv.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(weight.clone(), [channels, k]),
            &device,
        ));
        conv.bias = Param::from_tensor(Tensor::from_data(TensorData::new(bias.clone(), [channels]), &device));
        let xt =
            Tensor::<Exact, 3>::from_data(TensorData::new(x.clone(), [rows, len, channels]), &device).require_grad();
        let gt = Tensor::<Exact, 3>::from_data(TensorData::new(g.clone(), [rows, len, channels]), &device);
        let y = conv.forward(xt.clone());
        let grads = (y.clone() * gt).sum().backward();
        let [y_ref, dx_ref, dw_ref, db_ref] = reference(shape, &x, &weight, &bias, &g);
        assert_close("y", shape, &to_vec(y.inner()), &y_ref);
        assert_close("dx", shape, &to_vec(xt.grad(&grads).expect("dx")), &dx_ref);
        assert_close(
            "dweight",
            shape,
            &to_vec(conv.weight.val().grad(&grads).expect("dw")),
            &dw_ref,
        );
        assert_close(
            "dbias",
            shape,
            &to_vec(conv.bias.val().grad(&grads).expect("db")),
            &db_ref,
        );
    }
}

#[test]
fn causal_conv_output_never_depends_on_later_positions() {
    let mut rng = rng();
    let device = Default::default();
    let conv = CausalConvConfig::new(3).init::<NdArray<f64>>(&device);
    let x = random(&mut rng, 2 * 10 * 3);
    let y = to_vec(conv.forward(Tensor::from_data(TensorData::new(x.clone(), [2, 10, 3]), &device)));
    let mut changed = x.clone();
    for (i, v) in changed.iter_mut().enumerate() {
        if (i / 3) % 10 > 6 {
            *v += 1.0;
        }
    }
    let after = to_vec(conv.forward(Tensor::from_data(TensorData::new(changed, [2, 10, 3]), &device)));
    for (i, (a, b)) in y.iter().zip(&after).enumerate() {
        let position = (i / 3) % 10;
        if position <= 6 {
            assert_eq!(a, b, "position {position} moved");
        }
    }
    assert_ne!(y, after, "the change must reach the later positions");
}
