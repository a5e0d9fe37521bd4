//! The residual RMSNorm's kernels and their launch glue.
//!
//! A cube is `ROWS` groups of `LANES` threads; a group owns one row of d channels at a time, each
//! lane the channels lane, lane + `LANES`, ... (consecutive lanes on consecutive floats: coalesced).
//! A row's sums are the lanes' partial sums added through shared memory (no plane operations, so
//! nothing beyond plain compute shaders on WGPU and sm_60 on CUDA). Cubes stride over the rows, so
//! their count stays bounded whatever the batch: the backward's per-cube gamma sums are then a
//! small [d, cubes] that one tensor reduction finishes (along its contiguous axis: summed along
//! the other, burn's reduction runs as a single cube).
//!
//! - Registers: the lane's slice of s = x + r (and of dout · gamma), its slice of gamma, and in the
//!   backward its running gamma-gradient sums.
//! - Shared memory: the partial sums [ROWS, LANES] (two in the backward, the first reused at the
//!   end for the groups' gamma sums).
//! - Global memory: x and r read once (and dout in the backward), one output written; these are
//!   f32, f16 or bf16 (one type), gamma and the gamma sums f32, all arithmetic f32.

use burn::tensor::{DType, Tensor as BurnTensor};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use super::column_sums::row_sums;
use super::launch::{Cube, empty_like, prim, tensor};
use super::precision::{activation, empty_as, with_activation};
use crate::{ResidualNormGrads, ResidualNormInput};

/// Threads per row: a warp on NVIDIA.
const LANES: usize = 32;
/// Rows a cube works on at once.
const ROWS: usize = 8;
/// At most this many cubes: about eight waves' worth of a large GPU, few enough that the gamma
/// partial sums stay small.
const MAX_CUBES: usize = 2048;
/// The widest row the kernels take (a lane then holds 32 channels in registers).
const MAX_WIDTH: usize = 1024;

/// The lane's channels of the row in f32 (`row` past the end loads zeros).
#[cube]
fn load_row<E: Float>(t: &Tensor<E>, row: usize, live: bool, #[comptime] width: usize) -> Array<f32> {
    let per_lane = comptime!(width.div_ceil(LANES));
    let lane = UNIT_POS_X as usize;
    let mut out = Array::<f32>::new(per_lane);
    #[unroll]
    for k in 0..per_lane {
        let col = k * LANES + lane;
        let mut v = 0.0f32;
        if live && col < width {
            v = f32::cast_from(t[row * width + col]);
        }
        out[k] = v;
    }
    out
}

/// The sum of `value` over the lanes of this thread's group, through `partial` [ROWS, LANES].
/// Every thread of the cube must call it (it holds a barrier); the caller syncs again before
/// `partial` is written anew.
#[cube]
fn group_sum(value: f32, partial: &mut SharedMemory<f32>) -> f32 {
    let base = UNIT_POS_Y as usize * LANES;
    partial[base + UNIT_POS_X as usize] = value;
    sync_cube();
    let mut total = 0.0f32;
    #[unroll]
    for q in 0..LANES {
        total += partial[base + q];
    }
    total
}

/// out = s / sqrt(mean(s²) + eps) · gamma, s = x + r; all [rows, width] contiguous, gamma f32.
#[cube(launch)]
fn residual_norm_forward_kernel<E: Float>(
    x: &Tensor<E>,
    r: &Tensor<E>,
    gamma: &Tensor<f32>,
    out: &mut Tensor<E>,
    rows: u32,
    epsilon: f32,
    #[comptime] width: usize,
) {
    let per_lane = comptime!(width.div_ceil(LANES));
    let rows = rows as usize;
    let lane = UNIT_POS_X as usize;
    let mut partial = SharedMemory::<f32>::new(ROWS * LANES);
    let gam = load_row(gamma, 0, true, width);
    // Cubes walk groups of rows together, so that every thread meets the same barriers.
    let mut group = CUBE_POS_X as usize;
    while group * ROWS < rows {
        let row = group * ROWS + UNIT_POS_Y as usize;
        let live = row < rows;
        let mut s = load_row(x, row, live, width);
        let rv = load_row(r, row, live, width);
        let mut squares = 0.0f32;
        #[unroll]
        for k in 0..per_lane {
            s[k] += rv[k];
            squares += s[k] * s[k];
        }
        let scale = 1.0 / f32::sqrt(group_sum(squares, &mut partial) / width as f32 + epsilon);
        #[unroll]
        for k in 0..per_lane {
            let col = k * LANES + lane;
            if live && col < width {
                out[row * width + col] = E::cast_from(s[k] * scale * gam[k]);
            }
        }
        sync_cube();
        group += CUBE_COUNT_X as usize;
    }
}

