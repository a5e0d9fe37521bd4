//! The type the model's activations are computed in, as PyTorch's autocast chooses it: parameters,
//! their gradients and the optimizer's state stay f32 whatever it is; every layer casts its
//! weights to the activations' type where it uses them (a no-op in f32), the fused kernels keep
//! their statistics, states and reductions in f32, and the outputs the losses take are f32.

use burn::tensor::DType;

/// See the module doc.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything f32.
    #[default]
    Fp32,
    /// bf16 activations and matmul operands (f32 accumulation): CUDA from sm_80.
    Bf16,
    /// f16 activations: what WGPU offers where it has no bf16. Without loss scaling, f16
    /// gradients underflow, so it suits inference better than training.
    F16,
}

impl Precision {
    /// How the command line names it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// The activations' element type.
    pub fn dtype(self) -> DType {
        match self {
            Precision::Fp32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }
}
