//! The projections' products on cubek's matmul kernels, with a strategy picked for the model's
//! shapes instead of burn's default.
//!
//! burn launches every f32 matmul with cubek's default strategy (64 x 64 output tiles, TF32 through
//! `cmma`, loads not overlapped with the math). The paper model's products (tokens x 128 x 512
//! and the like, forward and both gradients) are narrow and bound by memory, so loads that overlap
//! the math pay: `matmul_bench` (`cargo xtask bench matmul`; figures in BENCHMARKS.md) finds
//! Hopper's tensor-memory loads (TMA) with warp-level `mma` the fastest on them, then cyclic loads
//! with `mma` over several rows, both well ahead of the default. The products therefore try those
//! two in that order and keep burn's matmul as the last resort: a strategy the device or the
//! layout cannot take (no TMA before Hopper, no `mma` before Ampere or on WGPU, strides TMA cannot
//! describe) is refused before anything is launched: cubek refuses most at set-up, but checks the
//! device for TMA only when it compiles the kernel, after the launch has been accepted, so that
//! check is made here first.

use burn::tensor::DType;
use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use cubecl::ir::{ElemType, FloatKind, SemanticType, StorageType};
use cubecl::prelude::ComputeClient;
use cubek::matmul::components::tile::TileMatmulKind;
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems, MatmulSetupError};
use cubek::matmul::launch::{Strategy, launch_ref};
use cubek::matmul::routines::BlueprintStrategy;
use cubek::matmul::routines::simple::SimpleArgs;
use cubek::std::InputBinding;

use super::precision::empty_as;

/// The strategies tried, fastest first (see the module doc).
pub fn strategies() -> [Strategy; 2] {
    let args = |multi_rows| SimpleArgs {
        tile_matmul: TileMatmulKind::Mma,
        multi_rows,
    };
    [
        Strategy::SimpleTmaMma(BlueprintStrategy::Inferred(args(false))),
        Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(args(true))),
    ]
}

/// One launch of `strategy`: `out = lhs @ rhs`, all of lhs's type (f32 through TF32 inside the
/// tensor cores; f16 and bf16 accumulated in f32).
pub fn launch<R: CubeRuntime>(
    strategy: &Strategy,
    lhs: &CubeTensor<R>,
    rhs: &CubeTensor<R>,
    out: &CubeTensor<R>,
) -> Result<(), MatmulSetupError> {
    let dtype = lhs.dtype.into();
    let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems {
        lhs: dtype,
        rhs: dtype,
        out: dtype,
    });
    launch_ref(
        strategy,
        &out.client,
        InputBinding::new(lhs.clone().binding(), dtype),
        InputBinding::new(rhs.clone().binding(), dtype),
        out.clone().binding(),
        &mut dtypes,
    )
}

/// `lhs @ rhs` ([..., m, k] x [..., k, n], the same leading dims) by the first of [`strategies`]
/// that takes it; `None` when none does, or the inputs are not both f32, both f16 or both bf16.
pub fn matmul<R: CubeRuntime>(lhs: &CubeTensor<R>, rhs: &CubeTensor<R>) -> Option<CubeTensor<R>> {
    if lhs.dtype != rhs.dtype || !matches!(lhs.dtype, DType::F32 | DType::F16 | DType::BF16) {
        return None;
    }
    let mut shape = lhs.meta.shape().to_vec();
    let rank = shape.len();
    shape[rank - 1] = rhs.meta.shape()[rank - 1];
    let out = empty_as(lhs, shape, lhs.dtype);
    strategies()
        .iter()
        .any(|strategy| device_takes(strategy, &lhs.client) && launch(strategy, lhs, rhs, &out).is_ok())
        .then_some(out)
}

/// Whether `client`'s device has what `strategy` needs beyond what cubek checks at set-up: the
/// tensor memory accelerator for TMA loads.
fn device_takes<R: CubeRuntime>(strategy: &Strategy, client: &ComputeClient<R>) -> bool {
    !matches!(strategy, Strategy::SimpleTmaMma(_))
        || client.properties().features.supports_type(SemanticType::TensorMap)
}

/// Whether the strategies multiply `dtype` operands on `client`'s device on tensor cores, with f32
/// accumulation (warp-level `mma`). cubecl also lists bf16 among the `wmma` types of Volta and
/// Turing, which have no bf16 tensor cores; `mma` is what the strategies use.
pub fn accelerates<R: CubeRuntime>(client: &ComputeClient<R>, dtype: DType) -> bool {
    let operand = StorageType::Scalar(ElemType::from(dtype));
    let f32 = StorageType::Scalar(ElemType::Float(FloatKind::F32));
    client
        .properties()
        .features
        .matmul
        .mma
        .iter()
        .any(|config| config.a_type == operand && config.b_type == operand && config.cd_type == f32)
}
