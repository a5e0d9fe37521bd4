//! The token embedding against burn's `Embedding` lookup (float64), forward and table gradient.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::nn::EmbeddingConfig;
use burn::prelude::*;
use common::rng;
use msamamba_model::token_embedding::TokenEmbeddingConfig;
use msamamba_model::tokens::VOCAB_SIZE;
use rand::Rng;

type Exact = Autodiff<NdArray<f64>>;

fn to_vec<const D: usize>(t: Tensor<NdArray<f64>, D>) -> Vec<f64> {
    t.into_data().to_vec().expect("f64 data")
}

#[test]
fn token_embedding_matches_a_table_lookup_forward_and_backward() {
    let mut rng = rng();
    let device = Default::default();
    // Fewer tokens than one chunk, whole chunks (no padding), and several chunks with a partial
    // last one.
    for [batch, n, dim] in [[1, 1, 1], [2, 37, 5], [3, 200, 16], [2, 1024, 4], [2, 1100, 3]] {
        let table: Vec<f64> = (0..VOCAB_SIZE * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let tokens: Vec<i64> = (0..batch * n).map(|_| rng.random_range(0..VOCAB_SIZE as i64)).collect();
        let upstream: Vec<f64> = (0..batch * n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let weight = || {
            Param::from_tensor(Tensor::<Exact, 2>::from_data(
                TensorData::new(table.clone(), [VOCAB_SIZE, dim]),
                &device,
            ))
        };
        let ids = Tensor::<Exact, 2, Int>::from_data(TensorData::new(tokens.clone(), [batch, n]), &device);
        let g = Tensor::<Exact, 3>::from_data(TensorData::new(upstream.clone(), [batch, n, dim]), &device);

        let mut ours = TokenEmbeddingConfig::new(VOCAB_SIZE, dim).init::<Exact>(&device);
        ours.weight = weight();
        let mut lookup = EmbeddingConfig::new(VOCAB_SIZE, dim).init::<Exact>(&device);
        lookup.weight = weight();

        let y = ours.forward(ids.clone());
        let y_ref = lookup.forward(ids);
        let grads = (y.clone() * g.clone()).sum().backward();
        let grads_ref = (y_ref.clone() * g).sum().backward();
        assert_eq!(to_vec(y.inner()), to_vec(y_ref.inner()), "lookup [{batch}, {n}, {dim}]");
        let dw = to_vec(ours.weight.val().grad(&grads).expect("table gradient"));
        let dw_ref = to_vec(lookup.weight.val().grad(&grads_ref).expect("table gradient"));
        for (i, (a, b)) in dw.iter().zip(&dw_ref).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                "dweight[{i}] [{batch}, {n}, {dim}]: {a} vs {b}"
            );
        }
    }
}
