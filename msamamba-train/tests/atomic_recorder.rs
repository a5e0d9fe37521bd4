//! Checkpoint files appear whole or not at all.

mod common;

use burn::backend::NdArray;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use common::scratch_dir;
use msamamba_train::train::checkpoint_recorder::CheckpointRecorder;
use msamamba_train::train::run_dir::RunDir;

type B = NdArray;

fn weights(linear: &Linear<B>) -> Vec<f32> {
    linear.weight.val().into_data().to_vec().unwrap()
}

#[test]
fn a_record_replaces_the_file_whole_and_leaves_no_partial_file() {
    let device = Default::default();
    let dir = scratch_dir("atomic");
    let checkpoints = dir.join("checkpoint");
    let first = LinearConfig::new(5, 3).init::<B>(&device);
    let second = LinearConfig::new(5, 3).init::<B>(&device);
    assert_ne!(weights(&first), weights(&second));
    for module in [&first, &second] {
        module
            .clone()
            .save_file(checkpoints.join("model-1"), &CheckpointRecorder::default())
            .unwrap();
        let partial: Vec<_> = std::fs::read_dir(checkpoints.join(".partial")).unwrap().collect();
        assert!(partial.is_empty(), "left behind: {partial:?}");
    }
    let loaded = LinearConfig::new(5, 3)
        .init::<B>(&device)
        .load_file(checkpoints.join("model-1.mpk"), &CheckpointRecorder::default(), &device)
        .unwrap();
    assert_eq!(weights(&loaded), weights(&second));

    // A write cut short (a killed run) stays in .partial/, where resuming never looks.
    for kind in ["model", "optim", "scheduler"] {
        first
            .clone()
            .save_file(checkpoints.join(format!("{kind}-1")), &CheckpointRecorder::default())
            .unwrap();
        std::fs::write(checkpoints.join(format!(".partial/{kind}-2.mpk")), b"\x82\xa4trun").unwrap();
    }
    let run = RunDir { dir };
    assert_eq!(run.last_checkpoint(), Some(1));
}
