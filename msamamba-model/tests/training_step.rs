//! One optimiser step on a tiny batch: every parameter gets a gradient and the loss drops.

mod common;

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
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
fn descend<M: AutodiffModule<Train>>(model: M, grads: <Train as AutodiffBackend>::Gradients) -> M {
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

/// Every float parameter's gradient, in visiting order.
struct AllGradients<'a, B: AutodiffBackend> {
    grads: &'a B::Gradients,
    found: Vec<Vec<f32>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for AllGradients<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = param.val().grad(self.grads).expect("every parameter has a gradient");
        self.found.push(values(grad));
    }
}

/// The loss's gradients of every parameter of `model`, on backend `B`.
fn mlm_gradients<B: AutodiffBackend + msamamba_kernels::KernelBackend>(
    model: &msamamba_model::MsaMamba<B>,
    toks: &[i64],
    shape: [usize; 3],
    row_keep: &[bool],
    targets: &[i64],
) -> Vec<Vec<f32>> {
    let device = Default::default();
    let logits = model.forward(
        tokens::<B>(toks, shape, &device),
        keep::<B>(row_keep, [shape[0], shape[1]], &device),
        true,
    );
    let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets.to_vec(), [shape[0], shape[2]]), &device);
    let grads = mlm_loss(logits, targets).loss.backward();
    let mut visitor = AllGradients::<B> {
        grads: &grads,
        found: vec![],
    };
    model.visit(&mut visitor);
    visitor.found
}

/// Under balanced checkpointing the backward recomputes the convolution, the step sizes, the
/// MLP's hidden layer and the attention's queries, keys and values instead of keeping them: the
/// gradients must be those of keeping everything.
#[test]
fn recomputing_activations_gives_the_gradients_of_keeping_them() {
    use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
    type Balanced = Autodiff<Cpu, BalancedCheckpointing>;

    let mut rng = rng();
    let device = Default::default();
    for bidirectional in [false, true] {
        let kept = tiny_config().with_bidirectional(bidirectional).init::<Train>(&device);
        let recomputed = msamamba_model::MsaMamba::<Balanced>::from_inner(kept.valid());
        let shape = [2, 3, 13];
        let toks = random_tokens(&mut rng, shape);
        let targets: Vec<i64> = (0..shape[0] * shape[2]).map(|i| (i % 5) as i64).collect();
        // A dropped row: the row-sparse scan's gather and scatter are in the graph as well.
        let row_keep = [true, true, false, true, true, true];
        let want = mlm_gradients(&kept, &toks, shape, &row_keep, &targets);
        let got = mlm_gradients(&recomputed, &toks, shape, &row_keep, &targets);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let scale = w.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(g, w);
            assert!(
                diff <= 1e-5 * scale.max(1.0),
                "parameter {i} (bidirectional={bidirectional}): gradients differ by {diff} (scale {scale})"
            );
        }
    }
}
