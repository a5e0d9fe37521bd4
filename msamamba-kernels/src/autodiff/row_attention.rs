//! The row attention as one autodiff node over qkv; the key mask is not differentiated. The node
//! keeps the forward's output and softmax statistics for its backward (see [`RowAttentionOutput`]).

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, ops::FloatTensor};

use super::{inner, primitive};
use crate::{RowAttentionBackend, RowAttentionInput, RowAttentionOutput};

/// Backward of the row attention; parent qkv.
#[derive(Debug)]
struct RowAttentionBackward;

/// The checkpoint id of qkv, the key mask, the head count and what the forward saved.
#[derive(Debug, Clone)]
struct RowAttentionState<B: RowAttentionBackend> {
    qkv: NodeId,
    key_keep: FloatTensor<B>,
    n_heads: usize,
    saved: RowAttentionOutput<B>,
}

impl<B: RowAttentionBackend> Backward<B, 1> for RowAttentionBackward {
    type State = RowAttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dout = inner::<B, 4>(grads.consume::<B>(&ops.node));
        let input = RowAttentionInput {
            qkv: inner(checkpointer.retrieve_node_output::<FloatTensor<B>>(ops.state.qkv)),
            key_keep: inner(ops.state.key_keep),
            n_heads: ops.state.n_heads,
        };
        let grad = B::row_attention_backward(input, ops.state.saved, dout);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, primitive(grad));
        }
    }
}

impl<B: RowAttentionBackend, C: CheckpointStrategy> RowAttentionBackend for Autodiff<B, C> {
    fn row_attention(input: RowAttentionInput<Self>) -> RowAttentionOutput<Self> {
        let n_heads = input.n_heads;
        let key_keep: FloatTensor<B> = primitive::<Self, 2>(input.key_keep).primitive;
        let qkv = primitive::<Self, 4>(input.qkv);
        let saved = B::row_attention(RowAttentionInput {
            qkv: inner(qkv.primitive.clone()),
            key_keep: inner(key_keep.clone()),
            n_heads,
        });
        let stats = Tensor::from_inner(saved.stats.clone());
        let out = primitive(saved.out.clone());
        let out = match RowAttentionBackward
            .prepare::<C>([qkv.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = RowAttentionState {
                    qkv: prep.checkpoint(&qkv),
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
