//! The model's training step as the CUDA backend runs it on a Pascal card (compute capability
//! 6.0, so f32), compiled without a GPU: forward, MLM loss and backward on the recording runtime
//! of `msamamba_kernels::cuda_source`, unfused and with burn's kernel fusion, with and without
//! activation checkpointing, row-sparse or not; then every kernel launched is compiled for
//! sm_60 with NVRTC 12.
#![cfg(feature = "cuda-source")]

mod common;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, CheckpointStrategy};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use common::*;
use msamamba_kernels::KernelBackend;
use msamamba_kernels::cuda_source::nvrtc::compile_recorded;
use msamamba_kernels::cuda_source::{CudaSourceBackend, CudaSourceDevice, FusedCudaSourceBackend};
use msamamba_model::MsaMambaConfig;
use msamamba_model::mlm_loss::mlm_loss;
use rand::Rng;
use rand::rngs::StdRng;

/// One MLM step of the paper-size model of `config` on `shape` ([B, M, L]).
fn step<B: AutodiffBackend + KernelBackend>(
    rng: &mut StdRng,
    config: &MsaMambaConfig,
    shape: [usize; 3],
    row_sparse: bool,
) {
    let device = B::Device::default();
    let model = config.init::<B>(&device);
    let [b, m, l] = shape;
    let keep_rows: Vec<bool> = (0..b * m).map(|i| i % m == 0 || rng.random_bool(0.5)).collect();
    let targets: Vec<i64> = (0..b * l)
        .map(|_| {
            if rng.random_bool(0.15) {
                rng.random_range(1..5)
            } else {
                -100
            }
        })
        .collect();
    let logits = model.forward(
        tokens(&random_tokens(rng, shape), shape, &device),
        keep(&keep_rows, [b, m], &device),
        row_sparse,
    );
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [b, l]), &device);
    let _ = mlm_loss(logits, targets).loss.backward();
}

/// [`step`] on each shape, the model one-way and bidirectional, under checkpointing `C`.
fn steps<B: KernelBackend, C: CheckpointStrategy>(rng: &mut StdRng) {
    for bidirectional in [false, true] {
        let config = MsaMambaConfig::new().with_bidirectional(bidirectional);
        // The paper's rows and a shorter L off every tile; few rows, as fine-tuning batches are.
        for (shape, row_sparse) in [([2, 90, 300], true), ([2, 90, 300], false), ([8, 5, 128], false)] {
            step::<Autodiff<B, C>>(rng, &config, shape, row_sparse);
        }
    }
}

#[test]
fn the_models_training_step_compiles_for_pascal_with_nvrtc() {
    let mut rng = rng();
    steps::<CudaSourceBackend, BalancedCheckpointing>(&mut rng);
    steps::<FusedCudaSourceBackend, BalancedCheckpointing>(&mut rng);
    steps::<FusedCudaSourceBackend, burn::backend::autodiff::checkpoint::strategy::NoCheckpointing>(&mut rng);
    let variants = compile_recorded(&CudaSourceDevice::default()).unwrap_or_else(|failed| panic!("{failed}"));
    eprintln!("{variants} kernel variants compile for sm_60");
}
