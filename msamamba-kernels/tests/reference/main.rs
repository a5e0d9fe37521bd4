//! CPU implementations of the fused operations against independent float64 references: the
//! selective scan and the row attention, values and gradients.

#[path = "../common/mod.rs"]
mod common;
mod row_attention;
mod scan;
