//! `--precision auto|fp32|bf16`: the type a run's activations are computed in, resolved against
//! the backend and device it runs on (see [`msamamba_model::precision`]).

use anyhow::{Result, bail};
use burn::tensor::DType;
use burn::tensor::backend::DTypeUsage;
use clap::ValueEnum;
use msamamba_kernels::RecomputedLinearBackend;
use msamamba_model::Precision;
use serde::{Deserialize, Serialize};

/// What the user asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    /// bf16 where the device computes it on tensor cores (CUDA from compute capability 8.0),
    /// fp32 elsewhere.
    #[default]
    Auto,
    /// f32 throughout.
    Fp32,
    /// bf16 activations and matmul operands, f32 parameters, optimizer state, statistics and
    /// loss (PyTorch's autocast).
    Bf16,
}

/// Whether `device` stores bf16, computes with it and multiplies it on tensor cores (the
/// projections' products, where the time goes).
pub fn has_bf16<B: RecomputedLinearBackend>(device: &B::Device) -> bool {
    B::dtype_usage(device, DType::BF16).is_superset(DTypeUsage::Storage | DTypeUsage::Arithmetic)
        && B::matmul_accelerates(DType::BF16, device)
}

/// The precision `choice` means on `device` of backend `backend`; bf16 where the device has
/// none is an error naming the flag.
pub fn resolve<B: RecomputedLinearBackend>(
    choice: PrecisionChoice,
    device: &B::Device,
    backend: &str,
) -> Result<Precision> {
    Ok(match choice {
        PrecisionChoice::Fp32 => Precision::Fp32,
        PrecisionChoice::Auto if has_bf16::<B>(device) => Precision::Bf16,
        PrecisionChoice::Auto => Precision::Fp32,
        PrecisionChoice::Bf16 if has_bf16::<B>(device) => Precision::Bf16,
        PrecisionChoice::Bf16 => bail!(
            "--precision bf16: {backend} has no bf16 arithmetic on tensor cores on this device (CUDA from compute capability 8.0 has); use --precision fp32"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    #[test]
    fn the_cpu_backend_computes_in_fp32_and_refuses_bf16_naming_the_flag() {
        type Cpu = Autodiff<NdArray>;
        let device = Default::default();
        assert!(!has_bf16::<Cpu>(&device));
        assert_eq!(
            resolve::<Cpu>(PrecisionChoice::Auto, &device, "cpu").unwrap(),
            Precision::Fp32
        );
        assert_eq!(
            resolve::<Cpu>(PrecisionChoice::Fp32, &device, "cpu").unwrap(),
            Precision::Fp32
        );
        let error = resolve::<Cpu>(PrecisionChoice::Bf16, &device, "cpu")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--precision bf16: cpu has no bf16"), "{error}");
    }
}
