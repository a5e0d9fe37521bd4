//! The row attention as one custom operation of burn-fusion.

use std::marker::PhantomData;

use burn::tensor::{DType, Shape, Tensor};
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{OutputIr, like, primitive, queue_custom, register_outputs, tensor};
use crate::{RowAttentionBackend, RowAttentionInput, RowAttentionOutput};

/// The queued operation. Inputs, in order: qkv, key_keep, then for the backward the saved output
/// and statistics and dout. Outputs: the context and the statistics; or qkv's gradient.
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
            qkv: tensor(next()),
            key_keep: tensor(next()),
            n_heads: self.n_heads,
        };
        let outputs = match inputs.next() {
            None => {
                let saved = B::row_attention(input);
                vec![primitive(saved.out), primitive(saved.stats)]
            }
            Some(out) => {
                let mut next = || inputs.next().expect("the backward declares its saved tensors and dout");
                let saved = RowAttentionOutput {
                    out: tensor(out),
                    stats: tensor(next()),
                };
                vec![primitive(B::row_attention_backward(input, saved, tensor(next())))]
            }
        };
        register_outputs::<B>(&self.desc, handles, outputs);
    }
}

/// Queues the attention (and, for the backward, `extra`: the saved output, statistics and dout)
/// as one custom operation with `outputs`.
fn queue<B: FusionBackend + RowAttentionBackend>(
    input: RowAttentionInput<Fusion<B>>,
    extra: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: Vec<OutputIr>,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let n_heads = input.n_heads;
    let mut inputs = vec![primitive(input.qkv), primitive(input.key_keep)];
    inputs.extend(extra);
    queue_custom::<B, _>("msamamba_row_attention", inputs, outputs, |desc| RowAttentionOp::<B> {
        desc,
        n_heads,
        backend: PhantomData,
    })
}

impl<B: FusionBackend + RowAttentionBackend> RowAttentionBackend for Fusion<B> {
    fn row_attention(input: RowAttentionInput<Self>) -> RowAttentionOutput<Self> {
        let [batch, rows, len, width] = input.dims();
        // The softmax statistics stay f32 whatever the activations' type.
        let outputs = vec![
            (Shape::new([batch, rows, len, width]), input.qkv.dtype()),
            (Shape::new([2, batch, len, input.n_heads, rows]), DType::F32),
        ];
        let [out, stats] = <[_; 2]>::try_from(queue::<B>(input, vec![], outputs)).expect("two outputs");
        RowAttentionOutput {
            out: tensor(out),
            stats: tensor(stats),
        }
    }

    fn row_attention_backward(
        input: RowAttentionInput<Self>,
        saved: RowAttentionOutput<Self>,
        dout: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        let outputs = vec![like(&input.qkv)];
        let extra = vec![primitive(saved.out), primitive(saved.stats), primitive(dout)];
        let [grad] = <[_; 1]>::try_from(queue::<B>(input, extra, outputs)).expect("one output");
        tensor(grad)
    }
}
