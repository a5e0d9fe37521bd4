//! The row attention (fused operation on the model's layout) against burn's `MultiHeadAttention`
//! with the same weights, as the model computed it before: outputs and every gradient, with
//! masked rows, on CPU in float64.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::attention::MhaInput;
use burn::prelude::*;
use common::rng;
use msamamba_model::row_attention::{RowAttention, RowAttentionConfig};
use rand::Rng;

type B = Autodiff<NdArray<f64>>;

/// burn's attention over [B·L, M, D] batches with the rows masked as padding.
fn burn_attention(module: &RowAttention<B>, x: Tensor<B, 4>, keep: Tensor<B, 2, Bool>) -> Tensor<B, 4> {
    let [batch, m, len, dim] = x.dims();
    let x = module.with_positions(x).swap_dims(1, 2).reshape([batch * len, m, dim]);
    let pad = keep
        .bool_not()
        .unsqueeze_dim::<3>(1)
        .expand([batch, len, m])
        .reshape([batch * len, m]);
    let context = module.attention.forward(MhaInput::self_attn(x).mask_pad(pad)).context;
    context.reshape([batch, len, m, dim]).swap_dims(1, 2)
}

/// Every parameter's gradient, in visiting order.
struct Grads<'a> {
    grads: &'a <B as burn::tensor::backend::AutodiffBackend>::Gradients,
    out: Vec<Vec<f64>>,
}

impl ModuleVisitor<B> for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = param.val().grad(self.grads).expect("every parameter has a gradient");
        self.out.push(grad.into_data().convert::<f64>().to_vec().unwrap());
    }
}

/// Relative to the largest wanted value, or to 1e-3 where all are smaller: the key bias's
/// gradient is zero in exact arithmetic (a shift of every key moves no softmax), ~1e-16 here.
fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    let err = got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((g - w).abs())) / scale;
    assert!(err < 1e-10, "{what}: relative error {err:e}");
}

#[test]
fn matches_burn_multi_head_attention_with_the_same_weights() {
    let mut rng = rng();
    let device = Default::default();
    // (b, m, l, d, heads); with masks that drop random rows, all but the target, or none.
    for ([batch, m, len, dim], heads) in [([2, 5, 3, 8], 2), ([1, 1, 2, 4], 1), ([3, 9, 1, 12], 3)] {
        let module = RowAttentionConfig::new()
            .with_d_model(dim)
            .with_n_heads(heads)
            .with_max_rows(16)
            .init::<B>(&device);
        for mask in 0..3 {
            let keep: Vec<bool> = (0..batch * m)
                .map(|i| i % m == 0 || (mask == 0 && rng.random_bool(0.5)) || mask == 2)
                .collect();
            let x: Vec<f64> = (0..batch * m * len * dim)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let dout: Vec<f64> = (0..batch * m * len * dim)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let dout = Tensor::<B, 4>::from_data(TensorData::new(dout, [batch, m, len, dim]), &device);
            let run = |burn: bool| {
                let x =
                    Tensor::<B, 4>::from_data(TensorData::new(x.clone(), [batch, m, len, dim]), &device).require_grad();
                let keep = Tensor::<B, 2, Bool>::from_data(TensorData::new(keep.clone(), [batch, m]), &device);
                let out = if burn {
                    burn_attention(&module, x.clone(), keep)
                } else {
                    module.forward(x.clone(), keep)
                };
                let grads = (out.clone() * dout.clone()).sum().backward();
                let mut visitor = Grads {
                    grads: &grads,
                    out: vec![],
                };
                module.visit(&mut visitor);
                let dx = x
                    .grad(&grads)
                    .unwrap()
                    .into_data()
                    .convert::<f64>()
                    .to_vec::<f64>()
                    .unwrap();
                let out = out.into_data().convert::<f64>().to_vec::<f64>().unwrap();
                (out, dx, visitor.out)
            };
            let (got, want) = (run(false), run(true));
            let label = format!("[{batch}, {m}, {len}, {dim}] heads {heads} mask {mask}");
            close(&format!("out {label}"), &got.0, &want.0);
            close(&format!("dx {label}"), &got.1, &want.1);
            assert_eq!(got.2.len(), want.2.len());
            for (i, (g, w)) in got.2.iter().zip(&want.2).enumerate() {
                close(&format!("parameter {i} {label}"), g, w);
            }
        }
    }
}
