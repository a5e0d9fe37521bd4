//! The row attention as one autodiff node; the key mask is not differentiated.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, ops::FloatTensor};

use super::{inner, primitive};
use crate::{RowAttentionBackend, RowAttentionGrads, RowAttentionInput};

/// Backward of the row attention; parents q, k, v.
#[derive(Debug)]
struct RowAttentionBackward;

/// The checkpoint ids of q, k, v, the key mask and the head count.
#[derive(Debug, Clone)]
struct RowAttentionState<B: RowAttentionBackend> {
    inputs: [NodeId; 3],
    key_keep: FloatTensor<B>,
    n_heads: usize,
}

impl<B: RowAttentionBackend> Backward<B, 3> for RowAttentionBackward {
    type State = RowAttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dout = inner::<B, 4>(grads.consume::<B>(&ops.node));
        let [q, k, v] = ops
            .state
            .inputs
            .map(|id| inner::<B, 4>(checkpointer.retrieve_node_output::<FloatTensor<B>>(id)));
        let input = RowAttentionInput {
            q,
            k,
            v,
            key_keep: inner(ops.state.key_keep),
            n_heads: ops.state.n_heads,
        };
        let RowAttentionGrads { q, k, v } = B::row_attention_backward(input, dout);
        for (parent, grad) in ops.parents.into_iter().zip([q, k, v]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, primitive(grad));
            }
        }
    }
}

impl<B: RowAttentionBackend, C: CheckpointStrategy> RowAttentionBackend for Autodiff<B, C> {
    fn row_attention(input: RowAttentionInput<Self>) -> Tensor<Self, 4> {
        let n_heads = input.n_heads;
        let key_keep: FloatTensor<B> = primitive::<Self, 2>(input.key_keep).primitive;
        let tensors = [input.q, input.k, input.v].map(primitive::<Self, 4>);
        let forward = |tensors: [FloatTensor<Self>; 3], key_keep: FloatTensor<B>| {
            let [q, k, v] = tensors.map(|t| inner::<B, 4>(t.primitive));
            primitive(B::row_attention(RowAttentionInput {
                q,
                k,
                v,
                key_keep: inner(key_keep),
                n_heads,
            }))
        };
        let nodes = tensors.each_ref().map(|t| t.node.clone());
        let out = match RowAttentionBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let inputs = tensors.each_ref().map(|t| prep.checkpoint(t));
                let state = RowAttentionState {
                    inputs,
                    key_keep: key_keep.clone(),
                    n_heads,
                };
                prep.finish(state, forward(tensors, key_keep))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(tensors, key_keep)),
        };
        inner(out)
    }
}
