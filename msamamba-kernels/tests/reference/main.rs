//! CPU implementations of the fused operations against independent float64 references: the
//! causal convolution, the selective scan, the row attention and the residual RMSNorm, values and
//! gradients; recomputation under balanced checkpointing.

mod causal_conv;
#[path = "../common/mod.rs"]
mod common;
mod recomputed_linear;
mod residual_norm;
mod row_attention;
mod scan;
