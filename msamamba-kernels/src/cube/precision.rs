//! The element types of the kernels' activations: f32, f16 or bf16 in global memory, f32 in
//! registers and shared memory. Parameters (the scan's A, D and step bias, the norm's gamma, the
//! convolution's filters) and every internal buffer (checkpoints, partial sums) stay f32, as
//! PyTorch's autocast keeps them; each gradient comes back in its input's type.

use burn::tensor::{DType, Tensor};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime, FloatElement, IntElement};
use cubecl::ir::{ElemType, StorageType};
use cubecl::prelude::ComputeClient;

use super::launch::Cube;

/// Whether `t` holds an activation type the kernels take and its device computes with.
pub fn activation<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement, const D: usize>(
    t: &Tensor<Cube<R, F, I, BT>, D>,
) -> bool {
    activation_on(&t.clone().into_primitive().tensor().client, t.dtype())
}

/// Whether `dtype` is an activation type the kernels take and `client`'s device computes with
/// (where there is a device but no tensor yet).
pub fn activation_on<R: CubeRuntime>(client: &ComputeClient<R>, dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
        && client
            .properties()
            .supports_type(StorageType::Scalar(ElemType::from(dtype)))
}

/// A new contiguous tensor of `dtype` and `shape` on `like`'s device.
pub fn empty_as<R: CubeRuntime>(like: &CubeTensor<R>, shape: Vec<usize>, dtype: DType) -> CubeTensor<R> {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape.into(), dtype)
}

/// Runs `$body` with `$E` the kernel element type of the activation `$dtype` (one of those
/// [`activation`] accepts).
macro_rules! with_activation {
    ($dtype:expr, $E:ident => $body:expr) => {
        match $dtype {
            burn::tensor::DType::F16 => {
                type $E = burn::tensor::f16;
                $body
            }
            burn::tensor::DType::BF16 => {
                type $E = burn::tensor::bf16;
                $body
            }
            _ => {
                type $E = f32;
                $body
            }
        }
    };
}
pub(crate) use with_activation;
