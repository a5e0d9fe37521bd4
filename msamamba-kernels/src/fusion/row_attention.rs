//! The row attention as one custom operation of burn-fusion.

use std::marker::PhantomData;

use burn::tensor::Tensor;
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{primitive, queue_custom, register_outputs, tensor};
use crate::{RowAttentionBackend, RowAttentionGrads, RowAttentionInput};

/// The queued operation. Inputs, in order: q, k, v, key_keep, then dout for the backward.
/// Outputs: the context; or dq, dk, dv.
#[derive(Debug)]
struct RowAttentionOp<B> {
    desc: CustomOpIr,
    n_heads: usize,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + RowAttentionBackend> Operation<B::FusionRuntime> for RowAttentionOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let mut inputs = self.desc.inputs.iter().map(|ir| handles.get_float_tensor::<B>(ir));
        let mut next = || inputs.next().expect("the operation declares every input it reads");
        let input = RowAttentionInput::<B> {
            q: tensor(next()),
            k: tensor(next()),
            v: tensor(next()),
            key_keep: tensor(next()),
            n_heads: self.n_heads,
        };
        let outputs = match inputs.next() {
            None => vec![primitive(B::row_attention(input))],
            Some(dout) => {
                let g = B::row_attention_backward(input, tensor(dout));
                vec![primitive(g.q), primitive(g.k), primitive(g.v)]
            }
        };
        register_outputs::<B>(&self.desc, handles, outputs);
    }
}

/// Queues the attention (and `dout`) as one custom operation with `outputs` tensors of q's shape.
fn queue<B: FusionBackend + RowAttentionBackend>(
    input: RowAttentionInput<Fusion<B>>,
    dout: Option<Tensor<Fusion<B>, 4>>,
    outputs: usize,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let n_heads = input.n_heads;
    let shape = input.q.shape();
    let mut inputs = vec![
        primitive(input.q),
        primitive(input.k),
        primitive(input.v),
        primitive(input.key_keep),
    ];
    inputs.extend(dout.map(primitive));
    let shapes = vec![shape; outputs];
    queue_custom::<B, _>("msamamba_row_attention", inputs, shapes, |desc| RowAttentionOp::<B> {
        desc,
        n_heads,
        backend: PhantomData,
    })
}

impl<B: FusionBackend + RowAttentionBackend> RowAttentionBackend for Fusion<B> {
    fn row_attention(input: RowAttentionInput<Self>) -> Tensor<Self, 4> {
        let [out] = <[_; 1]>::try_from(queue::<B>(input, None, 1)).expect("one output");
        tensor(out)
    }

    fn row_attention_backward(input: RowAttentionInput<Self>, dout: Tensor<Self, 4>) -> RowAttentionGrads<Self> {
        let [q, k, v] = <[_; 3]>::try_from(queue::<B>(input, Some(dout), 3)).expect("three outputs");
        RowAttentionGrads {
            q: tensor(q),
            k: tensor(k),
            v: tensor(v),
        }
    }
}
