//! The scan as one custom operation of burn-fusion.

use std::marker::PhantomData;

use burn::tensor::{DType, Shape, Tensor};
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{OutputIr, like, primitive, queue_custom, register_outputs, tensor};
use crate::{ScanCheckpoints, ScanGrads, ScanOutput, SelectiveScanBackend, SelectiveScanInput};

/// Which half of the scan an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Forward,
    /// The forward, with the backward's checkpoints as two more outputs.
    ForwardSaving,
    /// The backward, from checkpoints given as two more inputs (before dy) when `saved`.
    Backward {
        saved: bool,
    },
}

/// The queued operation. Inputs, in order: u, delta, a, b, c, d, delta_bias, then z when
/// `has_z`, then for the backward the checkpoints' states and delta' (when saved) and dy.
/// Outputs: y (and the checkpoints); or the gradients in the same order as the inputs (z's when
/// `has_z`).
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
            Pass::ForwardSaving => {
                let out = B::selective_scan_saving(input);
                let saved = out.checkpoints.expect("the backend's checkpoint shapes promised them");
                vec![primitive(out.y), primitive(saved.states), primitive(saved.delta)]
            }
            Pass::Backward { saved } => {
                let checkpoints = saved.then(|| ScanCheckpoints {
                    states: tensor(next()),
                    delta: tensor(next()),
                });
                let g = B::selective_scan_backward(input, checkpoints, tensor(next()));
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

/// Queues the scan's inputs (and for the backward `extra`: the checkpoints and dy) as one custom
/// operation of `pass` with `outputs`.
fn queue<B: FusionBackend + SelectiveScanBackend>(
    input: SelectiveScanInput<Fusion<B>>,
    pass: Pass,
    extra: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: Vec<OutputIr>,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let (has_z, delta_softplus) = (input.z.is_some(), input.delta_softplus);
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
    inputs.extend(extra);
    queue_custom::<B, _>("msamamba_selective_scan", inputs, outputs, |desc| ScanOp::<B> {
        desc,
        pass,
        has_z,
        delta_softplus,
        backend: PhantomData,
    })
}

impl<B: FusionBackend + SelectiveScanBackend> SelectiveScanBackend for Fusion<B> {
    fn selective_scan(input: SelectiveScanInput<Self>) -> Tensor<Self, 3> {
        let output = like(&input.u);
        let [y] = <[_; 1]>::try_from(queue::<B>(input, Pass::Forward, vec![], vec![output])).expect("one output");
        tensor(y)
    }

    fn selective_scan_saving(input: SelectiveScanInput<Self>) -> ScanOutput<Self> {
        let [batch, dim, len] = input.u.dims();
        let n_state = input.a.dims()[1];
        let shapes = input
            .activation_dtype()
            .and_then(|dtype| B::scan_checkpoint_shapes([batch, dim, n_state, len], dtype, &input.u.device()));
        let Some([states, delta]) = shapes else {
            return ScanOutput {
                y: Self::selective_scan(input),
                checkpoints: None,
            };
        };
        // The checkpoints stay f32 whatever the activations' type.
        let outputs = vec![
            like(&input.u),
            (Shape::from(states), DType::F32),
            (Shape::from(delta), DType::F32),
        ];
        let [y, states, delta] =
            <[_; 3]>::try_from(queue::<B>(input, Pass::ForwardSaving, vec![], outputs)).expect("three outputs");
        ScanOutput {
            y: tensor(y),
            checkpoints: Some(ScanCheckpoints {
                states: tensor(states),
                delta: tensor(delta),
            }),
        }
    }

    fn selective_scan_backward(
        input: SelectiveScanInput<Self>,
        checkpoints: Option<ScanCheckpoints<Self>>,
        dy: Tensor<Self, 3>,
    ) -> ScanGrads<Self> {
        let mut outputs = vec![
            like(&input.u),
            like(&input.delta),
            like(&input.a),
            like(&input.b),
            like(&input.c),
            like(&input.d),
            like(&input.delta_bias),
        ];
        outputs.extend(input.z.as_ref().map(like));
        let pass = Pass::Backward {
            saved: checkpoints.is_some(),
        };
        let mut extra = checkpoints
            .map(|c| vec![primitive(c.states), primitive(c.delta)])
            .unwrap_or_default();
        extra.push(primitive(dy));
        let mut grads = queue::<B>(input, pass, extra, outputs).into_iter();
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
