//! The causal convolution (with its activation) as one autodiff node, keeping only its inputs.
//!
//! The node is memory-bound: under balanced checkpointing its output is not kept for the
//! consumers' backwards (the step-size projection and the scan both need it) but recomputed from
//! the inputs, which the in-projection keeps anyway (mamba_ssm's fused Mamba does the same).

use std::marker::PhantomData;

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::retro_forward::RetroForward;
use burn::backend::autodiff::checkpoint::state::BackwardStates;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::Tensor;
use burn::tensor::ops::FloatTensor;

use super::{inner, primitive};
use crate::{CausalConvBackend, CausalConvGrads, CausalConvInput};

/// Backward of the causal convolution; parents x, weight, bias.
#[derive(Debug)]
struct CausalConvBackward;

/// The checkpoint ids of x, weight and bias, and whether SiLU follows.
#[derive(Debug, Clone)]
struct CausalConvState {
    inputs: [NodeId; 3],
    silu: bool,
}

/// Recomputes the convolution from the parents' states when a consumer's backward needs it.
#[derive(Debug)]
struct RetroCausalConv<B> {
    state: CausalConvState,
    backend: PhantomData<B>,
}

impl<B: CausalConvBackend> RetroForward for RetroCausalConv<B> {
    fn forward(&self, states: &mut BackwardStates, out_node: NodeId) {
        let [x, weight, bias] = self.state.inputs.map(|id| states.get_state::<FloatTensor<B>>(&id));
        let y = B::causal_conv(CausalConvInput {
            x: inner(x),
            weight: inner(weight),
            bias: inner(bias),
            silu: self.state.silu,
        });
        states.save(out_node, primitive(y));
    }
}

impl<B: CausalConvBackend> Backward<B, 3> for CausalConvBackward {
    type State = CausalConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dy = inner::<B, 3>(grads.consume::<B>(&ops.node));
        let [x, weight, bias] = ops
            .state
            .inputs
            .map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let input = CausalConvInput {
            x: inner(x),
            weight: inner(weight),
            bias: inner(bias),
            silu: ops.state.silu,
        };
        let CausalConvGrads { x, weight, bias } = B::causal_conv_backward(input, dy);
        for (parent, grad) in ops
            .parents
            .into_iter()
            .zip([primitive(x), primitive(weight), primitive(bias)])
        {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: CausalConvBackend, C: CheckpointStrategy> CausalConvBackend for Autodiff<B, C> {
    fn causal_conv(input: CausalConvInput<Self>) -> Tensor<Self, 3> {
        let silu = input.silu;
        let x = primitive::<Self, 3>(input.x);
        let weight = primitive::<Self, 2>(input.weight);
        let bias = primitive::<Self, 1>(input.bias);
        let forward = || {
            primitive(B::causal_conv(CausalConvInput {
                x: inner(x.primitive.clone()),
                weight: inner(weight.primitive.clone()),
                bias: inner(bias.primitive.clone()),
                silu,
            }))
        };
        let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
        let retro = RetroCausalConv::<B> {
            state: CausalConvState {
                inputs: [x.node.id, weight.node.id, bias.node.id],
                silu,
            },
            backend: PhantomData,
        };
        let prepared = CausalConvBackward
            .prepare::<C>(nodes)
            .memory_bound()
            .retro_forward(retro)
            .parents([&x, &weight, &bias]);
        let out = match prepared.stateful() {
            OpsKind::Tracked(mut prep) => {
                let inputs = [prep.checkpoint(&x), prep.checkpoint(&weight), prep.checkpoint(&bias)];
                prep.finish(CausalConvState { inputs, silu }, forward())
            }
            OpsKind::UnTracked(prep) => prep.finish(forward()),
        };
        inner(out)
    }
}
