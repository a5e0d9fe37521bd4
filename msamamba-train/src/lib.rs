//! Data, batches and training for MSAMamba; the `msamamba` binary lives in `src/main.rs`.

pub mod data;
