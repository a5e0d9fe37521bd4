//! The causal convolution as one custom operation of burn-fusion.

use std::marker::PhantomData;

use burn::tensor::Tensor;
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{like, primitive, queue_custom, register_outputs, tensor};
use crate::{CausalConvBackend, CausalConvGrads, CausalConvInput};

/// The queued operation. Inputs, in order: x, weight, bias, then dy for the backward. Outputs:
/// y; or the gradients of x, weight and bias.
#[derive(Debug)]
struct CausalConvOp<B> {
    desc: CustomOpIr,
    silu: bool,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + CausalConvBackend> Operation<B::FusionRuntime> for CausalConvOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let mut inputs = self.desc.inputs.iter().map(|ir| handles.get_float_tensor::<B>(ir));
        let mut next = || inputs.next().expect("the operation declares every input it reads");
        let input = CausalConvInput::<B> {
            x: tensor(next()),
            weight: tensor(next()),
            bias: tensor(next()),
            silu: self.silu,
        };
        let outputs = match inputs.next() {
            None => vec![primitive(B::causal_conv(input))],
            Some(dy) => {
                let g = B::causal_conv_backward(input, tensor(dy));
                vec![primitive(g.x), primitive(g.weight), primitive(g.bias)]
            }
        };
        register_outputs::<B>(&self.desc, handles, outputs);
    }
}

/// Queues the convolution (and `dy`) as one custom operation: an output of x's shape, then
/// (backward) the weight's and the bias's.
fn queue<B: FusionBackend + CausalConvBackend>(
    input: CausalConvInput<Fusion<B>>,
    dy: Option<Tensor<Fusion<B>, 3>>,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let silu = input.silu;
    let mut outputs = vec![like(&input.x)];
    if dy.is_some() {
        outputs.extend([like(&input.weight), like(&input.bias)]);
    }
    let mut inputs = vec![primitive(input.x), primitive(input.weight), primitive(input.bias)];
    inputs.extend(dy.map(primitive));
    queue_custom::<B, _>("msamamba_causal_conv", inputs, outputs, |desc| CausalConvOp::<B> {
        desc,
        silu,
        backend: PhantomData,
    })
}

impl<B: FusionBackend + CausalConvBackend> CausalConvBackend for Fusion<B> {
    fn causal_conv(input: CausalConvInput<Self>) -> Tensor<Self, 3> {
        let [y] = <[_; 1]>::try_from(queue::<B>(input, None)).expect("one output");
        tensor(y)
    }

    fn causal_conv_backward(input: CausalConvInput<Self>, dy: Tensor<Self, 3>) -> CausalConvGrads<Self> {
        let [x, weight, bias] = <[_; 3]>::try_from(queue::<B>(input, Some(dy))).expect("three outputs");
        CausalConvGrads {
            x: tensor(x),
            weight: tensor(weight),
            bias: tensor(bias),
        }
    }
}
