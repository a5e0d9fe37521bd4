//! The fused operations as custom operations of burn-fusion, so that burn's default `Wgpu` and
//! `Cuda` backends (fusion on) run the cube kernels: the fuser flushes the element-wise work queued
//! before the operation, then the inner backend runs its kernel on the resolved buffers.

mod adamw;
mod causal_conv;
mod column_sums;
mod residual_norm;
mod row_attention;
mod scan;

use burn::tensor::{DType, Shape, Tensor, TensorPrimitive, backend::Backend};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

fn tensor<B: Backend, const D: usize>(primitive: B::FloatTensorPrimitive) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

fn primitive<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> B::FloatTensorPrimitive {
    tensor.into_primitive().tensor()
}

/// The shape and element type of one output of a custom operation.
type OutputIr = (Shape, DType);

/// An output of `t`'s shape and element type.
fn like<B: Backend, const D: usize>(t: &Tensor<B, D>) -> OutputIr {
    (t.shape(), t.dtype())
}

/// Queues one custom operation `name` reading `inputs` and writing new tensors of `outputs`;
/// `op` builds the operation from its description.
fn queue_custom<B: FusionBackend, O: Operation<B::FusionRuntime> + 'static>(
    name: &'static str,
    inputs: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: Vec<OutputIr>,
    op: impl FnOnce(CustomOpIr) -> O,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(&inputs);
    let outputs: Vec<TensorIr> = outputs
        .into_iter()
        .map(|(shape, dtype)| TensorIr::uninit(client.create_empty_handle(), shape, dtype))
        .collect();
    let inputs: Vec<TensorIr> = inputs.into_iter().map(FusionTensor::into_ir).collect();
    let desc = CustomOpIr::new(name, &inputs, &outputs);
    client.register(streams, OperationIr::Custom(desc.clone()), op(desc))
}

/// Hands a custom operation's results to the fuser, under the ids its description declared.
fn register_outputs<B: FusionBackend>(
    desc: &CustomOpIr,
    handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
    outputs: Vec<B::FloatTensorPrimitive>,
) {
    for (ir, output) in desc.outputs.iter().zip(outputs) {
        handles.register_float_tensor::<B>(&ir.id, output);
    }
}
