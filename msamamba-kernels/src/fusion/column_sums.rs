//! The linears' products and column sums as custom operations of burn-fusion: the inner backend
//! picks its own matmul strategy (burn's queued matmul would take burn's), and sums on its kernel.

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

/// The queued operation: inputs lhs [..., m, k] and rhs [..., k, n], output their product.
#[derive(Debug)]
struct MatmulOp<B> {
    desc: CustomOpIr,
    backend: PhantomData<B>,
}

impl<B: FusionBackend + RecomputedLinearBackend> Operation<B::FusionRuntime> for MatmulOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let lhs = handles.get_float_tensor::<B>(&self.desc.inputs[0]);
        let rhs = handles.get_float_tensor::<B>(&self.desc.inputs[1]);
        register_outputs::<B>(&self.desc, handles, vec![B::projection_matmul(lhs, rhs)]);
    }
}

impl<B: FusionBackend + RecomputedLinearBackend> RecomputedLinearBackend for Fusion<B> {
    fn matmul_accelerates(dtype: burn::tensor::DType, device: &Self::Device) -> bool {
        B::matmul_accelerates(dtype, device)
    }

    fn projection_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        let mut dims = lhs.shape().to_vec();
        let rank = dims.len();
        dims[rank - 1] = rhs.shape()[rank - 1];
        let output = (Shape::from(dims), lhs.dtype);
        let [out] = <[_; 1]>::try_from(queue_custom::<B, _>(
            "msamamba_projection_matmul",
            vec![lhs, rhs],
            vec![output],
            |desc| MatmulOp::<B> {
                desc,
                backend: PhantomData,
            },
        ))
        .expect("one output");
        out
    }

    fn column_sums(t: FloatTensor<Self>) -> FloatTensor<Self> {
        let output = (Shape::new([t.shape()[1]]), t.dtype);
        let [sums] = <[_; 1]>::try_from(queue_custom::<B, _>(
            "msamamba_column_sums",
            vec![t],
            vec![output],
            |desc| ColumnSumsOp::<B> {
                desc,
                backend: PhantomData,
            },
        ))
        .expect("one output");
        sums
    }
}
