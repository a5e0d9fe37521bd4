//! The row attention as one autodiff node; the key mask is not differentiated. The node keeps the
//! forward's output and softmax statistics for its backward (see [`RowAttentionOutput`]).

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, ops::FloatTensor};

use super::{inner, primitive};
use crate::{RowAttentionBackend, RowAttentionGrads, RowAttentionInput, RowAttentionOutput};

/// Backward of the row attention; parents q, k, v.
#[derive(Debug)]
struct RowAttentionBackward;

/// The checkpoint ids of q, k, v, the key mask, the head count and what the forward saved.
#[derive(Debug, Clone)]
struct RowAttentionState<B: RowAttentionBackend> {
    inputs: [NodeId; 3],
    key_keep: FloatTensor<B>,
    n_heads: usize,
    saved: RowAttentionOutput<B>,
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
        let RowAttentionGrads { q, k, v } = B::row_attention_backward(input, ops.state.saved, dout);
        for (parent, grad) in ops.parents.into_iter().zip([q, k, v]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, primitive(grad));
            }
        }
    }
}

impl<B: RowAttentionBackend, C: CheckpointStrategy> RowAttentionBackend for Autodiff<B, C> {
    fn row_attention(input: RowAttentionInput<Self>) -> RowAttentionOutput<Self> {
        let n_heads = input.n_heads;
        let key_keep: FloatTensor<B> = primitive::<Self, 2>(input.key_keep).primitive;
        let tensors = [input.q, input.k, input.v].map(primitive::<Self, 4>);
        let [q, k, v] = tensors.each_ref().map(|t| inner::<B, 4>(t.primitive.clone()));
        let saved = B::row_attention(RowAttentionInput {
            q,
            k,
            v,
            key_keep: inner(key_keep.clone()),
            n_heads,
        });
        let stats = Tensor::from_inner(saved.stats.clone());
        let out = primitive(saved.out.clone());
        let nodes = tensors.each_ref().map(|t| t.node.clone());
        let out = match RowAttentionBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = RowAttentionState {
                    inputs: tensors.each_ref().map(|t| prep.checkpoint(t)),
                    key_keep,
                    n_heads,
                    saved,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        RowAttentionOutput { out: inner(out), stats }
    }
}
