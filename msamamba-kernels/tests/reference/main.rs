//! CPU implementations of the fused operations against independent float64 references: the
//! selective scan, the row attention and the residual RMSNorm, values and gradients.

#[path = "../common/mod.rs"]
mod common;
mod residual_norm;
mod row_attention;
mod scan;
