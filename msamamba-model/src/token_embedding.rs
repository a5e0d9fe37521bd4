//! The token embedding: a [V, D] table looked up for every token of the MSA.
//!
//! The lookup is a batched matmul of one-hot rows with the table, not burn's `Embedding`: on the
//! GPU backends burn's embedding backward adds B * M * L gradient rows into the table with one
//! thread per model dimension looping over every token in turn, and a plain one-hot matmul or
//! masked product leaves one long reduction over all tokens, which burn's reduce also runs on a
//! single cube, nearly serially. Tokens go in chunks of [`CHUNK`]: the table's gradient is then
//! one matmul per chunk, in parallel, and a sum over the chunks. The record is the same as
//! `Embedding`'s (`weight` [V, D]).

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

/// See [`TokenEmbedding`].
#[derive(Config, Debug)]
pub struct TokenEmbeddingConfig {
    /// Vocabulary size V.
    pub vocab: usize,
    /// Model width D.
    pub d_model: usize,
}

/// A learned vector per token.
#[derive(Module, Debug)]
pub struct TokenEmbedding<B: Backend> {
    /// [V, D]
    pub weight: Param<Tensor<B, 2>>,
}

impl TokenEmbeddingConfig {
    /// Initialises as burn's `Embedding` (and PyTorch's): standard normal entries.
    pub fn init<B: Backend>(&self, device: &B::Device) -> TokenEmbedding<B> {
        TokenEmbedding {
            weight: Initializer::Normal { mean: 0.0, std: 1.0 }.init([self.vocab, self.d_model], device),
        }
    }
}

/// Tokens per chunk of the lookup.
pub const CHUNK: usize = 1024;

impl<B: Backend> TokenEmbedding<B> {
    /// # Shapes
    /// tokens: [B, N] Int -> [B, N, D]
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [batch, n] = tokens.dims();
        let weight = self.weight.val();
        let [vocab, dim] = weight.dims();
        let total = batch * n;
        let chunks = total.div_ceil(CHUNK);
        let device = tokens.device();
        // Padding tokens of -1 one-hot to zero rows; their outputs are cut off below. None when
        // the tokens fill the chunks: an empty tensor's fill is a launch of zero cubes, which
        // CUDA rejects (CUDA_ERROR_INVALID_VALUE: every unfused CUDA run whose batch held a
        // multiple of 1 024 tokens, as the demo's and the paper-size run's do).
        let pad = chunks * CHUNK - total;
        let tokens = tokens.reshape([total]);
        let padded = if pad == 0 {
            tokens
        } else {
            Tensor::cat(vec![tokens, Tensor::full([pad], -1, &device)], 0)
        }; // [chunks * CHUNK]
        let one_hot = padded
            .reshape([chunks, CHUNK])
            .one_hot_fill::<3>(vocab, 1.0, 0.0, -1)
            .float(); // [chunks, CHUNK, V]
        let table = weight.unsqueeze_dim::<3>(0).expand([chunks, vocab, dim]); // [chunks, V, D]
        one_hot
            .matmul(table) // [chunks, CHUNK, D]
            .reshape([chunks * CHUNK, dim])
            .narrow(0, 0, total)
            .reshape([batch, n, dim])
    }
}
