//! The CUDA source of every kernel the CUDA backend launches, for a GPU that is not here.
//!
//! [`CudaSourceRuntime`] is a cubecl runtime whose device is a compute capability rather than a
//! card: it registers the features cubecl's CUDA runtime registers on a card of that capability,
//! and its server compiles each kernel it is asked to launch with cubecl's CUDA compiler (the same
//! compiler type and options as the CUDA runtime) and records the source, executing nothing.
//! Running the model or a kernel on `CubeBackend<CudaSourceRuntime, ..>` therefore takes the same
//! decisions the CUDA backend takes on such a card (which kernels, which comptime variants, which
//! matmul strategy) and yields their sources; [`nvrtc`] compiles them for the capability with
//! NVRTC, which needs no GPU either. Tensors hold host bytes that no kernel writes, so values read
//! back are meaningless: only the launches are.
//!
//! A runtime of our own rather than cubecl's CUDA runtime with a stub driver: the CUDA runtime
//! reads the capability, memory and limits from the driver at start-up and compiles with NVRTC for
//! the card it finds.

mod capability;
pub mod nvrtc;
mod runtime;
mod server;

pub use capability::Capability;
#[cfg(feature = "fusion")]
pub use runtime::FusedCudaSourceBackend;
pub use runtime::{CudaSourceBackend, CudaSourceDevice, CudaSourceRuntime, recorded};
pub use server::{CompileFailure, Recorded, RecordedKernel};
