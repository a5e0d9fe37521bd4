//! The AdamW step as one custom operation of burn-fusion.

use std::marker::PhantomData;

use burn::tensor::Tensor;
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{primitive, queue_custom, register_outputs, tensor};
use crate::adamw::{AdamWBackend, AdamWStep, AdamWTensors};

/// The queued operation. Inputs: parameter, gradient, first and second moment; outputs: the new
/// parameter and moments.
#[derive(Debug)]
struct AdamWOp<B> {
    desc: CustomOpIr,
    step: AdamWStep,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + AdamWBackend> Operation<B::FusionRuntime> for AdamWOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let [param, grad, moment_1, moment_2] =
            [0, 1, 2, 3].map(|i| tensor::<B, 1>(handles.get_float_tensor::<B>(&self.desc.inputs[i])));
        let state = B::adamw_step(
            AdamWTensors {
                param,
                moment_1,
                moment_2,
            },
            grad,
            &self.step,
        );
        let outputs = vec![
            primitive(state.param),
            primitive(state.moment_1),
            primitive(state.moment_2),
        ];
        register_outputs::<B>(&self.desc, handles, outputs);
    }
}

impl<B: FusionBackend + AdamWBackend> AdamWBackend for Fusion<B> {
    fn adamw_step(state: AdamWTensors<Self>, grad: Tensor<Self, 1>, step: &AdamWStep) -> AdamWTensors<Self> {
        let output = super::like(&state.param);
        let step = *step;
        let inputs = vec![
            primitive(state.param),
            primitive(grad),
            primitive(state.moment_1),
            primitive(state.moment_2),
        ];
        let outputs = queue_custom::<B, _>("msamamba_adamw", inputs, vec![output; 3], |desc| AdamWOp::<B> {
            desc,
            step,
            backend: PhantomData,
        });
        let [param, moment_1, moment_2] = <[_; 3]>::try_from(outputs).expect("three outputs");
        AdamWTensors {
            param: tensor(param),
            moment_1: tensor(moment_1),
            moment_2: tensor(moment_2),
        }
    }
}
