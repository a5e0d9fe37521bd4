//! Shared helpers for the model tests: fresh random inputs, printed seeds.
#![allow(dead_code)]

use burn::backend::NdArray;
use burn::prelude::*;
use msamamba_model::MsaMambaConfig;
use rand::{Rng, SeedableRng, rngs::StdRng};

pub type Cpu = NdArray<f32>;

/// Fresh inputs every run; the seed is printed so a failure can be replayed.
pub fn rng() -> StdRng {
    let seed = std::env::var("MSAMAMBA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("MSAMAMBA_TEST_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// A small model for property tests.
pub fn tiny_config() -> MsaMambaConfig {
    MsaMambaConfig::new()
        .with_d_model(16)
        .with_d_state(4)
        .with_n_layers(2)
        .with_n_heads(2)
        .with_max_rows(8)
}

/// Random tokens 0..=4 (gaps included): [B, M, L] as a flat row-major vector.
pub fn random_tokens(rng: &mut StdRng, [b, m, l]: [usize; 3]) -> Vec<i64> {
    (0..b * m * l).map(|_| rng.random_range(0..5)).collect()
}

pub fn tokens<B: Backend>(values: &[i64], shape: [usize; 3], device: &B::Device) -> Tensor<B, 3, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

pub fn keep<B: Backend>(values: &[bool], shape: [usize; 2], device: &B::Device) -> Tensor<B, 2, Bool> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("float data")
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}
