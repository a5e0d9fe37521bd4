//! The fused operations of MSAMamba: the selective scan of Mamba (S6) along every row, and the
//! attention across rows at each position.
//!
//! [`selective_scan`] and [`row_attention`](row_attention::row_attention) are the entry points.
//! Backends implement [`SelectiveScanBackend`] and [`RowAttentionBackend`]; their default methods
//! are tensor-op references ([`reference`] for the scan), so every burn backend runs both, and
//! [`Autodiff`](burn::backend::Autodiff) wires each backward in as one graph node. Models ask for
//! [`KernelBackend`], the two together.

mod autodiff;
#[cfg(feature = "ndarray")]
pub mod cpu;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod cube;
#[cfg(feature = "fusion")]
mod fusion;
#[cfg(feature = "ndarray")]
mod ndarray;
pub mod reference;
pub mod row_attention;
mod scan;

pub use row_attention::{RowAttentionBackend, RowAttentionGrads, RowAttentionInput};

pub use scan::{ScanGrads, ScanShapeError, SelectiveScanBackend, SelectiveScanInput, selective_scan};

/// A backend with both fused operations (every burn backend has them, through the references).
pub trait KernelBackend: SelectiveScanBackend + RowAttentionBackend {}

impl<B: SelectiveScanBackend + RowAttentionBackend> KernelBackend for B {}
