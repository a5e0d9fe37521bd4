//! The MLP as one autodiff node keeping its input and weights only: its backward recomputes the
//! hidden layer.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::Tensor;
use burn::tensor::ops::FloatTensor;

use super::{inner, primitive};
use crate::{MlpBackend, MlpGrads, MlpInput};

/// Backward of the MLP; parents x, up weight, up bias, down weight, down bias.
#[derive(Debug)]
struct MlpBackward;

impl<B: MlpBackend> Backward<B, 5> for MlpBackward {
    /// The checkpoint ids of the parents.
    type State = [NodeId; 5];

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dy = inner::<B, 3>(grads.consume::<B>(&ops.node));
        let [x, up_weight, up_bias, down_weight, down_bias] = ops
            .state
            .map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let input = MlpInput {
            x: inner(x),
            up_weight: inner(up_weight),
            up_bias: inner(up_bias),
            down_weight: inner(down_weight),
            down_bias: inner(down_bias),
        };
        let g: MlpGrads<B> = B::mlp_backward(input, dy);
        let grads_in_order = [
            primitive(g.x),
            primitive(g.up_weight),
            primitive(g.up_bias),
            primitive(g.down_weight),
            primitive(g.down_bias),
        ];
        for (parent, grad) in ops.parents.into_iter().zip(grads_in_order) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: MlpBackend, C: CheckpointStrategy> MlpBackend for Autodiff<B, C> {
    fn mlp(input: MlpInput<Self>) -> Tensor<Self, 3> {
        let x = primitive::<Self, 3>(input.x);
        let up_weight = primitive::<Self, 2>(input.up_weight);
        let up_bias = primitive::<Self, 1>(input.up_bias);
        let down_weight = primitive::<Self, 2>(input.down_weight);
        let down_bias = primitive::<Self, 1>(input.down_bias);
        let forward = || {
            primitive(B::mlp(MlpInput {
                x: inner(x.primitive.clone()),
                up_weight: inner(up_weight.primitive.clone()),
                up_bias: inner(up_bias.primitive.clone()),
                down_weight: inner(down_weight.primitive.clone()),
                down_bias: inner(down_bias.primitive.clone()),
            }))
        };
        let parents = [&x, &up_weight, &up_bias, &down_weight, &down_bias];
        let out = match MlpBackward
            .prepare::<C>(parents.map(|p| p.node.clone()))
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = parents.map(|p| prep.checkpoint(p));
                prep.finish(state, forward())
            }
            OpsKind::UnTracked(prep) => prep.finish(forward()),
        };
        inner(out)
    }
}
