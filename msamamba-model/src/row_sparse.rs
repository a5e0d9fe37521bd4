//! Row-sparse execution: only the kept rows of each MSA go through the scan.
//!
//! Training keeps the target row and about half of the others; the scan, the most expensive
//! part of a block, then costs in proportion to the kept rows.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

/// Which of the B * M rows are kept, as flat indices into [B * M].
#[derive(Debug, Clone)]
pub struct RowSelection<B: Backend> {
    /// Indices of the kept rows: \[R\] Int.
    pub kept: Tensor<B, 1, Int>,
    /// B * M.
    pub total: usize,
}

impl<B: Backend> RowSelection<B> {
    /// # Shapes
    /// row_keep: [B, M] Bool
    pub fn new(row_keep: Tensor<B, 2, Bool>) -> Self {
        let [batch, rows] = row_keep.dims();
        let kept = row_keep.reshape([batch * rows]).argwhere().squeeze_dim::<1>(1); // [R]
        Self {
            kept,
            total: batch * rows,
        }
    }

    /// The kept rows.
    ///
    /// # Shapes
    /// x: [B * M, L, D] -> [R, L, D]
    pub fn gather(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        x.select(0, self.kept.clone())
    }

    /// Puts the kept rows back in place; dropped rows are zeros.
    ///
    /// # Shapes
    /// y: [R, L, D] -> [B * M, L, D]
    pub fn scatter(&self, y: Tensor<B, 3>) -> Tensor<B, 3> {
        let [_, len, dim] = y.dims();
        Tensor::zeros([self.total, len, dim], (&y.device(), y.dtype())).select_assign(
            0,
            self.kept.clone(),
            y,
            IndexingUpdateOp::Add,
        )
    }
}
