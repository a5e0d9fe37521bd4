//! Data, batches and training for MSAMamba, one folder per stage of the data flow:
//!
//! - [`data`]: alignments and annotations in (MAF, FASTA, BED, VCF, label tables, zarr stores)
//!   and the projection of an alignment onto a target species' window;
//! - [`windows`]: windows tiled over an alignment, their batches (MLM and classifier) and the
//!   epoch loader;
//! - [`train`]: pre-training and fine-tuning through burn-train (steps, schedule, optimizer,
//!   checkpoints, metrics);
//! - [`infer`]: variant scoring and embeddings from a trained run;
//! - [`plots`]: loss and ROC curves.
//!
//! [`backend`] runs a job on the backend asked for (CPU, WGPU or CUDA, whichever are built in).
//! The `msamamba` binary (`src/main.rs`, `src/cli/`) only parses flags and calls these.

pub mod atomic_output;
pub mod backend;
pub mod bench;
pub mod data;
pub mod gpu_memory;
pub mod infer;
pub mod kernel_cache;
pub mod plots;
pub mod progress;
pub mod train;
pub mod windows;
