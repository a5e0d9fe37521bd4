//! MSAMamba: a DNA language model over multiple sequence alignments.
//!
//! Each [`block`] runs a Mamba selective scan along every aligned row ([`row_scan`]), then
//! attention across the rows at each position ([`row_attention`]), then an [`mlp`]. The
//! [`msa_mamba`] model predicts the target (first) row; [`pooler`] adds a classification head.

pub mod block;
pub mod causal_conv;
pub mod mamba;
pub mod mlm_loss;
pub mod mlm_mask;
pub mod mlp;
pub mod msa_mamba;
pub mod pooler;
pub mod precision;
pub mod recomputed;
pub mod row_attention;
pub mod row_scan;
pub mod row_sparse;
pub mod selective_ssm;
pub mod token_embedding;
pub mod tokens;
pub mod variant_score;

pub use msa_mamba::{MsaMamba, MsaMambaConfig};
pub use precision::Precision;
