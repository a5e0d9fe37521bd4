//! CPU implementations of the fused operations against independent float64 references: the
//! causal convolution, the selective scan, the row attention, the residual RMSNorm and the MLP, values
//! and gradients; recomputation under balanced checkpointing.

mod causal_conv;
#[path = "../common/mod.rs"]
mod common;
mod mlp;
mod recomputed_linear;
mod residual_norm;
mod row_attention;
mod scan;
