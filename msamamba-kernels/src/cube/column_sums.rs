//! Column sums of a [rows, cols] tensor, the reduction behind a linear's bias gradient (its output
//! gradient summed over every row) and its weight gradient (the per-batch products summed).
//!
//! Why a kernel: burn's reduction along a tensor's leading axis runs as one to a few cubes when the
//! output is narrow, each thread walking the long axis alone.
//! Here a cube is `ROWS` groups of `LANES` threads over `LANES` consecutive columns (coalesced
//! loads) and a run of rows; the groups' sums meet in shared memory, and each cube writes one
//! partial per column into [cols, chunks], whose rows the same kernel then sums (a second launch
//! over the transposed view; one cube per 32 columns takes the few partials).
//!
//! t may be f32, f16 or bf16; the sums are f32 throughout, the result t's type.
//!
//! [`row_sums`] sums the other kernels' partials the same way: burn's reduction along a short
//! contiguous axis runs as a single cube for narrow outputs, and a training step makes dozens of
//! them.

use burn::tensor::Tensor as BurnTensor;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use super::launch::{Cube, empty_like, tensor};
use super::precision::{activation, with_activation};

/// Columns per cube (one lane each): a warp on NVIDIA.
const LANES: usize = 32;
/// Rows a cube reads at once.
const ROWS: usize = 8;
/// About this many cubes in all: several waves of a large GPU, few partials per column.
const CUBES: usize = 2048;
/// The fewest rows a cube sums: enough that a second launch of one cube per 32 columns sums the
/// partials of every column of the model (up to 2048 x 512 of them).
const MIN_RUN: usize = 512;
/// The most cubes along a launch grid dimension (WGPU's and CUDA's y).
const MAX_GRID: usize = 65_535;

/// This cube's sums of its columns over rows `[CUBE_POS_Y · per_chunk, + per_chunk)` into
/// column `CUBE_POS_Y` of `part` [cols, chunks]; t may have any strides.
#[cube(launch)]
fn column_sums_kernel<E: Float>(t: &Tensor<E>, part: &mut Tensor<f32>, rows: u32, cols: u32, per_chunk: u32) {
    let (rows, cols, per_chunk) = (rows as usize, cols as usize, per_chunk as usize);
    let lane = UNIT_POS_X as usize;
    let slot = UNIT_POS_Y as usize;
    let col = CUBE_POS_X as usize * LANES + lane;
    let chunk = CUBE_POS_Y as usize;
    let mut end = (chunk + 1) * per_chunk;
    if end > rows {
        end = rows;
    }
    let mut sum = 0.0f32;
    if col < cols {
        let mut row = chunk * per_chunk + slot;
        while row < end {
            sum += f32::cast_from(t[row * t.stride(0) + col * t.stride(1)]);
            row += ROWS;
        }
    }
    let mut partial = SharedMemory::<f32>::new(ROWS * LANES);
    partial[slot * LANES + lane] = sum;
    sync_cube();
    if slot == 0 && col < cols {
        let mut total = 0.0f32;
        #[unroll]
        for q in 0..ROWS {
            total += partial[q * LANES + lane];
        }
        part[col * CUBE_COUNT_Y as usize + chunk] = total;
    }
}

/// Whether the kernel takes `t`: an activation type, not empty, and few enough columns for the grid.
pub fn supported<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    t: &BurnTensor<Cube<R, F, I, BT>, 2>,
) -> bool {
    let [rows, cols] = t.dims();
    activation(t) && rows > 0 && cols > 0 && cols.div_ceil(LANES) <= MAX_GRID
}

/// The sums of `t`'s rows.
///
/// # Shapes
/// t: [rows, cols] -> [cols]
pub fn column_sums<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    t: BurnTensor<Cube<R, F, I, BT>, 2>,
) -> BurnTensor<Cube<R, F, I, BT>, 1> {
    let [rows, cols] = t.dims();
    let blocks = cols.div_ceil(LANES);
    let chunks = (CUBES / blocks).clamp(1, rows.div_ceil(MIN_RUN)).min(MAX_GRID);
    let per_chunk = rows.div_ceil(chunks);
    let chunks = rows.div_ceil(per_chunk);
    let t: CubeTensor<R> = t.into_primitive().tensor();
    let dtype = t.dtype;
    let part = empty_like(&t, vec![cols, chunks]);
    with_activation!(dtype, E => column_sums_kernel::launch::<E, R>(
        &t.client,
        CubeCount::Static(blocks as u32, chunks as u32, 1),
        CubeDim::new_2d(LANES as u32, ROWS as u32),
        t.clone().into_tensor_arg(),
        part.clone().into_tensor_arg(),
        rows as u32,
        cols as u32,
        per_chunk as u32,
    ));
    let part = tensor::<R, F, I, BT, 2>(part);
    let sums = if chunks == 1 {
        part.reshape([cols])
    } else {
        row_sums(part)
    };
    sums.cast(dtype)
}

/// The sums along `t`'s rows: its transpose's [`column_sums`], or burn's reduction where the
/// kernel does not take it.
///
/// # Shapes
/// t: [rows, cols] -> [rows]
pub fn row_sums<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    t: BurnTensor<Cube<R, F, I, BT>, 2>,
) -> BurnTensor<Cube<R, F, I, BT>, 1> {
    let rows = t.dims()[0];
    let t = t.transpose();
    if supported(&t) {
        column_sums(t)
    } else {
        t.sum_dim(0).reshape([rows])
    }
}
