use burn::prelude::*;
use msamamba_kernels::KernelBackend;

use crate::mamba::{Mamba, MambaConfig};
use crate::row_sparse::RowSelection;

/// The Mamba mixer run along the sequence of every aligned row (species) independently.
#[derive(Config, Debug)]
pub struct RowScanConfig {
    /// The mixer shared by all rows.
    pub mamba: MambaConfig,
}

/// See [`RowScanConfig`].
#[derive(Module, Debug)]
pub struct RowScan<B: Backend> {
    /// The mixer, one set of weights for every row.
    pub mamba: Mamba<B>,
}

impl RowScanConfig {
    /// Initialises the row scan.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RowScan<B> {
        RowScan {
            mamba: self.mamba.init(device),
        }
    }
}

impl<B: KernelBackend> RowScan<B> {
    /// Scans the kept rows (all rows when `rows` is `None`); dropped rows come back as zeros.
    ///
    /// # Shapes
    /// x: [B, M, L, D] -> [B, M, L, D]
    pub fn forward(&self, x: Tensor<B, 4>, rows: Option<&RowSelection<B>>) -> Tensor<B, 4> {
        let [batch, m, len, dim] = x.dims();
        let flat = x.reshape([batch * m, len, dim]); // [B * M, L, D]
        let y = match rows {
            None => self.mamba.forward(flat),
            Some(rows) => rows.scatter(self.mamba.forward(rows.gather(flat))),
        };
        y.reshape([batch, m, len, dim])
    }
}
