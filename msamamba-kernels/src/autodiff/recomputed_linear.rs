//! The linears as autodiff nodes: the same gradients as burn's linear, their reductions through
//! the backend's column sums. The recomputed one is memory-bound (its output rebuilt by a
//! retro-forward when a consumer's backward asks for it), the kept one compute-bound.

use std::marker::PhantomData;

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::retro_forward::RetroForward;
use burn::backend::autodiff::checkpoint::state::BackwardStates;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::FloatTensor;

use crate::RecomputedLinearBackend;
use crate::recomputed_linear::{bias_gradient, input_gradient, project, weight_gradient};

/// Backward of the linear; parents x, weight and, when `N` is 3, bias.
#[derive(Debug)]
struct LinearBackward;

/// The checkpoint ids of x (for the weight's gradient) and of the weight (for x's).
type LinearState = (Option<NodeId>, Option<NodeId>);

/// Recomputes the projection from the parents' states.
#[derive(Debug)]
struct RetroLinear<B> {
    x: NodeId,
    weight: NodeId,
    bias: Option<NodeId>,
    backend: PhantomData<B>,
}

impl<B: RecomputedLinearBackend> RetroForward for RetroLinear<B> {
    fn forward(&self, states: &mut BackwardStates, out_node: NodeId) {
        let x = states.get_state::<FloatTensor<B>>(&self.x);
        let weight = states.get_state::<FloatTensor<B>>(&self.weight);
        let bias = self.bias.map(|id| states.get_state::<FloatTensor<B>>(&id));
        states.save(out_node, project::<B>(x, weight, bias));
    }
}

/// The gradients of x and the weight, registered with their parents.
fn register_linear<B: RecomputedLinearBackend, const N: usize>(
    ops: &Ops<LinearState, N>,
    grad: &FloatTensor<B>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let (x_state, weight_state) = ops.state;
    if let Some(node) = &ops.parents[0] {
        let weight = checkpointer.retrieve_node_output(weight_state.expect("weight kept for x's gradient"));
        grads.register::<B>(node.id, input_gradient::<B>(weight, grad.clone()));
    }
    if let Some(node) = &ops.parents[1] {
        let x = checkpointer.retrieve_node_output(x_state.expect("x kept for the weight's gradient"));
        grads.register::<B>(node.id, weight_gradient::<B>(x, grad.clone()));
    }
}

impl<B: RecomputedLinearBackend> Backward<B, 2> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register_linear::<B, 2>(&ops, &grad, grads, checkpointer);
    }
}

impl<B: RecomputedLinearBackend> Backward<B, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register_linear::<B, 3>(&ops, &grad, grads, checkpointer);
        if let Some(node) = &ops.parents[2] {
            grads.register::<B>(node.id, bias_gradient::<B>(grad));
        }
    }
}

/// The node over `parents` (x, weight and, when `N` is 3, bias) with its already computed output:
/// memory-bound, rebuilt by `retro`, when there is one; compute-bound otherwise.
fn linear_node<B: RecomputedLinearBackend, C: CheckpointStrategy, const N: usize>(
    parents: [&FloatTensor<Autodiff<B, C>>; N],
    retro: Option<RetroLinear<B>>,
    output: FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>>
where
    LinearBackward: Backward<B, N, State = LinearState>,
{
    let (x, weight) = (parents[0], parents[1]);
    let prep = LinearBackward.prepare::<C>(parents.map(|p| p.node.clone()));
    let prep = match retro {
        Some(retro) => prep.memory_bound().retro_forward(retro).parents(parents),
        None => prep.compute_bound(),
    };
    match prep.stateful() {
        OpsKind::Tracked(mut prep) => {
            // Each input is kept only for the other's gradient, as burn's linear does.
            let state = (
                weight.is_tracked().then(|| prep.checkpoint(x)),
                x.is_tracked().then(|| prep.checkpoint(weight)),
            );
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The linear node over x, weight and bias, rebuilt by a retro-forward when `recomputed`.
fn linear<B: RecomputedLinearBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    recomputed: bool,
) -> FloatTensor<Autodiff<B, C>> {
    let retro = recomputed.then(|| RetroLinear::<B> {
        x: x.node.id,
        weight: weight.node.id,
        bias: bias.as_ref().map(|b| b.node.id),
        backend: PhantomData,
    });
    let output = project::<B>(
        x.primitive.clone(),
        weight.primitive.clone(),
        bias.as_ref().map(|b| b.primitive.clone()),
    );
    match &bias {
        Some(b) => linear_node::<B, C, 3>([&x, &weight, b], retro, output),
        None => linear_node::<B, C, 2>([&x, &weight], retro, output),
    }
}

impl<B: RecomputedLinearBackend, C: CheckpointStrategy> RecomputedLinearBackend for Autodiff<B, C> {
    fn matmul_accelerates(dtype: burn::tensor::DType, device: &Self::Device) -> bool {
        B::matmul_accelerates(dtype, device)
    }

    fn recomputed_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        linear::<B, C>(x, weight, bias, true)
    }

    fn kept_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        linear::<B, C>(x, weight, bias, false)
    }
}
