//! The model on WGPU (CubeCL scan kernels) against the model on ndarray, same weights:
//! logits and the gradient of every parameter, with f32 activations and with f16 ones.
#![cfg(feature = "wgpu")]

mod common;

use burn::backend::{Autodiff, Wgpu};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::DType;
use burn::tensor::backend::AutodiffBackend;
use common::*;
use msamamba_model::mlm_loss::mlm_loss;
use msamamba_model::{MsaMamba, Precision};
use rand::Rng;

/// Every float parameter's gradient, flattened, in visiting order.
struct Grads<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    all: Vec<Vec<f32>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = param.val().grad(self.grads);
        if let Some(grad) = &grad {
            assert_eq!(
                grad.dtype(),
                DType::F32,
                "parameters' gradients stay f32 ({:?})",
                grad.dims()
            );
        }
        self.all.push(grad.map(values).unwrap_or_default());
    }
}

/// Logits and parameter gradients of one MLM step.
fn step<B: AutodiffBackend + msamamba_kernels::KernelBackend>(
    model: &MsaMamba<B>,
    toks: &[i64],
    keep_rows: &[bool],
    targets: &[i64],
    shape: [usize; 3],
    device: &B::Device,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let logits = model.forward(
        tokens(toks, shape, device),
        keep(keep_rows, [shape[0], shape[1]], device),
        true,
    );
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets.to_vec(), [shape[0], shape[2]]), device);
    let grads = mlm_loss(logits.clone(), targets).loss.backward();
    let mut visitor = Grads::<B> {
        grads: &grads,
        all: vec![],
    };
    model.visit(&mut visitor);
    (values(logits), visitor.all)
}

/// Runs one MLM step of the tiny model on ndarray and on WGPU in `precision`, same weights, and
/// checks the logits and every parameter's gradient within `tolerance` of their largest value.
fn check(precision: Precision, tolerance: f32) {
    let mut rng = rng();
    let config = tiny_config().with_bidirectional(true);
    let cpu_device = Default::default();
    let gpu_device = Default::default();
    let cpu_model = config.init::<Autodiff<Cpu>>(&cpu_device);
    let shape = [2, 4, 37];
    let toks = random_tokens(&mut rng, shape);
    let keep_rows = [true, true, false, true, true, false, true, true];
    let targets: Vec<i64> = (0..2 * 37)
        .map(|_| {
            if rng.random_bool(0.3) {
                rng.random_range(1..5)
            } else {
                -100
            }
        })
        .collect();
    let (cpu_logits, cpu_grads) = step(&cpu_model, &toks, &keep_rows, &targets, shape, &cpu_device);
    // Parameters are initialised lazily: record them only after the CPU model has used them.
    let bytes = BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(cpu_model.clone().into_record(), ())
        .expect("record the weights");
    let gpu_record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes, &gpu_device)
        .expect("load the weights");
    let gpu_model = config
        .init::<Autodiff<Wgpu>>(&gpu_device)
        .load_record(gpu_record)
        .with_precision(precision);

    let (gpu_logits, gpu_grads) = step(&gpu_model, &toks, &keep_rows, &targets, shape, &gpu_device);

    let scale = cpu_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        max_abs_diff(&cpu_logits, &gpu_logits) <= tolerance * scale,
        "{precision:?}: logits differ by {} (scale {scale})",
        max_abs_diff(&cpu_logits, &gpu_logits)
    );
    assert_eq!(cpu_grads.len(), gpu_grads.len());
    // A gradient whose terms cancel (near 0 in f32) keeps the rounding of its terms: measured
    // against the largest gradient of the model too, at a hundredth of the tolerance.
    let largest = cpu_grads.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    let floor = (tolerance * 1e-2 * largest).max(1e-6);
    for (k, (c, g)) in cpu_grads.iter().zip(&gpu_grads).enumerate() {
        let scale = c.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(c, g);
        assert!(
            diff <= 10.0 * tolerance * scale + floor,
            "{precision:?}: parameter {k}: gradients differ by {diff} (scale {scale}, floor {floor})"
        );
    }
}

#[test]
fn model_on_wgpu_matches_ndarray_forward_and_backward() {
    check(Precision::Fp32, 1e-4);
}

/// f16 activations round every layer's output to 11 bits (unit roundoff 4.9e-4); through three
/// blocks the logits stay within a few of those units, the gradients within ten times that.
#[test]
fn model_in_f16_on_wgpu_matches_f32_on_ndarray_within_half_precision() {
    check(Precision::F16, 1e-2);
}

/// Every float parameter's dtype and values, in visiting order.
struct Weights(Vec<(DType, Vec<f32>)>);

impl<B: Backend> ModuleVisitor<B> for Weights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        self.0.push((value.dtype(), values(value)));
    }
}

/// A model trained a step under one precision is saved f32 and trains on under the other, and
/// back: the precision is a setting of the run, not part of the weights.
#[test]
fn weights_trained_under_one_precision_load_and_train_under_the_other() {
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};
    type B = Autodiff<Wgpu>;
    let mut rng = rng();
    let device = Default::default();
    let config = tiny_config();
    let shape = [2, 4, 37];
    let toks = random_tokens(&mut rng, shape);
    let keep_rows = [true; 8];
    let targets: Vec<i64> = (0..2 * 37)
        .map(|i| if i % 3 == 0 { rng.random_range(1..5) } else { -100 })
        .collect();
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let mut optim = SgdConfig::new().init::<B, MsaMamba<B>>();
    let mut model = config.init::<B>(&device).with_precision(Precision::F16);
    for next in [Precision::Fp32, Precision::F16] {
        let logits = model.forward(tokens(&toks, shape, &device), keep(&keep_rows, [2, 4], &device), false);
        let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets.clone(), [2, 37]), &device);
        let loss = mlm_loss(logits, targets).loss;
        let value = values(loss.clone())[0];
        assert!(value.is_finite(), "loss {value} in {:?}", model.precision);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
        let bytes = recorder
            .record(model.clone().into_record(), ())
            .expect("record the weights");
        let reloaded = config
            .init::<B>(&device)
            .load_record(recorder.load(bytes, &device).expect("load the weights"))
            .with_precision(next);
        let (mut saved, mut loaded) = (Weights(vec![]), Weights(vec![]));
        model.visit(&mut saved);
        reloaded.visit(&mut loaded);
        assert!(!saved.0.is_empty());
        assert_eq!(saved.0, loaded.0, "the weights come back as they were saved");
        assert!(
            saved.0.iter().all(|(dtype, _)| *dtype == DType::F32),
            "weights stay f32"
        );
        model = reloaded;
    }
}
