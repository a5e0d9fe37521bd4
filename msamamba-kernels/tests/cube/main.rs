//! The CubeCL kernels against the tensor-op references (on NdArray): the selective scan, the row
//! attention, the residual RMSNorm, the causal convolution, the linears' column sums and the AdamW
//! step, forward, every gradient, and inside burn's autodiff; on WGPU (the `wgpu` feature) and on
//! CUDA (`cuda`).
#![cfg(any(feature = "wgpu", feature = "cuda", feature = "cuda-source"))]
// With `cuda-source` alone only the compile-for-Pascal module runs; the others' tests are
// instantiated per GPU backend, so their helpers are then unused.
#![cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(unused))]

mod adamw;
mod causal_conv;
#[path = "../common/mod.rs"]
mod common;
#[cfg(feature = "cuda-source")]
mod cuda_source;
mod device_failure;
mod linear;
mod residual_norm;
mod row_attention;
mod scan;