/// Gradients of `sum(out · dout)`: `dsum` [rows, width] (of x and r alike) and this cube's sum of
/// the gamma gradient over its rows, column `CUBE_POS_X` of `dgamma_part` [width, cubes].
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn residual_norm_backward_kernel<E: Float>(
    x: &Tensor<E>,
    r: &Tensor<E>,
    gamma: &Tensor<f32>,
    dout: &Tensor<E>,
    dsum: &mut Tensor<E>,
    dgamma_part: &mut Tensor<f32>,
    rows: u32,
    epsilon: f32,
    #[comptime] width: usize,
) {
    let per_lane = comptime!(width.div_ceil(LANES));
    let rows = rows as usize;
    let lane = UNIT_POS_X as usize;
    let slot = UNIT_POS_Y as usize;
    let mut squares_part = SharedMemory::<f32>::new(ROWS * LANES);
    let mut dot_part = SharedMemory::<f32>::new(ROWS * LANES);
    let gam = load_row(gamma, 0, true, width);
    let mut dgam = Array::<f32>::new(per_lane);
    #[unroll]
    for k in 0..per_lane {
        dgam[k] = 0.0;
    }
    let mut group = CUBE_POS_X as usize;
    while group * ROWS < rows {
        let row = group * ROWS + slot;
        let live = row < rows;
        let mut s = load_row(x, row, live, width);
        let rv = load_row(r, row, live, width);
        let d = load_row(dout, row, live, width);
        let mut squares = 0.0f32;
        let mut dot = 0.0f32;
        #[unroll]
        for k in 0..per_lane {
            s[k] += rv[k];
            squares += s[k] * s[k];
            dot += d[k] * gam[k] * s[k];
        }
        let total_squares = group_sum(squares, &mut squares_part);
        let total_dot = group_sum(dot, &mut dot_part);
        let scale = 1.0 / f32::sqrt(total_squares / width as f32 + epsilon);
        // mean(g · ŝ) / rms, with g = dout · gamma and ŝ = s · scale.
        let centre = total_dot * scale * scale * scale / width as f32;
        #[unroll]
        for k in 0..per_lane {
            let col = k * LANES + lane;
            if live && col < width {
                dsum[row * width + col] = E::cast_from(d[k] * gam[k] * scale - s[k] * centre);
            }
            dgam[k] += d[k] * s[k] * scale;
        }
        sync_cube();
        group += CUBE_COUNT_X as usize;
    }

    // The groups' gamma sums added over the cube's rows, LANES channels at a time.
    #[unroll]
    for k in 0..per_lane {
        squares_part[slot * LANES + lane] = dgam[k];
        sync_cube();
        let col = k * LANES + lane;
        if slot == 0 && col < width {
            let mut sum = 0.0f32;
            #[unroll]
            for q in 0..ROWS {
                sum += squares_part[q * LANES + lane];
            }
            dgamma_part[col * CUBE_COUNT_X as usize + CUBE_POS_X as usize] = sum;
        }
        sync_cube();
    }
}

/// Whether the kernels handle this input: x and the residual of one activation type, gamma f32,
/// at least one row, and a width the registers hold.
pub fn supported<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: &ResidualNormInput<Cube<R, F, I, BT>>,
) -> bool {
    let [rows, width] = input.dims();
    activation(&input.x)
        && input.residual.dtype() == input.x.dtype()
        && input.gamma.dtype() == DType::F32
        && rows > 0
        && (1..=MAX_WIDTH).contains(&width)
}

/// The contiguous inputs and the launch shape.
struct Launch<R: CubeRuntime> {
    x: CubeTensor<R>,
    r: CubeTensor<R>,
    gamma: CubeTensor<R>,
    epsilon: f32,
    /// rows, width
    dims: [usize; 2],
}

impl<R: CubeRuntime> Launch<R> {
    fn new<F: FloatElement, I: IntElement, BT: BoolElement>(input: ResidualNormInput<Cube<R, F, I, BT>>) -> Self {
        Launch {
            dims: input.dims(),
            x: prim(input.x),
            r: prim(input.residual),
            gamma: prim(input.gamma),
            epsilon: input.epsilon as f32,
        }
    }

    /// A new tensor of the activations' type.
    fn empty(&self, shape: Vec<usize>) -> CubeTensor<R> {
        empty_as(&self.x, shape, self.x.dtype)
    }

    fn cubes(&self) -> usize {
        self.dims[0].div_ceil(ROWS).min(MAX_CUBES)
    }
}

/// Forward on the kernel: [rows, d].
pub fn forward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: ResidualNormInput<Cube<R, F, I, BT>>,
) -> BurnTensor<Cube<R, F, I, BT>, 2> {
    let p = Launch::new(input);
    let [rows, width] = p.dims;
    let out = p.empty(vec![rows, width]);
    with_activation!(p.x.dtype, E => residual_norm_forward_kernel::launch::<E, R>(
        &p.x.client,
        CubeCount::Static(p.cubes() as u32, 1, 1),
        CubeDim::new_2d(LANES as u32, ROWS as u32),
        p.x.clone().into_tensor_arg(),
        p.r.clone().into_tensor_arg(),
        p.gamma.clone().into_tensor_arg(),
        out.clone().into_tensor_arg(),
        rows as u32,
        p.epsilon,
        width,
    ));
    tensor(out)
}

/// Backward on the kernel: gradients of `sum(out * dout)`.
pub fn backward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: ResidualNormInput<Cube<R, F, I, BT>>,
    dout: BurnTensor<Cube<R, F, I, BT>, 2>,
) -> ResidualNormGrads<Cube<R, F, I, BT>> {
    let p = Launch::new(input);
    let [rows, width] = p.dims;
    let cubes = p.cubes();
    let dsum = p.empty(vec![rows, width]);
    let dgamma_part = empty_like(&p.x, vec![width, cubes]);
    with_activation!(p.x.dtype, E => residual_norm_backward_kernel::launch::<E, R>(
        &p.x.client,
        CubeCount::Static(cubes as u32, 1, 1),
        CubeDim::new_2d(LANES as u32, ROWS as u32),
        p.x.clone().into_tensor_arg(),
        p.r.clone().into_tensor_arg(),
        p.gamma.clone().into_tensor_arg(),
        prim(dout).into_tensor_arg(),
        dsum.clone().into_tensor_arg(),
        dgamma_part.clone().into_tensor_arg(),
        rows as u32,
        p.epsilon,
        width,
    ));
    ResidualNormGrads {
        sum: tensor(dsum),
        gamma: row_sums(tensor(dgamma_part)),
    }
}
