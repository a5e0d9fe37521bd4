//! The scan as one autodiff node, which keeps the checkpoints the backend's forward made for its
//! backward (see [`ScanOutput`]).

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, ops::FloatTensor};

use super::{inner, primitive};
use crate::{ScanCheckpoints, ScanGrads, ScanOutput, SelectiveScanBackend, SelectiveScanInput};

/// Backward of the scan with `N` tensor inputs: 7 without the gate z, 8 with it.
#[derive(Debug)]
struct ScanBackward<const N: usize>;

/// The inputs' checkpoint ids in [`ScanBackward`]'s parent order, the softplus flag, and what
/// the forward saved.
#[derive(Debug, Clone)]
struct ScanState<B: SelectiveScanBackend, const N: usize> {
    inputs: [NodeId; N],
    delta_softplus: bool,
    checkpoints: Option<ScanCheckpoints<B>>,
}

impl<B: SelectiveScanBackend, const N: usize> Backward<B, N> for ScanBackward<N> {
    type State = ScanState<B, N>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let dy = inner::<B, 3>(grads.consume::<B>(&ops.node));
        let mut saved = ops
            .state
            .inputs
            .map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id))
            .into_iter();
        // Parent order: u, delta, a, b, c, d, delta_bias, then z when N == 8.
        let mut next = || saved.next().expect("one checkpoint per parent");
        let input = SelectiveScanInput::<B> {
            u: inner(next()),
            delta: inner(next()),
            a: inner(next()),
            b: inner(next()),
            c: inner(next()),
            d: inner(next()),
            delta_bias: inner(next()),
            z: (N == 8).then(|| inner(next())),
            delta_softplus: ops.state.delta_softplus,
        };
        let ScanGrads {
            u,
            delta,
            a,
            b,
            c,
            d,
            z,
            delta_bias,
        } = B::selective_scan_backward(input, ops.state.checkpoints, dy);
        let mut computed = vec![
            primitive(u),
            primitive(delta),
            primitive(a),
            primitive(b),
            primitive(c),
            primitive(d),
            primitive(delta_bias),
        ];
        computed.extend(z.map(primitive));
        for (parent, grad) in ops.parents.into_iter().zip(computed) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Records the scan as one node with `N` parents, in [`ScanBackward`]'s order.
fn record<B: SelectiveScanBackend, C: CheckpointStrategy, const N: usize>(
    tensors: [FloatTensor<Autodiff<B, C>>; N],
    delta_softplus: bool,
) -> FloatTensor<Autodiff<B, C>> {
    let input = || {
        let mut prims = tensors.iter().map(|t| t.primitive.clone());
        let mut next = || prims.next().expect("one primitive per parent");
        SelectiveScanInput::<B> {
            u: inner(next()),
            delta: inner(next()),
            a: inner(next()),
            b: inner(next()),
            c: inner(next()),
            d: inner(next()),
            delta_bias: inner(next()),
            z: (N == 8).then(|| inner(next())),
            delta_softplus,
        }
    };
    let nodes = tensors.each_ref().map(|t| t.node.clone());
    match ScanBackward::<N>.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let ScanOutput { y, checkpoints } = B::selective_scan_saving(input());
            let state = ScanState {
                inputs: tensors.each_ref().map(|t| prep.checkpoint(t)),
                delta_softplus,
                checkpoints,
            };
            prep.finish(state, primitive(y))
        }
        OpsKind::UnTracked(prep) => prep.finish(primitive(B::selective_scan(input()))),
    }
}

impl<B: SelectiveScanBackend, C: CheckpointStrategy> SelectiveScanBackend for Autodiff<B, C> {
    fn selective_scan(input: SelectiveScanInput<Self>) -> Tensor<Self, 3> {
        let SelectiveScanInput {
            u,
            delta,
            a,
            b,
            c,
            d,
            z,
            delta_bias,
            delta_softplus,
        } = input;
        let base = [
            primitive(u),
            primitive(delta),
            primitive(a),
            primitive(b),
            primitive(c),
            primitive(d),
            primitive(delta_bias),
        ];
        let out = match z {
            None => record::<B, C, 7>(base, delta_softplus),
            Some(z) => {
                let [u, delta, a, b, c, d, delta_bias] = base;
                record::<B, C, 8>([u, delta, a, b, c, d, delta_bias, primitive(z)], delta_softplus)
            }
        };
        inner(out)
    }
}
