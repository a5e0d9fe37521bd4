use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::DType;
use msamamba_kernels::KernelBackend;

use crate::block::{Block, BlockConfig};
use crate::mamba::MambaConfig;
use crate::mlp::MlpConfig;
use crate::precision::Precision;
use crate::recomputed::kept;
use crate::row_attention::RowAttentionConfig;
use crate::row_sparse::RowSelection;
use crate::token_embedding::{TokenEmbedding, TokenEmbeddingConfig};
use crate::tokens::VOCAB_SIZE;

/// MSAMamba: token embedding, blocks over the whole MSA, a language-model head on the target row.
#[derive(Config, Debug)]
pub struct MsaMambaConfig {
    /// Model width D.
    #[config(default = 128)]
    pub d_model: usize,
    /// Inner width of the Mamba mixer as a multiple of D (E = expand * D).
    #[config(default = 2)]
    pub expand: usize,
    /// SSM state size N.
    #[config(default = 16)]
    pub d_state: usize,
    /// Width of the causal depthwise convolution.
    #[config(default = 4)]
    pub d_conv: usize,
    /// Number of blocks.
    #[config(default = 3)]
    pub n_layers: usize,
    /// Attention heads across rows.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Most rows (species) an MSA may have.
    #[config(default = 128)]
    pub max_rows: usize,
    /// Reverse-direction scan as well (Caduceus BiMamba); off in the paper.
    #[config(default = false)]
    pub bidirectional: bool,
    /// MLP hidden width as a multiple of D.
    #[config(default = 4)]
    pub mlp_expansion: usize,
}

/// A model size that cannot be built, from [`MsaMambaConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct InvalidConfig {
    /// The offending field of [`MsaMambaConfig`].
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// See [`MsaMambaConfig`].
#[derive(Module, Debug)]
pub struct MsaMamba<B: Backend> {
    /// Token embedding: [6, D].
    pub embedding: TokenEmbedding<B>,
    /// The blocks.
    pub blocks: Vec<Block<B>>,
    /// D -> 6 logits for the target row.
    pub lm_head: Linear<B>,
    /// The activations' type: a setting of the run, not saved with the weights.
    #[module(skip)]
    pub precision: Precision,
}

impl MsaMambaConfig {
    /// The configuration of one block.
    pub fn block(&self) -> BlockConfig {
        BlockConfig::new(
            MambaConfig::new()
                .with_d_model(self.d_model)
                .with_expand(self.expand)
                .with_d_state(self.d_state)
                .with_d_conv(self.d_conv)
                .with_bidirectional(self.bidirectional),
            RowAttentionConfig::new()
                .with_d_model(self.d_model)
                .with_n_heads(self.n_heads)
                .with_max_rows(self.max_rows),
            MlpConfig::new()
                .with_d_model(self.d_model)
                .with_expansion(self.mlp_expansion),
        )
    }

    /// Checks the sizes the modules need before anything is built: every size at least 1 and
    /// the attention heads dividing the width (burn panics on either while initialising).
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let positive = [
            ("d_model", self.d_model),
            ("expand", self.expand),
            ("d_state", self.d_state),
            ("d_conv", self.d_conv),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("max_rows", self.max_rows),
            ("mlp_expansion", self.mlp_expansion),
        ];
        if let Some((field, _)) = positive.into_iter().find(|(_, value)| *value == 0) {
            return Err(InvalidConfig {
                field,
                reason: "must be at least 1".into(),
            });
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(InvalidConfig {
                field: "n_heads",
                reason: format!("({}) must divide d_model ({})", self.n_heads, self.d_model),
            });
        }
        Ok(())
    }

    /// Initialises the model.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MsaMamba<B> {
        let block = self.block();
        MsaMamba {
            embedding: TokenEmbeddingConfig::new(VOCAB_SIZE, self.d_model).init(device),
            blocks: (0..self.n_layers).map(|_| block.init(device)).collect(),
            lm_head: LinearConfig::new(self.d_model, VOCAB_SIZE).init(device),
            precision: Precision::Fp32,
        }
    }
}

impl<B: Backend> MsaMamba<B> {
    /// The model computing in `precision` (the weights unchanged).
    pub fn with_precision(self, precision: Precision) -> Self {
        MsaMamba { precision, ..self }
    }
}

impl<B: KernelBackend> MsaMamba<B> {
    /// Hidden states of every row after the last block, in the model's precision.
    ///
    /// # Shapes
    /// tokens: [B, M, L] Int, row_keep: [B, M] Bool -> [B, M, L, D]
    fn hidden(&self, tokens: Tensor<B, 3, Int>, row_keep: Tensor<B, 2, Bool>, row_sparse: bool) -> Tensor<B, 4> {
        let [batch, m, len] = tokens.dims();
        if let Some(block) = self.blocks.first() {
            let max = block.row_attention.max_rows();
            assert!(m <= max, "MSA has {m} rows but the model's max_rows is {max}");
        }
        let rows = row_sparse.then(|| RowSelection::new(row_keep.clone()));
        let mut x = self
            .embedding
            .forward(tokens.reshape([batch, m * len])) // [B, M * L, D]
            .reshape([batch as i32, m as i32, len as i32, -1]) // [B, M, L, D]
            .cast(self.precision.dtype());
        for block in &self.blocks {
            x = block.forward(x, row_keep.clone(), rows.as_ref());
        }
        x
    }

    /// Hidden states of every row after the last block, f32.
    ///
    /// `row_keep` marks the rows that take part: the target row (row 0) must be kept. With
    /// `row_sparse`, only kept rows are scanned (training); otherwise every row is scanned and
    /// `row_keep` only masks attention (padding rows).
    ///
    /// # Shapes
    /// tokens: [B, M, L] Int, row_keep: [B, M] Bool -> [B, M, L, D]
    ///
    /// # Panics
    /// When M exceeds the configured `max_rows`.
    pub fn forward_hidden(
        &self,
        tokens: Tensor<B, 3, Int>,
        row_keep: Tensor<B, 2, Bool>,
        row_sparse: bool,
    ) -> Tensor<B, 4> {
        self.hidden(tokens, row_keep, row_sparse).cast(DType::F32)
    }

    /// Hidden states of the target row, f32: [B, M, L] Int, [B, M] Bool -> [B, L, D].
    pub fn forward_target(
        &self,
        tokens: Tensor<B, 3, Int>,
        row_keep: Tensor<B, 2, Bool>,
        row_sparse: bool,
    ) -> Tensor<B, 3> {
        let x = self.hidden(tokens, row_keep, row_sparse);
        let [batch, _, len, dim] = x.dims();
        x.narrow(1, 0, 1).reshape([batch, len, dim]).cast(DType::F32) // [B, L, D]
    }

    /// Logits of the target row.
    ///
    /// # Shapes
    /// tokens: [B, M, L] Int, row_keep: [B, M] Bool -> logits: [B, L, 6]
    pub fn forward(&self, tokens: Tensor<B, 3, Int>, row_keep: Tensor<B, 2, Bool>, row_sparse: bool) -> Tensor<B, 3> {
        kept(&self.lm_head, self.forward_target(tokens, row_keep, row_sparse))
    }
}
