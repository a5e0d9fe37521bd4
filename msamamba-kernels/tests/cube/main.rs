//! The CubeCL kernels against the tensor-op references (on NdArray): the selective scan and the
//! row attention, forward, every gradient, and inside burn's autodiff; on WGPU (the `wgpu`
//! feature) and on CUDA (`cuda`).
#![cfg(any(feature = "wgpu", feature = "cuda"))]

#[path = "../common/mod.rs"]
mod common;
mod row_attention;
mod scan;
