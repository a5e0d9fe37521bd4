//! AdamW with mamba_ssm's weight-decay convention: A_log, D, dt_bias, norm weights and
//! embeddings are not decayed (decaying A_log or D pulls the state dynamics towards a fixed
//! point; decaying norms and embeddings shrinks scales the model needs).
//!
//! AdamW decays every parameter it steps, so the optimizer here runs it with no decay and applies
//! AdamW's decoupled decay, `p *= 1 - lr * weight_decay`, itself, to the other parameters before
//! the step. AdamW computes its update from the gradient and its moments only, so this is exactly
//! AdamW on those parameters; the optimizer record is burn's AdamW's.

use burn::module::{AutodiffModule, ModuleMapper, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use msamamba_kernels::AdamWBackend;

use crate::train::adamw::{FusedAdamW, FusedAdamWConfig};

/// Parameters named so are never decayed, in any module (mamba_ssm's `_no_weight_decay`).
const NO_DECAY_PARAMS: [&str; 3] = ["a_log", "d", "dt_bias"];

/// Modules none of whose parameters are decayed.
const NO_DECAY_MODULES: [&str; 4] = [
    "Struct:RmsNorm",
    "Struct:LayerNorm",
    "Struct:Embedding",
    "Struct:TokenEmbedding",
];

/// AdamW (see [`FusedAdamWConfig`]) that decays only the parameters mamba_ssm decays, or all of
/// them.
#[derive(Clone)]
pub struct SelectiveAdamW<M: AutodiffModule<B>, B: AutodiffBackend>
where
    B::InnerBackend: AdamWBackend,
{
    inner: OptimizerAdaptor<FusedAdamW, M, B>,
    weight_decay: f64,
    decay_all: bool,
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> SelectiveAdamW<M, B>
where
    B::InnerBackend: AdamWBackend,
{
    /// AdamW with decoupled weight decay `weight_decay`; `decay_all` decays every parameter, as
    /// burn's AdamW does.
    pub fn new(weight_decay: f64, decay_all: bool) -> Self {
        Self {
            inner: FusedAdamWConfig::new().init().into(),
            weight_decay,
            decay_all,
        }
    }

    fn decay(&self, lr: LearningRate, module: M, grads: Grads) -> M {
        let factor = 1.0 - lr * self.weight_decay;
        if factor == 1.0 {
            return module;
        }
        module.map(&mut Decay {
            factor,
            decay_all: self.decay_all,
            path: Vec::new(),
            grads,
        })
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Optimizer<M, B> for SelectiveAdamW<M, B>
where
    B::InnerBackend: AdamWBackend,
{
    type Record = <OptimizerAdaptor<FusedAdamW, M, B> as Optimizer<M, B>>::Record;

    fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        let module = self.decay(lr, module, Grads::Single(&grads));
        self.inner.step(lr, module, grads)
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
        let module = self.decay(lr, module, Grads::Multi(&grads));
        self.inner.step_multi(lr, module, grads)
    }

    fn to_record(&self) -> Self::Record {
        self.inner.to_record()
    }

    fn load_record(mut self, record: Self::Record) -> Self {
        self.inner = self.inner.load_record(record);
        self
    }
}

/// The gradients of one step, on one device or several.
enum Grads<'a> {
    Single(&'a GradientsParams),
    Multi(&'a MultiGradientsParams),
}

impl Grads<'_> {
    fn has<B: Backend, const D: usize>(&self, id: ParamId) -> bool {
        match self {
            Grads::Single(grads) => grads.get::<B, D>(id).is_some(),
            Grads::Multi(grads) => grads.grads.iter().any(|(g, _)| g.get::<B, D>(id).is_some()),
        }
    }
}

/// Scales the decayed parameters that have a gradient (AdamW leaves the others untouched).
struct Decay<'a> {
    factor: f64,
    decay_all: bool,
    /// (field, container type) of each module entered, innermost last.
    path: Vec<(String, String)>,
    grads: Grads<'a>,
}

impl Decay<'_> {
    fn decays(&self) -> bool {
        self.decay_all
            || !self.path.last().is_some_and(|(field, container)| {
                NO_DECAY_PARAMS.contains(&field.as_str()) || NO_DECAY_MODULES.contains(&container.as_str())
            })
    }
}

impl<B: AutodiffBackend> ModuleMapper<B> for Decay<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        if !self.decays() || !self.grads.has::<B::InnerBackend, D>(id) {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let require_grad = tensor.is_require_grad();
        // On the inner backend: the decay is no part of the graph.
        let decayed = Tensor::<B, D>::from_inner(tensor.inner().mul_scalar(self.factor));
        let decayed = if require_grad { decayed.require_grad() } else { decayed };
        Param::from_mapped_value(id, decayed, mapper)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::module::{Module, ModuleVisitor};
    use msamamba_model::MsaMambaConfig;
    use msamamba_model::pooler::{MsaMambaClassifier, MsaMambaClassifierConfig};

    use super::*;

    type B = Autodiff<NdArray>;

    /// Every float parameter's path (field names joined by dots) and values, in visiting order.
    #[derive(Default)]
    struct Named {
        path: Vec<String>,
        params: Vec<(String, Vec<f32>)>,
        zero_grads: GradientsParams,
    }

    impl ModuleVisitor<B> for Named {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            self.zero_grads.register(param.id, value.clone().inner().zeros_like());
            let values = value.into_data().convert::<f32>().to_vec::<f32>().unwrap();
            self.params.push((self.path.join("."), values));
        }
    }

    fn named(model: &MsaMambaClassifier<B>) -> Named {
        let mut named = Named::default();
        model.visit(&mut named);
        named
    }

    /// One step with a zero gradient everywhere moves a parameter by weight decay alone.
    fn step_with_zero_gradient(decay_all: bool) -> Vec<(String, f32)> {
        let device = Default::default();
        let model = MsaMambaClassifierConfig::new(
            MsaMambaConfig::new()
                .with_d_model(8)
                .with_n_layers(1)
                .with_d_state(4)
                .with_n_heads(2)
                .with_max_rows(3),
        )
        .init::<B>(&device);
        let before = named(&model);
        let mut optim = SelectiveAdamW::new(0.5, decay_all);
        let after = named(&optim.step(0.1, model, before.zero_grads));
        before
            .params
            .iter()
            .zip(&after.params)
            .map(|((path, old), (_, new))| {
                // The largest relative change of any entry: 0 when kept, lr * wd when decayed.
                let change = old
                    .iter()
                    .zip(new)
                    .filter(|(o, _)| o.abs() > 1e-6)
                    .map(|(o, n)| ((o - n) / o).abs())
                    .fold(0.0, f32::max);
                (path.clone(), change)
            })
            .collect()
    }

    #[test]
    fn ssm_dynamics_norms_and_embeddings_are_not_decayed_and_linear_weights_are() {
        let changes = step_with_zero_gradient(false);
        let kept = |path: &str| {
            let last = path.rsplit('.').next().unwrap();
            NO_DECAY_PARAMS.contains(&last)
                || path.contains("norm")
                || path.contains("embedding")
                || path.contains("row_position")
        };
        let mut seen = [0; 2];
        for (path, change) in &changes {
            if kept(path) {
                assert!(*change < 1e-6, "{path} was decayed by {change}");
                seen[0] += 1;
            } else {
                assert!((change - 0.05).abs() < 1e-4, "{path} changed by {change}, not lr * wd");
                seen[1] += 1;
            }
        }
        assert!(
            seen[0] >= 8 && seen[1] >= 8,
            "kept and decayed parameters: {seen:?} of {changes:?}"
        );
        for path in [
            "backbone.embedding.weight",
            "backbone.lm_head.weight",
            "backbone.blocks.0.row_scan.mamba.forward_ssm.a_log",
        ] {
            assert!(
                changes.iter().any(|(p, _)| p.starts_with(path)),
                "{path} is a parameter: {changes:?}"
            );
        }
    }

    #[test]
    fn decay_all_decays_every_parameter() {
        for (path, change) in step_with_zero_gradient(true) {
            assert!((change - 0.05).abs() < 1e-4, "{path} changed by {change}, not lr * wd");
        }
    }
}
