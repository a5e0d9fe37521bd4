//! One optimiser step on a tiny batch: every parameter gets a gradient and the loss drops.

mod common;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use common::*;
use msamamba_model::mlm_loss::mlm_loss;
use msamamba_model::mlm_mask::MlmMaskConfig;
use msamamba_model::pooler::MsaMambaClassifierConfig;
use msamamba_model::tokens::IGNORE_TARGET;

type Train = Autodiff<Cpu>;

/// Names of the float parameters whose gradient is missing or all zero.
struct ZeroGradients<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    path: Vec<String>,
    missing: Vec<String>,
    seen: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ZeroGradients<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.seen += 1;
        let nonzero = param
            .val()
            .grad(self.grads)
            .map(|g| g.abs().max().into_scalar().elem::<f32>() > 0.0)
            .unwrap_or(false);
        if !nonzero {
            self.missing.push(self.path.join("."));
        }
    }
}

fn params_without_gradient<M: Module<Train>>(
    module: &M,
    grads: &<Train as AutodiffBackend>::Gradients,
) -> (usize, Vec<String>) {
    let mut visitor = ZeroGradients::<Train> {
        grads,
        path: vec![],
        missing: vec![],
        seen: 0,
    };
    module.visit(&mut visitor);
    (visitor.seen, visitor.missing)
}

/// One plain gradient-descent step. Its step is small and follows the gradient, so the loss must
/// drop for any random start; Adam's sign-like first step can overshoot and made this flaky.
fn descend<M: burn::module::AutodiffModule<Train>>(model: M, grads: <Train as AutodiffBackend>::Gradients) -> M {
    let grads = GradientsParams::from_grads(grads, &model);
    SgdConfig::new().init().step(1e-2, model, grads)
}

#[test]
fn one_mlm_step_reaches_every_parameter_and_lowers_the_loss() {
    let mut rng = rng();
    let device = Default::default();
    let model = tiny_config().with_bidirectional(true).init::<Train>(&device);
    let shape = [2, 3, 16];
    let mut toks = random_tokens(&mut rng, shape);
    let mut targets = Vec::new();
    for b in 0..shape[0] {
        let start = b * shape[1] * shape[2];
        let mut row: Vec<u8> = toks[start..start + shape[2]].iter().map(|&t| t as u8).collect();
        let mut t = MlmMaskConfig::new().with_mask_prob(0.5).apply(&mut row, &mut rng);
        // Make sure a kept base carries a target too, so the embedding of every token is used.
        t.iter_mut().zip(&row).for_each(|(t, &r)| {
            if *t == IGNORE_TARGET && r != 0 {
                *t = i64::from(r)
            }
        });
        for (i, r) in row.into_iter().enumerate() {
            toks[start + i] = i64::from(r);
        }
        targets.extend(t);
    }
    let row_keep = [true, false, true, true, true, false];
    let tokens = tokens::<Train>(&toks, shape, &device);
    let keep = keep::<Train>(&row_keep, [2, 3], &device);
    let targets = Tensor::<Train, 2, Int>::from_data(TensorData::new(targets, [2, 16]), &device);

    let loss_of = |m: &msamamba_model::MsaMamba<Train>| {
        mlm_loss(m.forward(tokens.clone(), keep.clone(), true), targets.clone()).loss
    };
    let loss = loss_of(&model);
    let before = loss.clone().into_scalar();
    let grads = loss.backward();
    let (seen, missing) = params_without_gradient(&model, &grads);
    assert!(seen > 30, "visited only {seen} parameters");
    assert!(missing.is_empty(), "no gradient reached: {missing:?}");

    let model = descend(model, grads);
    let after = loss_of(&model).into_scalar();
    assert!(after < before, "loss went from {before} to {after}");
}

#[test]
fn one_classifier_step_reaches_the_pooler_head() {
    let mut rng = rng();
    let device = Default::default();
    let config = MsaMambaClassifierConfig::new(tiny_config()).with_dropout(0.0);
    let model = config.init::<Train>(&device);
    let shape = [4, 2, 10];
    let tokens = tokens::<Train>(&random_tokens(&mut rng, shape), shape, &device);
    let keep = keep::<Train>(&[true; 8], [4, 2], &device);
    let labels = Tensor::<Train, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 1, 0], [4]), &device);
    let loss_of = |m: &msamamba_model::pooler::MsaMambaClassifier<Train>| {
        m.loss(m.forward(tokens.clone(), keep.clone()), labels.clone())
    };
    let loss = loss_of(&model);
    let before = loss.clone().into_scalar();
    let grads = loss.backward();
    let (_, missing) = params_without_gradient(&model, &grads);
    // The language-model head is not part of the classifier; everything else must learn.
    assert_eq!(
        missing,
        ["backbone.lm_head.weight", "backbone.lm_head.bias"],
        "no gradient reached: {missing:?}"
    );
    let model = descend(model, grads);
    let after = loss_of(&model).into_scalar();
    assert!(after < before, "loss went from {before} to {after}");
}
