//! The residual RMSNorm as one autodiff node, keeping only its two inputs for the backward.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::Tensor;
use burn::tensor::ops::FloatTensor;

use super::{inner, primitive};
use crate::{ResidualNormBackend, ResidualNormGrads, ResidualNormInput};

/// Backward of the residual RMSNorm; parents x, residual, gamma.
#[derive(Debug)]
struct ResidualNormBackward;

/// The checkpoint ids of x, the residual and gamma, and epsilon.
#[derive(Debug, Clone)]
struct ResidualNormState {
    inputs: [NodeId; 3],
    epsilon: f64,
}

impl<B: ResidualNormBackend> Backward<B, 3> for ResidualNormBackward {
    type State = ResidualNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dout = inner::<B, 2>(grads.consume::<B>(&ops.node));
        let [x, residual, gamma] = ops
            .state
            .inputs
            .map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let input = ResidualNormInput {
            x: inner(x),
            residual: inner(residual),
            gamma: inner(gamma),
            epsilon: ops.state.epsilon,
        };
        let ResidualNormGrads { sum, gamma } = B::residual_rms_norm_backward(input, dout);
        let [x_node, residual_node, gamma_node] = ops.parents;
        for (parent, grad) in [(x_node, primitive(sum.clone())), (residual_node, primitive(sum))] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
        if let Some(node) = gamma_node {
            grads.register::<B>(node.id, primitive(gamma));
        }
    }
}

impl<B: ResidualNormBackend, C: CheckpointStrategy> ResidualNormBackend for Autodiff<B, C> {
    fn residual_rms_norm(input: ResidualNormInput<Self>) -> Tensor<Self, 2> {
        let epsilon = input.epsilon;
        let x = primitive::<Self, 2>(input.x);
        let residual = primitive::<Self, 2>(input.residual);
        let gamma = primitive::<Self, 1>(input.gamma);
        let forward = |x: &FloatTensor<Self>, residual: &FloatTensor<Self>, gamma: &FloatTensor<Self>| {
            primitive(B::residual_rms_norm(ResidualNormInput {
                x: inner(x.primitive.clone()),
                residual: inner(residual.primitive.clone()),
                gamma: inner(gamma.primitive.clone()),
                epsilon,
            }))
        };
        let nodes = [x.node.clone(), residual.node.clone(), gamma.node.clone()];
        let out = match ResidualNormBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let inputs = [prep.checkpoint(&x), prep.checkpoint(&residual), prep.checkpoint(&gamma)];
                let out = forward(&x, &residual, &gamma);
                prep.finish(ResidualNormState { inputs, epsilon }, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &residual, &gamma)),
        };
        inner(out)
    }
}
