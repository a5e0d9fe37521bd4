//! AdamW with mamba_ssm's weight-decay convention: A_log, D, dt_bias, norm weights and
//! embeddings are not decayed (decaying A_log or D pulls the state dynamics towards a fixed
//! point; decaying norms and embeddings shrinks scales the model needs).
//!
//! burn's optimizer adaptor steps every parameter with one decay, so the optimizer here walks the
//! module itself, as the adaptor does, and hands each parameter's fused AdamW step
//! ([`FusedAdamW`]) the decay it gets: AdamW's decoupled `p *= 1 - lr * weight_decay`, inside the
//! same launch, or none. Its record is the adaptor's (burn's AdamW state per parameter id), so
//! checkpoints written before load.

use std::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleMapper, Param, ParamId};
use burn::optim::adaptor::GradAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::{GradientsParams, LearningRate, MultiGradientsParams, Optimizer, SimpleOptimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use hashbrown::HashMap;

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

/// Each parameter's optimizer state, by id.
type Records<B> = HashMap<ParamId, AdaptorRecord<FusedAdamW, B>>;

/// AdamW (see [`FusedAdamWConfig`]) that decays only the parameters mamba_ssm decays, or all of
/// them.
#[derive(Clone)]
pub struct SelectiveAdamW<M: AutodiffModule<B>, B: AutodiffBackend>
where
    B::InnerBackend: AdamWBackend,
{
    optim: FusedAdamW,
    records: Records<B>,
    weight_decay: f64,
    decay_all: bool,
    module: PhantomData<M>,
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> SelectiveAdamW<M, B>
where
    B::InnerBackend: AdamWBackend,
{
    /// AdamW with decoupled weight decay `weight_decay`; `decay_all` decays every parameter, as
    /// burn's AdamW does.
    pub fn new(weight_decay: f64, decay_all: bool) -> Self {
        Self {
            optim: FusedAdamWConfig::new().init(),
            records: HashMap::new(),
            weight_decay,
            decay_all,
            module: PhantomData,
        }
    }

    fn step_grads(&mut self, lr: LearningRate, module: M, grads: GradAdaptor) -> M {
        module.map(&mut Step {
            optim: &self.optim,
            records: &mut self.records,
            grads,
            lr,
            weight_decay: self.weight_decay,
            decay_all: self.decay_all,
            path: Vec::new(),
        })
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Optimizer<M, B> for SelectiveAdamW<M, B>
where
    B::InnerBackend: AdamWBackend,
{
    type Record = Records<B>;

    fn step(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        self.step_grads(lr, module, grads.into())
    }

    fn step_multi(&mut self, lr: LearningRate, module: M, grads: MultiGradientsParams) -> M {
        self.step_grads(lr, module, grads.into())
    }

    fn to_record(&self) -> Self::Record {
        self.records.clone()
    }

    fn load_record(mut self, record: Self::Record) -> Self {
        self.records = record;
        self
    }
}

/// Steps every parameter that has a gradient (AdamW leaves the others untouched), as burn's
/// adaptor does, with the decay its place in the module gives it.
struct Step<'a, B: AutodiffBackend>
where
    B::InnerBackend: AdamWBackend,
{
    optim: &'a FusedAdamW,
    records: &'a mut Records<B>,
    grads: GradAdaptor,
    lr: LearningRate,
    weight_decay: f64,
    decay_all: bool,
    /// (field, container type) of each module entered, innermost last.
    path: Vec<(String, String)>,
}

impl<B: AutodiffBackend> Step<'_, B>
where
    B::InnerBackend: AdamWBackend,
{
    fn decays(&self) -> bool {
        self.decay_all
            || !self.path.last().is_some_and(|(field, container)| {
                NO_DECAY_PARAMS.contains(&field.as_str()) || NO_DECAY_MODULES.contains(&container.as_str())
            })
    }
}

impl<B: AutodiffBackend> ModuleMapper<B> for Step<'_, B>
where
    B::InnerBackend: AdamWBackend,
{
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some((grad, device)) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let tensor = if tensor.device() == device {
            tensor
        } else {
            tensor.to_device(&device)
        };
        let (key, record) = self.records.remove_entry(&id).unzip();
        let state = record
            .map(|record| <FusedAdamW as SimpleOptimizer<B::InnerBackend>>::to_device(record.into_state(), &device));
        let decay = if self.decays() { self.weight_decay } else { 0.0 };
        let (tensor, state) = self.optim.step_with_decay(self.lr, tensor.inner(), grad, state, decay);
        self.records.insert(key.unwrap_or(id), AdaptorRecord::from_state(state));
        let tensor = Tensor::from_inner(tensor);
        let tensor = if require_grad { tensor.require_grad() } else { tensor };
        Param::from_mapped_value(id, tensor, mapper)
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
