//! The token embedding: a [V, D] table looked up for every token of the MSA.
//!
//! The lookup is a sum over the V = 6 tokens of (token == v) * row v, not burn's `Embedding`:
//! burn's embedding backward adds B * M * L gradient rows into the table with one thread per
//! model dimension looping over every token in turn (a 737 k-step serial loop per thread at
//! b=2, M=90, L=4096). As masked products, the table's gradient is V reductions over all tokens,
//! which run in parallel. The record is the same as `Embedding`'s (`weight` [V, D]).

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

impl<B: Backend> TokenEmbedding<B> {
    /// # Shapes
    /// tokens: [B, N] Int -> [B, N, D]
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let weight = self.weight.val();
        let [vocab, dim] = weight.dims();
        (0..vocab)
            .map(|v| {
                let is_v = tokens.clone().equal_elem(v as i64).float().unsqueeze_dim::<3>(2); // [B, N, 1]
                is_v * weight.clone().narrow(0, v, 1).reshape([1, 1, dim])
            })
            .reduce(|sum, term| sum + term)
            .expect("a vocabulary of at least one token")
    }
}
