use burn::nn::{RmsNorm, RmsNormConfig};
use burn::prelude::*;
use msamamba_kernels::KernelBackend;

use crate::mamba::MambaConfig;
use crate::mlp::{Mlp, MlpConfig};
use crate::row_attention::{RowAttention, RowAttentionConfig};
use crate::row_scan::{RowScan, RowScanConfig};
use crate::row_sparse::RowSelection;

/// One MSAMamba block: row scan, row attention, MLP; each followed by residual add and RMSNorm.
#[derive(Config, Debug)]
pub struct BlockConfig {
    /// The Mamba mixer of the row scan.
    pub mamba: MambaConfig,
    /// Attention across rows.
    pub attention: RowAttentionConfig,
    /// The position-wise MLP.
    pub mlp: MlpConfig,
}

/// See [`BlockConfig`].
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// Mamba along each row.
    pub row_scan: RowScan<B>,
    /// Norm after the row scan.
    pub scan_norm: RmsNorm<B>,
    /// Attention across rows.
    pub row_attention: RowAttention<B>,
    /// Norm after the row attention.
    pub attention_norm: RmsNorm<B>,
    /// Position-wise MLP.
    pub mlp: Mlp<B>,
    /// Norm after the MLP.
    pub mlp_norm: RmsNorm<B>,
}

impl BlockConfig {
    /// Initialises the block.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Block<B> {
        let norm = || RmsNormConfig::new(self.mamba.d_model).init(device);
        Block {
            row_scan: RowScanConfig::new(self.mamba.clone()).init(device),
            scan_norm: norm(),
            row_attention: self.attention.init(device),
            attention_norm: norm(),
            mlp: self.mlp.init(device),
            mlp_norm: norm(),
        }
    }
}

impl<B: KernelBackend> Block<B> {
    /// # Shapes
    /// x: [B, M, L, D], row_keep: [B, M] Bool -> [B, M, L, D]
    ///
    /// `rows` selects the rows the scan runs on (all when `None`); dropped rows add zeros.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        row_keep: Tensor<B, 2, Bool>,
        rows: Option<&RowSelection<B>>,
    ) -> Tensor<B, 4> {
        let x = self.scan_norm.forward(x.clone() + self.row_scan.forward(x, rows));
        let x = self
            .attention_norm
            .forward(x.clone() + self.row_attention.forward(x, row_keep));
        self.mlp_norm.forward(x.clone() + self.mlp.forward(x))
    }
}
