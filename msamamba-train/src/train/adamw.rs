//! AdamW as the paper (and mamba_ssm) train with, each parameter's step one fused operation
//! ([`msamamba_kernels::adamw`]: one launch per parameter on the GPU instead of burn's dozen
//! tensor ops, whose launches bound the optimizer step by the host).
//!
//! The arithmetic is burn's AdamW's, and so is the state: burn's `AdamWState`, so the optimizer
//! records of checkpoints written with burn's AdamW load, and the other way round.

use burn::config::Config;
use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::Tensor;
use burn::tensor::ops::Device;
use msamamba_kernels::AdamWBackend;
use msamamba_kernels::adamw::{AdamWStep, AdamWTensors, adamw_step};

/// AdamW's hyperparameters.
#[derive(Config, Debug)]
pub struct FusedAdamWConfig {
    /// First moment's decay β1.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Second moment's decay β2.
    #[config(default = 0.95)]
    pub beta_2: f32,
    /// PyTorch's epsilon: burn's default 1e-5 damps the updates of parameters with small gradients
    /// at the pre-training rate of 3e-5.
    #[config(default = 1e-8)]
    pub epsilon: f32,
    /// Decoupled weight decay of every parameter stepped through burn's optimizer adaptor; none,
    /// since [`crate::train::weight_decay::SelectiveAdamW`] gives each parameter its own.
    #[config(default = 0.0)]
    pub weight_decay: f32,
}

impl FusedAdamWConfig {
    /// The optimizer.
    pub fn init(&self) -> FusedAdamW {
        FusedAdamW { config: self.clone() }
    }
}

/// See [`FusedAdamWConfig`].
#[derive(Clone, Debug)]
pub struct FusedAdamW {
    config: FusedAdamWConfig,
}

impl FusedAdamW {
    /// One step of `tensor` from `state` (none before its first step), with decoupled weight
    /// decay `weight_decay` in place of the config's.
    pub fn step_with_decay<B: AdamWBackend, const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<AdamWState<B, D>>,
        weight_decay: f64,
    ) -> (Tensor<B, D>, AdamWState<B, D>) {
        let shape = tensor.shape();
        let n = shape.num_elements();
        let device = tensor.device();
        let (time, moment_1, moment_2) = match state {
            Some(state) => {
                let momentum = state.momentum;
                (
                    momentum.time + 1,
                    momentum.moment_1.reshape([n]),
                    momentum.moment_2.reshape([n]),
                )
            }
            // From zero moments: burn's first step exactly (β·0 + x = x).
            None => (1, Tensor::zeros([n], &device), Tensor::zeros([n], &device)),
        };
        let step = AdamWStep {
            lr,
            beta_1: self.config.beta_1,
            beta_2: self.config.beta_2,
            epsilon: self.config.epsilon,
            weight_decay,
            time,
        };
        let tensors = AdamWTensors {
            param: tensor.reshape([n]),
            moment_1,
            moment_2,
        };
        let next = adamw_step(tensors, grad.reshape([n]), &step);
        let momentum = AdaptiveMomentumState::new(
            time,
            next.moment_1.reshape(shape.clone()),
            next.moment_2.reshape(shape.clone()),
        );
        (next.param.reshape(shape), AdamWState::new(momentum))
    }
}

impl<B: AdamWBackend> SimpleOptimizer<B> for FusedAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        // As burn's AdamW: its f32 decay, widened.
        let (tensor, state) = self.step_with_decay(lr, tensor, grad, state, self.config.weight_decay as f64);
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device<B>) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::adaptor::OptimizerAdaptor;
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    use burn::tensor::TensorData;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    type B = Autodiff<NdArray>;

    #[test]
    fn the_papers_hyperparameters() {
        let config = serde_json::to_value(FusedAdamWConfig::new()).unwrap();
        assert_eq!(config["beta_1"], 0.9f32 as f64, "{config}");
        assert_eq!(config["beta_2"], 0.95f32 as f64, "{config}");
        assert_eq!(config["epsilon"], 1e-8f32 as f64, "{config}");
        assert_eq!(config["weight_decay"], 0.0, "{config}");
    }

    /// Steps a linear layer five times on random inputs with `optim`, from the same weights and
    /// inputs. The inputs come from a local generator: the backend's is shared by the tests that
    /// run beside this one.
    fn train<O: Optimizer<Linear<B>, B>>(mut optim: O, lr: LearningRate) -> (Vec<f32>, O) {
        let device = Default::default();
        let mut linear: Linear<B> = LinearConfig::new(7, 5).init(&device);
        linear.weight = Param::from_tensor(Tensor::from_floats([[0.1f32; 5]; 7], &device).require_grad());
        linear.bias = Some(Param::from_tensor(
            Tensor::from_floats([0.2f32; 5], &device).require_grad(),
        ));
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..5 {
            let x: Vec<f32> = (0..2 * 3 * 7).map(|_| rng.random()).collect();
            let x = Tensor::<B, 3>::from_data(TensorData::new(x, [2, 3, 7]), &device);
            let grads = GradientsParams::from_grads(linear.forward(x).powi_scalar(2).sum().backward(), &linear);
            linear = optim.step(lr, linear, grads);
        }
        let weights = linear.weight.val().into_data().to_vec().unwrap();
        (weights, optim)
    }

    #[test]
    fn steps_as_burns_adamw_and_shares_its_record() {
        for weight_decay in [0.0, 0.1] {
            let fused = OptimizerAdaptor::<_, Linear<B>, B>::from(
                FusedAdamWConfig::new().with_weight_decay(weight_decay).init(),
            );
            let burns = AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.95)
                .with_epsilon(1e-8)
                .with_weight_decay(weight_decay)
                .init::<B, Linear<B>>();
            let (got, fused) = train(fused, 1e-2);
            let (want, burns) = train(burns, 1e-2);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "decay {weight_decay}: {g} against {w}"
                );
            }
            // Each optimizer's record, saved, loads as the other's.
            let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
            let device = Default::default();
            let bytes = recorder.record(burns.to_record(), ()).unwrap();
            let as_fused = recorder.load(bytes, &device).unwrap();
            let _ = OptimizerAdaptor::<FusedAdamW, Linear<B>, B>::from(FusedAdamWConfig::new().init())
                .load_record(as_fused);
            let bytes = recorder.record(fused.to_record(), ()).unwrap();
            let as_burns = recorder.load(bytes, &device).unwrap();
            let _ = AdamWConfig::new().init::<B, Linear<B>>().load_record(as_burns);
        }
    }
}
