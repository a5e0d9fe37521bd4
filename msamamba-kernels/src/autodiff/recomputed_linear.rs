//! The recomputed linear as a memory-bound autodiff node: the same gradients as burn's linear,
//! but its output is rebuilt by a retro-forward when a consumer's backward asks for it.

use std::marker::PhantomData;

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::retro_forward::RetroForward;
use burn::backend::autodiff::checkpoint::state::BackwardStates;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;

use crate::RecomputedLinearBackend;

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

impl<B: Backend> RetroForward for RetroLinear<B> {
    fn forward(&self, states: &mut BackwardStates, out_node: NodeId) {
        let x = states.get_state::<FloatTensor<B>>(&self.x);
        let weight = states.get_state::<FloatTensor<B>>(&self.weight);
        let bias = self.bias.map(|id| states.get_state::<FloatTensor<B>>(&id));
        states.save(out_node, B::linear(x, weight, bias));
    }
}

/// The gradients of x and the weight, registered with their parents.
fn register_linear<B: Backend, const N: usize>(
    ops: &Ops<LinearState, N>,
    grad: &FloatTensor<B>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) {
    let (x_state, weight_state) = ops.state;
    if let Some(node) = &ops.parents[0] {
        let weight = checkpointer.retrieve_node_output(weight_state.expect("weight kept for x's gradient"));
        grads.register::<B>(node.id, B::linear_x_backward(weight, grad.clone()));
    }
    if let Some(node) = &ops.parents[1] {
        let x = checkpointer.retrieve_node_output(x_state.expect("x kept for the weight's gradient"));
        grads.register::<B>(node.id, B::linear_weight_backward(x, grad.clone()));
    }
}

impl<B: Backend> Backward<B, 2> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register_linear::<B, 2>(&ops, &grad, grads, checkpointer);
    }
}

impl<B: Backend> Backward<B, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        register_linear::<B, 3>(&ops, &grad, grads, checkpointer);
        if let Some(node) = &ops.parents[2] {
            grads.register::<B>(node.id, B::linear_bias_backward(grad));
        }
    }
}

impl<B: Backend, C: CheckpointStrategy> RecomputedLinearBackend for Autodiff<B, C> {
    fn recomputed_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        let retro = RetroLinear::<B> {
            x: x.node.id,
            weight: weight.node.id,
            bias: bias.as_ref().map(|b| b.node.id),
            backend: PhantomData,
        };
        let forward = |bias: Option<&FloatTensor<Self>>| {
            B::linear(
                x.primitive.clone(),
                weight.primitive.clone(),
                bias.map(|b| b.primitive.clone()),
            )
        };
        // Each input is kept only for the other's gradient, as burn's linear does.
        let state = |prep_x: &mut dyn FnMut(&FloatTensor<Self>) -> NodeId| -> LinearState {
            (
                weight.is_tracked().then(|| prep_x(&x)),
                x.is_tracked().then(|| prep_x(&weight)),
            )
        };
        match &bias {
            Some(b) => {
                let nodes = [x.node.clone(), weight.node.clone(), b.node.clone()];
                match LinearBackward
                    .prepare::<C>(nodes)
                    .memory_bound()
                    .retro_forward(retro)
                    .parents([&x, &weight, b])
                    .stateful()
                {
                    OpsKind::Tracked(mut prep) => {
                        let state = state(&mut |t| prep.checkpoint(t));
                        prep.finish(state, forward(Some(b)))
                    }
                    OpsKind::UnTracked(prep) => prep.finish(forward(Some(b))),
                }
            }
            None => {
                let nodes = [x.node.clone(), weight.node.clone()];
                match LinearBackward
                    .prepare::<C>(nodes)
                    .memory_bound()
                    .retro_forward(retro)
                    .parents([&x, &weight])
                    .stateful()
                {
                    OpsKind::Tracked(mut prep) => {
                        let state = state(&mut |t| prep.checkpoint(t));
                        prep.finish(state, forward(None))
                    }
                    OpsKind::UnTracked(prep) => prep.finish(forward(None)),
                }
            }
        }
    }
}
