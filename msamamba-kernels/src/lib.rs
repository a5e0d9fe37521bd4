//! The fused operations of MSAMamba: the causal convolution in front of each scan, the selective
//! scan of Mamba (S6) along every row, the attention across rows at each position, and the
//! residual add + RMSNorm after each sub-layer; linear projections whose gradients' sums run on
//! the kernels and whose output autodiff may recompute
//! ([`recomputed_linear`](recomputed_linear::recomputed_linear)); and the optimizer's AdamW step
//! ([`adamw_step`](adamw::adamw_step)).
//!
//! [`causal_conv1d`](causal_conv::causal_conv1d), [`selective_scan`],
//! [`row_attention`](row_attention::row_attention) and
//! [`residual_rms_norm`](residual_norm::residual_rms_norm) are the entry points. Backends
//! implement [`CausalConvBackend`], [`SelectiveScanBackend`], [`RowAttentionBackend`] and
//! [`ResidualNormBackend`]; their default methods are tensor-op references ([`reference`](mod@reference) for the
//! scan), so every burn backend runs them all, and [`Autodiff`](burn::backend::Autodiff) wires
//! each backward in as one graph node. Models ask for [`KernelBackend`], all of them together.

pub mod adamw;
mod autodiff;
pub mod causal_conv;
#[cfg(feature = "ndarray")]
pub mod cpu;
#[cfg(any(feature = "wgpu", feature = "cuda", feature = "cuda-source"))]
pub mod cube;
#[cfg(feature = "cuda-source")]
pub mod cuda_source;
pub mod device_failure;
#[cfg(feature = "fusion")]
mod fusion;
#[cfg(feature = "ndarray")]
mod ndarray;
pub mod recomputed_linear;
pub mod reference;
pub mod residual_norm;
pub mod row_attention;
mod scan;

pub use adamw::AdamWBackend;
pub use causal_conv::{CausalConvBackend, CausalConvGrads, CausalConvInput};
pub use recomputed_linear::RecomputedLinearBackend;
pub use residual_norm::{ResidualNormBackend, ResidualNormGrads, ResidualNormInput};
pub use row_attention::{RowAttentionBackend, RowAttentionInput, RowAttentionOutput};

pub use scan::{
    ScanCheckpoints, ScanGrads, ScanOutput, ScanShapeError, SelectiveScanBackend, SelectiveScanInput, selective_scan,
};

/// A backend with every fused operation (every burn backend has them, through the references).
pub trait KernelBackend:
    CausalConvBackend
    + SelectiveScanBackend
    + RowAttentionBackend
    + ResidualNormBackend
    + RecomputedLinearBackend
    + AdamWBackend
{
}

impl<B> KernelBackend for B where
    B: CausalConvBackend
        + SelectiveScanBackend
        + RowAttentionBackend
        + ResidualNormBackend
        + RecomputedLinearBackend
        + AdamWBackend
{
}
