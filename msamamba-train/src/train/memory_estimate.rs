//! A lower bound on the host memory a CPU training run takes, checked before anything is
//! allocated: on the CPU an allocation that fails aborts the process (Rust's allocator cannot
//! report it), so `--batch-size 1000000` or `--d-model 1000000` must be refused up front, with the
//! estimate and the limit. The bound counts only the dominant terms (the weights with their
//! gradients and AdamW moments, one activation of width d_inner per layer and position, and the
//! batch's token tensors), so a run it refuses could never fit.

use anyhow::{Result, bail};

use crate::train::pretrain::PretrainConfig;

/// Bytes of one f32.
const F32: f64 = 4.0;

/// At least the bytes a CPU pre-training step of `config` over `rows` rows takes.
pub fn pretrain_bytes(config: &PretrainConfig, rows: usize) -> f64 {
    let model = &config.model;
    let (d, n_layers) = (model.d_model as f64, model.n_layers as f64);
    let e = d * model.expand as f64;
    let directions = if model.bidirectional { 2.0 } else { 1.0 };
    // Per block: the scan's in- and out-projections (D x 2E, E x D) per direction, the row
    // attention's D x 3D and D x D, the MLP's two D x (expansion D).
    let per_block = directions * 3.0 * d * e + 4.0 * d * d + 2.0 * d * d * model.mlp_expansion as f64;
    // Weight, gradient and AdamW's two moments.
    let weights = 4.0 * F32 * n_layers * per_block;
    let positions = (config.batch_size * rows * config.window) as f64;
    let activations = F32 * positions * e * directions * n_layers;
    // Tokens, targets and the mask, as i64.
    let tokens = 3.0 * 8.0 * positions;
    weights + activations + tokens
}

/// The memory this machine has available, in bytes (Linux's `MemAvailable`); None elsewhere.
pub fn available_bytes() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

/// Refuses a run that needs at least `needed` bytes when `available` are free.
pub fn check(needed: f64, available: Option<f64>) -> Result<()> {
    let gib = |bytes: f64| bytes / f64::from(1u32 << 30);
    if let Some(available) = available
        && needed > available
    {
        bail!(
            "the model and one batch need at least {:.1} GiB on the CPU, and {:.1} GiB of memory is available: choose a smaller --batch-size, --window or --d-model",
            gib(needed),
            gib(available)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use msamamba_model::MsaMambaConfig;

    #[test]
    fn the_bound_refuses_huge_runs_and_passes_the_paper_size_one() {
        let paper = PretrainConfig::new().with_batch_size(64).with_window(128);
        let needed = pretrain_bytes(&paper, 30);
        assert!(needed < 2e9, "paper size is well under 2 GB: {needed}");
        assert!(check(needed, Some(8e9)).is_ok());

        let wide = PretrainConfig::new().with_model(MsaMambaConfig::new().with_d_model(1_000_000));
        let err = check(pretrain_bytes(&wide, 12), Some(64e9)).unwrap_err().to_string();
        assert!(err.contains("--d-model") && err.contains("59.6 GiB"), "{err}");
        let big_batch = PretrainConfig::new().with_batch_size(1_000_000);
        assert!(check(pretrain_bytes(&big_batch, 12), Some(64e9)).is_err());
        assert!(check(f64::MAX, None).is_ok(), "no limit known: nothing refused");
    }
}
