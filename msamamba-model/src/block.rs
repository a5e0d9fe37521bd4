use burn::nn::{RmsNorm, RmsNormConfig};
use burn::prelude::*;
use msamamba_kernels::residual_norm::residual_rms_norm;
use msamamba_kernels::{KernelBackend, ResidualNormInput};

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
        let x = add_norm(&self.scan_norm, x.clone(), self.row_scan.forward(x, rows));
        let x = add_norm(&self.attention_norm, x.clone(), self.row_attention.forward(x, row_keep));
        add_norm(&self.mlp_norm, x.clone(), self.mlp.forward(x))
    }
}

/// `norm(x + residual)`, the end of every sub-layer, as one fused operation (burn's `RmsNorm`
/// holds the weights).
///
/// # Shapes
/// x, residual: [B, M, L, D] -> [B, M, L, D]
pub fn add_norm<B: KernelBackend>(norm: &RmsNorm<B>, x: Tensor<B, 4>, residual: Tensor<B, 4>) -> Tensor<B, 4> {
    let dims = x.dims();
    let rows = dims[..3].iter().product::<usize>();
    let flat = |t: Tensor<B, 4>| t.reshape([rows, dims[3]]);
    residual_rms_norm(ResidualNormInput {
        x: flat(x),
        residual: flat(residual),
        gamma: norm.gamma.val(),
        epsilon: norm.epsilon,
    })
    .reshape(dims)
}
