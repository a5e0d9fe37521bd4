//! The residual RMSNorm as one custom operation of burn-fusion.

use std::marker::PhantomData;

use burn::tensor::Tensor;
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{like, primitive, queue_custom, register_outputs, tensor};
use crate::{ResidualNormBackend, ResidualNormGrads, ResidualNormInput};

/// The queued operation. Inputs, in order: x, residual, gamma, then dout for the backward.
/// Outputs: the normalised sum; or the sum's gradient and gamma's.
#[derive(Debug)]
struct ResidualNormOp<B> {
    desc: CustomOpIr,
    epsilon: f64,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + ResidualNormBackend> Operation<B::FusionRuntime> for ResidualNormOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let mut inputs = self.desc.inputs.iter().map(|ir| handles.get_float_tensor::<B>(ir));
        let mut next = || inputs.next().expect("the operation declares every input it reads");
        let input = ResidualNormInput::<B> {
            x: tensor(next()),
            residual: tensor(next()),
            gamma: tensor(next()),
            epsilon: self.epsilon,
        };
        let outputs = match inputs.next() {
            None => vec![primitive(B::residual_rms_norm(input))],
            Some(dout) => {
                let g = B::residual_rms_norm_backward(input, tensor(dout));
                vec![primitive(g.sum), primitive(g.gamma)]
            }
        };
        register_outputs::<B>(&self.desc, handles, outputs);
    }
}

/// Queues the norm (and `dout`) as one custom operation: outputs of x's shape, then (backward)
/// one of gamma's.
fn queue<B: FusionBackend + ResidualNormBackend>(
    input: ResidualNormInput<Fusion<B>>,
    dout: Option<Tensor<Fusion<B>, 2>>,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let epsilon = input.epsilon;
    let mut outputs = vec![like(&input.x)];
    outputs.extend(dout.is_some().then(|| like(&input.gamma)));
    let mut inputs = vec![primitive(input.x), primitive(input.residual), primitive(input.gamma)];
    inputs.extend(dout.map(primitive));
    queue_custom::<B, _>("msamamba_residual_rms_norm", inputs, outputs, |desc| ResidualNormOp::<
        B,
    > {
        desc,
        epsilon,
        backend: PhantomData,
    })
}

impl<B: FusionBackend + ResidualNormBackend> ResidualNormBackend for Fusion<B> {
    fn residual_rms_norm(input: ResidualNormInput<Self>) -> Tensor<Self, 2> {
        let [out] = <[_; 1]>::try_from(queue::<B>(input, None)).expect("one output");
        tensor(out)
    }

    fn residual_rms_norm_backward(input: ResidualNormInput<Self>, dout: Tensor<Self, 2>) -> ResidualNormGrads<Self> {
        let [sum, gamma] = <[_; 2]>::try_from(queue::<B>(input, Some(dout))).expect("two outputs");
        ResidualNormGrads {
            sum: tensor(sum),
            gamma: tensor(gamma),
        }
    }
}
