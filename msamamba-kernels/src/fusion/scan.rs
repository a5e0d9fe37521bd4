//! The scan as one custom operation of burn-fusion.

use std::marker::PhantomData;

use burn::tensor::{Shape, Tensor};
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{primitive, queue_custom, register_outputs, tensor};
use crate::{ScanGrads, SelectiveScanBackend, SelectiveScanInput};

/// Which half of the scan an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Forward,
    Backward,
}

/// The queued operation. Inputs, in order: u, delta, a, b, c, d, delta_bias, then z when
/// `has_z`, then dy for the backward. Outputs: y; or the gradients in the same order as the
/// inputs (z's when `has_z`).
#[derive(Debug)]
struct ScanOp<B> {
    desc: CustomOpIr,
    pass: Pass,
    has_z: bool,
    delta_softplus: bool,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + SelectiveScanBackend> Operation<B::FusionRuntime> for ScanOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let mut inputs = self
            .desc
            .inputs
            .iter()
            .map(|ir| handles.get_float_tensor::<B>(ir))
            .collect::<Vec<_>>()
            .into_iter();
        let mut next = || inputs.next().expect("the operation declares every input it reads");
        let input = SelectiveScanInput::<B> {
            u: tensor(next()),
            delta: tensor(next()),
            a: tensor(next()),
            b: tensor(next()),
            c: tensor(next()),
            d: tensor(next()),
            delta_bias: tensor(next()),
            z: self.has_z.then(|| tensor(next())),
            delta_softplus: self.delta_softplus,
        };
        let outputs = match self.pass {
            Pass::Forward => vec![primitive(B::selective_scan(input))],
            Pass::Backward => {
                let g = B::selective_scan_backward(input, tensor(next()));
                let mut outputs = vec![
                    primitive(g.u),
                    primitive(g.delta),
                    primitive(g.a),
                    primitive(g.b),
                    primitive(g.c),
                    primitive(g.d),
                    primitive(g.delta_bias),
                ];
                outputs.extend(g.z.map(primitive));
                outputs
            }
        };
        register_outputs::<B>(&self.desc, handles, outputs);
    }
}

/// Queues the scan's inputs (and `dy`) as one custom operation with outputs of `shapes`.
fn queue<B: FusionBackend + SelectiveScanBackend>(
    input: SelectiveScanInput<Fusion<B>>,
    dy: Option<Tensor<Fusion<B>, 3>>,
    shapes: Vec<Shape>,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let (has_z, delta_softplus) = (input.z.is_some(), input.delta_softplus);
    let pass = if dy.is_some() { Pass::Backward } else { Pass::Forward };
    let mut inputs = vec![
        primitive(input.u),
        primitive(input.delta),
        primitive(input.a),
        primitive(input.b),
        primitive(input.c),
        primitive(input.d),
        primitive(input.delta_bias),
    ];
    inputs.extend(input.z.map(primitive));
    inputs.extend(dy.map(primitive));
    queue_custom::<B, _>("msamamba_selective_scan", inputs, shapes, |desc| ScanOp::<B> {
        desc,
        pass,
        has_z,
        delta_softplus,
        backend: PhantomData,
    })
}

impl<B: FusionBackend + SelectiveScanBackend> SelectiveScanBackend for Fusion<B> {
    fn selective_scan(input: SelectiveScanInput<Self>) -> Tensor<Self, 3> {
        let shape = input.u.shape();
        let [y] = <[_; 1]>::try_from(queue::<B>(input, None, vec![shape])).expect("one output");
        tensor(y)
    }

    fn selective_scan_backward(input: SelectiveScanInput<Self>, dy: Tensor<Self, 3>) -> ScanGrads<Self> {
        let mut shapes = vec![
            input.u.shape(),
            input.delta.shape(),
            input.a.shape(),
            input.b.shape(),
            input.c.shape(),
            input.d.shape(),
            input.delta_bias.shape(),
        ];
        shapes.extend(input.z.as_ref().map(Tensor::shape));
        let mut grads = queue::<B>(input, Some(dy), shapes).into_iter();
        let mut next = || grads.next().expect("one output per gradient");
        ScanGrads {
            u: tensor(next()),
            delta: tensor(next()),
            a: tensor(next()),
            b: tensor(next()),
            c: tensor(next()),
            d: tensor(next()),
            delta_bias: tensor(next()),
            z: grads.next().map(tensor),
        }
    }
}
