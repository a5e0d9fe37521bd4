use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;

/// Multi-head self-attention across the M rows at each position, with learned absolute
/// row-position embeddings. Dropped and padding rows are masked out as keys.
#[derive(Config, Debug)]
pub struct RowAttentionConfig {
    /// Model width D.
    #[config(default = 128)]
    pub d_model: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Most rows an MSA may have (size of the row-position table).
    #[config(default = 128)]
    pub max_rows: usize,
    /// Dropout on the attention weights.
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// See [`RowAttentionConfig`].
#[derive(Module, Debug)]
pub struct RowAttention<B: Backend> {
    /// Attention over rows.
    pub attention: MultiHeadAttention<B>,
    /// Learned embedding of each row index: [max_rows, D].
    pub row_position: Embedding<B>,
}

impl RowAttentionConfig {
    /// Initialises the row attention.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RowAttention<B> {
        RowAttention {
            attention: MultiHeadAttentionConfig::new(self.d_model, self.n_heads)
                .with_dropout(self.dropout)
                .init(device),
            row_position: EmbeddingConfig::new(self.max_rows, self.d_model)
                .with_initializer(burn::nn::Initializer::Normal { mean: 0.0, std: 0.02 })
                .init(device),
        }
    }
}

impl<B: Backend> RowAttention<B> {
    /// Most rows the row-position table covers.
    pub fn max_rows(&self) -> usize {
        self.row_position.weight.dims()[0]
    }

    /// # Shapes
    /// x: [B, M, L, D], row_keep: [B, M] Bool (true = attend to this row) -> [B, M, L, D]
    pub fn forward(&self, x: Tensor<B, 4>, row_keep: Tensor<B, 2, Bool>) -> Tensor<B, 4> {
        let [batch, m, len, dim] = x.dims();
        let device = x.device();
        let index = Tensor::<B, 1, Int>::arange(0..m as i64, &device).unsqueeze_dim::<2>(0); // [1, M]
        let position = self.row_position.forward(index).unsqueeze_dim::<4>(2); // [1, M, 1, D]
        let x = (x + position).swap_dims(1, 2).reshape([batch * len, m, dim]); // [B * L, M, D]
        let pad = row_keep
            .bool_not()
            .unsqueeze_dim::<3>(1)
            .expand([batch, len, m])
            .reshape([batch * len, m]); // [B * L, M]
        let context = self.attention.forward(MhaInput::self_attn(x).mask_pad(pad)).context; // [B * L, M, D]
        context.reshape([batch, len, m, dim]).swap_dims(1, 2) // [B, M, L, D]
    }
}
