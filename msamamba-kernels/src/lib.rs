//! The selective scan of Mamba (S6), the operation MSAMamba spends its time in.
//!
//! [`selective_scan`] is the entry point. Backends implement [`SelectiveScanBackend`]; its
//! default methods are the tensor-op reference of [`reference`], so every burn backend can run
//! the scan, and [`Autodiff`](burn::backend::Autodiff) wires the backward in as one graph node.

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
mod scan;

pub use scan::{ScanGrads, ScanShapeError, SelectiveScanBackend, SelectiveScanInput, selective_scan};
