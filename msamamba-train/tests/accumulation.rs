//! Gradient accumulation: two micro-batches of 2 give the same update as one batch of 4.

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::batcher::Batcher;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::train::TrainStep;
use msamamba_model::MsaMambaConfig;
use msamamba_train::train::mlm_step::MlmModel;
use msamamba_train::windows::mlm_batch::{MsaBatch, MsaBatcher, MsaBatcherConfig};
use msamamba_train::windows::tiling::MsaItem;
use rand::{Rng, SeedableRng, rngs::StdRng};

type B = Autodiff<NdArray>;

/// Every float parameter, flattened, in visiting order.
struct Params(Vec<f32>);

impl ModuleVisitor<B> for Params {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.extend(
            param
                .val()
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .expect("floats"),
        );
    }
}

fn params(model: &MlmModel<B>) -> Vec<f32> {
    let mut p = Params(Vec::new());
    model.visit(&mut p);
    p.0
}

#[test]
fn accumulated_micro_batches_match_one_large_batch() {
    let seed = rand::random::<u64>();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let device = Default::default();
    // No gaps in the target rows: every window then has the same number of masked positions,
    // so the mean of the micro-batch means is the mean over the large batch.
    let items: Vec<MsaItem> = (0..4)
        .map(|_| MsaItem {
            rows: (0..3)
                .map(|r| {
                    (0..20)
                        .map(|_| {
                            if r == 0 {
                                rng.random_range(1..=4)
                            } else {
                                rng.random_range(0..=4)
                            }
                        })
                        .collect()
                })
                .collect(),
            seed: rng.random(),
        })
        .collect();
    let batcher = MsaBatcher::new(MsaBatcherConfig::new(3));
    let batch = |items: &[MsaItem]| -> MsaBatch<B> { batcher.batch(items.to_vec(), &device) };
    let config = MsaMambaConfig::new()
        .with_d_model(16)
        .with_d_state(4)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_max_rows(4);
    let initial = config.init::<B>(&device);
    // Parameters are created lazily; use them once so both copies start from the same values.
    let _ = initial.forward(batch(&items).tokens, batch(&items).row_keep, false);
    // Plain SGD with lr 1: the update is the gradient itself (Adam would hide its scale).
    let optim = SgdConfig::new();
    let before = params(&MlmModel {
        model: initial.clone(),
        accumulate: 1,
    });

    let accumulated = MlmModel {
        model: initial.clone(),
        accumulate: 2,
    };
    let mut accumulator = GradientsAccumulator::new();
    for micro in items.chunks(2) {
        accumulator.accumulate(&accumulated, accumulated.step(batch(micro)).grads);
    }
    let accumulated = optim.init().step(1.0, accumulated, accumulator.grads());

    let large = MlmModel {
        model: initial,
        accumulate: 1,
    };
    let grads = large.step(batch(&items)).grads;
    let large = optim.init().step(1.0, large, grads);

    let (a, b) = (params(&accumulated), params(&large));
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    let moved = a.iter().zip(&before).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(moved > 1e-3, "the step changed nothing");
    assert!(diff < 1e-5, "parameters differ by {diff} after one step");
}
