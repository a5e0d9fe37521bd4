//! One AdamW step of one parameter as one operation.
//!
//! burn's AdamW steps a parameter with a dozen tensor ops (two moments, two bias corrections, the
//! update, the decay), each queued, fused and launched on its own, so the optimizer step is bound
//! by the host's launches, not by the GPU. Here the whole step is one operation per parameter,
//! one kernel launch on the GPU backends, reading the parameter, its gradient and its two moments
//! once and writing the three.
//!
//! The arithmetic is burn's AdamW's (burn-optim 0.21, `adamw.rs`), in its order and in f32:
//! m' = β1·m + (1 - β1)·g, v' = β2·v + (1 - β2)·g², update u = (m' / c1) / (sqrt(v' / c2) + ε)
//! with c1 = 1 - β1^t, c2 = 1 - β2^t, and p' = p·(1 - lr·λ) - lr·u. The first step starts from
//! zero moments, which is burn's first step exactly (β·0 + x = x).
//!
//! [`adamw_step`] is the entry point. Backends implement [`AdamWBackend`]; its default method is
//! the tensor-op reference below, the oracle of the kernel.

use burn::tensor::{Tensor, backend::Backend};

/// The scalars of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f64,
    /// First moment's decay β1.
    pub beta_1: f32,
    /// Second moment's decay β2.
    pub beta_2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// Decoupled weight decay λ: the parameter is scaled by 1 - lr·λ first.
    pub weight_decay: f64,
    /// The step's number t, from 1.
    pub time: usize,
}

impl AdamWStep {
    /// The bias corrections (c1, c2), computed as burn computes them.
    pub fn corrections(&self) -> (f32, f32) {
        let t = self.time as i32;
        (1f32 - self.beta_1.powi(t), 1f32 - self.beta_2.powi(t))
    }

    /// The factor the decay scales the parameter by, as burn computes it.
    pub fn decay(&self) -> f64 {
        1.0 - self.lr * self.weight_decay
    }
}

/// A parameter, its gradient and its moments, flattened.
///
/// # Shapes
/// \[n\] each.
#[derive(Debug, Clone)]
pub struct AdamWTensors<B: Backend> {
    /// The parameter.
    pub param: Tensor<B, 1>,
    /// The first moment.
    pub moment_1: Tensor<B, 1>,
    /// The second moment.
    pub moment_2: Tensor<B, 1>,
}

/// A backend that can run one AdamW step.
pub trait AdamWBackend: Backend {
    /// The parameter and moments after `step` with gradient `grad` \[n\].
    fn adamw_step(state: AdamWTensors<Self>, grad: Tensor<Self, 1>, step: &AdamWStep) -> AdamWTensors<Self> {
        reference(state, grad, step)
    }
}

/// Runs one AdamW step on backend `B` (see the module doc).
///
/// # Shapes
/// state's tensors and grad: \[n\] -> \[n\]
///
/// # Panics
/// When the tensors' lengths differ: a programming error of the optimizer, never user data.
pub fn adamw_step<B: AdamWBackend>(state: AdamWTensors<B>, grad: Tensor<B, 1>, step: &AdamWStep) -> AdamWTensors<B> {
    let n = grad.dims()[0];
    assert!(
        [&state.param, &state.moment_1, &state.moment_2]
            .iter()
            .all(|t| t.dims()[0] == n),
        "adamw_step: parameter, moments and gradient have one length"
    );
    B::adamw_step(state, grad, step)
}

/// The step as burn's AdamW's tensor ops.
pub fn reference<B: Backend>(state: AdamWTensors<B>, grad: Tensor<B, 1>, step: &AdamWStep) -> AdamWTensors<B> {
    let (c1, c2) = step.corrections();
    let moment_1 = state
        .moment_1
        .mul_scalar(step.beta_1)
        .add(grad.clone().mul_scalar(1.0 - step.beta_1));
    let moment_2 = state
        .moment_2
        .mul_scalar(step.beta_2)
        .add(grad.square().mul_scalar(1.0 - step.beta_2));
    let update = moment_1
        .clone()
        .div_scalar(c1)
        .div(moment_2.clone().div_scalar(c2).sqrt().add_scalar(step.epsilon));
    let decay = step.decay();
    let param = if decay == 1.0 {
        state.param
    } else {
        state.param.mul_scalar(decay)
    };
    AdamWTensors {
        param: param - update.mul_scalar(step.lr),
        moment_1,
        moment_2,
    }
}
