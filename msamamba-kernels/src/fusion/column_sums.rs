//! The linears' column sums as one custom operation of burn-fusion (their linear is burn's, queued
//! like any other matmul; only autodiff treats it differently).

use std::marker::PhantomData;

use burn::tensor::{Shape, TensorMetadata, ops::FloatTensor};
use burn_fusion::stream::Operation;
use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
use burn_ir::{CustomOpIr, HandleContainer};

use super::{queue_custom, register_outputs};
use crate::RecomputedLinearBackend;

/// The queued operation: input t [rows, cols], output its column sums [cols].
#[derive(Debug)]
struct ColumnSumsOp<B> {
    desc: CustomOpIr,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + RecomputedLinearBackend> Operation<B::FusionRuntime> for ColumnSumsOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let t = handles.get_float_tensor::<B>(&self.desc.inputs[0]);
        register_outputs::<B>(&self.desc, handles, vec![B::column_sums(t)]);
    }
}

impl<B: FusionBackend + RecomputedLinearBackend> RecomputedLinearBackend for Fusion<B> {
    fn column_sums(t: FloatTensor<Self>) -> FloatTensor<Self> {
        let cols = t.shape()[1];
        let [sums] = <[_; 1]>::try_from(queue_custom::<B, _>(
            "msamamba_column_sums",
            vec![t],
            vec![Shape::new([cols])],
            |desc| ColumnSumsOp::<B> {
                desc,
                backend: PhantomData,
            },
        ))
        .expect("one output");
        sums
    }
}
