//! Data, batches and training for MSAMamba; the `msamamba` binary lives in `src/main.rs`.

pub mod alignment;
pub mod batcher;
pub mod data;
pub mod loader;
pub mod schedule;
pub mod windows;
