//! The row attention as CubeCL kernels: one cube per (batch item, position, head), one thread per
//! row, the softmax over rows kept in registers.
//!
//! MSAs have at most a few hundred rows and the heads are narrow (d / n_heads = 32 in the paper
//! model), so a thread can own a row and no score matrix is ever written:
//! burn's generic attention spends its time in batched matmuls of [m, 32] x [32, m], the [m, m]
//! scores and their softmax in global memory, and the transposes to and from [b·l, heads, m, 32].
//! These kernels read qkv ([b, m, l, 3d]: queries, keys and values side by side) and write the
//! output in the model's own [b, m, l, d] layout.
//!
//! - Forward: K and V of the problem pass through shared memory in tiles of 32 rows (coalesced
//!   loads: one head's channels of a row are contiguous); each thread runs an online softmax over
//!   the keys for its query row (the running maximum rescales the sums when it grows), its q row
//!   and output in registers. Tiles keep the shared memory small whatever the row count (8 KiB at
//!   32 channels per head: Metal and lavapipe offer 32 KiB), and leave room for several cubes per
//!   multiprocessor.
//!   Each thread also writes its query's softmax statistics (largest score, inverse sum).
//! - Backward, recomputing the weights from those statistics instead of storing them: each query's
//!   c_i = sum_j p_ij dp_ij (dp_ij = dout_i . v_j) is dout_i . out_i, from the forward's output;
//!   then (1) per key, over tiles of Q and dout, dk_j = sum_i ds_ij q_i and
//!   dv_j = sum_i p_ij dout_i, ds_ij = p_ij (dp_ij - c_i); (2) per query, over tiles of K and V,
//!   dq_i = sum_j ds_ij k_j. Every gradient is owned by one thread: no atomics, no partial sums.
//!   Deriving the statistics and c_i again in the backward would take a third pass over the keys.
//!
//! - Vectors: rows are read and multiplied four channels at a time where the head's width allows
//!   (two or one otherwise). Each product of a register row with a shared row is a shared-memory
//!   read and a multiply-add per channel; read one float at a time, the reads would bound both
//!   kernels.
//! - The exponentials run in the scan kernels' fast-math modes (`__expf` on CUDA): no score is
//!   infinite (a masked key's is -1e4) and the running maximum starts at a finite
//!   [`FIRST_TOP`].
//!
//! qkv, the output and the gradients are f32, f16 or bf16 (one type), converted on load and store;
//! the softmax statistics and all arithmetic are f32.
//!
//! Problems are spread over the grid's x and y (65 535 cubes at most on each for WGPU and CUDA's
//! y), so any b·l·heads launches. Only f32 arithmetic, `exp`, shared memory and barriers:
//! nothing newer than sm_60 (Pascal) on CUDA.

use burn::tensor::{DType, Tensor as BurnTensor};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use super::launch::{Cube, empty_like, flat_grid, prim, tensor};
use super::precision::{activation, empty_as, with_activation};
use crate::row_attention::{MASKED_SCORE, RowAttentionInput, RowAttentionOutput, score_scale};

/// Rows per tile of keys (and of queries in the backward's second step) in shared memory.
const TILE: usize = 32;
/// Widest head the kernels keep in registers (two rows of it per thread, six in the backward).
const MAX_HEAD: usize = 64;
/// The running maximum's start: below any score (a masked key's is -1e4), and far enough inside
/// f32's range that exp(FIRST_TOP - s) never meets an infinity, which the kernels' fast-math modes
/// assume away.
const FIRST_TOP: f32 = -1.0e30;

/// Which problem (batch item, position, head) this cube solves, or `problems` when the cube is
/// one of the grid's spare ones.
#[cube]
fn problem_index(problems: usize) -> usize {
    let index = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    if index < problems { index } else { problems }
}

/// Loads one head of `n` rows (from the row at `base`) into shared memory [n, head]: consecutive
/// threads read consecutive channels (a head's channels are contiguous in [b, m, l, d]).
#[cube]
fn load_tile<E: Float, N: Size>(
    src: &Tensor<Vector<E, N>>,
    dst: &mut SharedMemory<Vector<f32, N>>,
    base: usize,
    stride: usize,
    n: usize,
    #[comptime] head: usize,
    #[comptime] threads: usize,
) {
    let mut idx = UNIT_POS_X as usize;
    while idx < n * head {
        dst[idx] = Vector::cast_from(src[base + (idx / head) * stride + idx % head]);
        idx += threads;
    }
}

/// Loads rows of K and V (the first key row at `first`, its value `width` vectors further) from
/// qkv into the two tiles and their key mask (from `first_key` of `keep`) into `kept`, then waits
/// for the whole cube.
#[cube]
#[allow(clippy::too_many_arguments)]
fn load_keys<E: Float, N: Size>(
    qkv: &Tensor<Vector<E, N>>,
    keep: &Tensor<f32>,
    ks: &mut SharedMemory<Vector<f32, N>>,
    vs: &mut SharedMemory<Vector<f32, N>>,
    kept: &mut SharedMemory<f32>,
    first: usize,
    width: usize,
    stride: usize,
    first_key: usize,
    n: usize,
    #[comptime] head: usize,
    #[comptime] threads: usize,
) {
    load_tile(qkv, ks, first, stride, n, head, threads);
    load_tile(qkv, vs, first + width, stride, n, head, threads);
    let me = UNIT_POS_X as usize;
    if me < n {
        kept[me] = keep[first_key + me];
    }
    sync_cube();
}

/// Rows in the tile starting at row `t0`.
#[cube]
fn tile_rows(t0: usize, rows: usize, #[comptime] tile: usize) -> usize {
    let mut n = rows - t0;
    if n > tile {
        n = tile;
    }
    n
}

/// Dot product of a register row with row `j` of a shared [n, head] tile, summed along the
/// vectors, then across their lanes.
#[cube]
fn dot<N: Size>(
    row: &Array<Vector<f32, N>>,
    tile: &SharedMemory<Vector<f32, N>>,
    j: usize,
    #[comptime] head: usize,
) -> f32 {
    let mut acc = Vector::<f32, N>::new(0.0);
    #[unroll]
    for c in 0..head {
        acc += row[c] * tile[j * head + c];
    }
    f32::cast_from(acc.vector_sum())
}

/// `acc += weight * tile[j]`, over a head.
#[cube]
fn add_scaled<N: Size>(
    acc: &mut Array<Vector<f32, N>>,
    weight: f32,
    tile: &SharedMemory<Vector<f32, N>>,
    j: usize,
    #[comptime] head: usize,
) {
    let w = Vector::<f32, N>::new(weight);
    #[unroll]
    for c in 0..head {
        acc[c] += w * tile[j * head + c];
    }
}

/// A register row of zeros.
#[cube]
fn zeros<N: Size>(#[comptime] head: usize) -> Array<Vector<f32, N>> {
    let mut row = Array::<Vector<f32, N>>::new(head);
    #[unroll]
    for c in 0..head {
        row[c] = Vector::new(0.0);
    }
    row
}

/// A register row, scaled, written to `dst` from `offset`.
#[cube]
fn store_row<E: Float, N: Size>(
    row: &Array<Vector<f32, N>>,
    dst: &mut Tensor<Vector<E, N>>,
    offset: usize,
    scale: f32,
    #[comptime] head: usize,
) {
    let s = Vector::<f32, N>::new(scale);
    #[unroll]
    for c in 0..head {
        dst[offset + c] = Vector::cast_from(row[c] * s);
    }
}

/// A row of a problem, scaled, into registers.
#[cube]
fn load_row<E: Float, N: Size>(
    src: &Tensor<Vector<E, N>>,
    row: &mut Array<Vector<f32, N>>,
    offset: usize,
    scale: f32,
    #[comptime] head: usize,
) {
    let s = Vector::<f32, N>::new(scale);
    #[unroll]
    for c in 0..head {
        row[c] = Vector::<f32, N>::cast_from(src[offset + c]) * s;
    }
}

/// Where a cube's problem lives in a [b, m, l, `packed` x width] tensor (3 for qkv, 1 for the
/// output): the offset of (its batch item, row 0, its position, its head's first channel), the
/// stride between rows, and the batch item.
#[cube]
fn problem_base(
    problem: usize,
    rows: usize,
    len: usize,
    n_heads: usize,
    packed: usize,
    #[comptime] head: usize,
) -> (usize, usize, usize) {
    let width = packed * n_heads * head;
    let item = problem / (len * n_heads);
    let base = (item * rows * len + (problem / n_heads) % len) * width + (problem % n_heads) * head;
    (base, len * width, item)
}

/// Forward: out [b, m, l, d] and the softmax statistics from qkv [b, m, l, 3d] and the key mask
/// `keep` [b, m]. Keys come in tiles of `tile` rows; `head` counts a head's vectors of N channels.
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
#[allow(clippy::too_many_arguments)]
pub fn row_attention_forward_kernel<E: Float, N: Size>(
    qkv: &Tensor<Vector<E, N>>,
    keep: &Tensor<f32>,
    out: &mut Tensor<Vector<E, N>>,
    stats: &mut Tensor<f32>,
    batch: u32,
    rows: u32,
    len: u32,
    n_heads: u32,
    scale: f32,
    masked: f32,
    #[comptime] head: usize,
    #[comptime] tile: usize,
    #[comptime] threads: usize,
) {
    let rows = rows as usize;
    let problems = batch as usize * len as usize * n_heads as usize;
    let problem = problem_index(problems);
    if problem == problems {
        terminate!();
    }
    let me = UNIT_POS_X as usize;
    let (len, n_heads) = (len as usize, n_heads as usize);
    let (base, stride, item) = problem_base(problem, rows, len, n_heads, 3, head);
    let (out_base, out_stride, _) = problem_base(problem, rows, len, n_heads, 1, head);
    let width = n_heads * head;

    let mut ks = SharedMemory::<Vector<f32, N>>::new(tile * head);
    let mut vs = SharedMemory::<Vector<f32, N>>::new(tile * head);
    let mut kept = SharedMemory::<f32>::new(tile);
    let mut qr = zeros::<N>(head);
    let mut acc = zeros::<N>(head);
    if me < rows {
        load_row(qkv, &mut qr, base + me * stride, scale, head);
    }
    let mut top = f32::new(FIRST_TOP);
    let mut total = 0.0f32;
    let mut t0 = 0;
    while t0 < rows {
        let n = tile_rows(t0, rows, tile);
        load_keys(
            qkv,
            keep,
            &mut ks,
            &mut vs,
            &mut kept,
            base + width + t0 * stride,
            width,
            stride,
            item * rows + t0,
            n,
            head,
            threads,
        );
        if me < rows {
            for j in 0..n {
                let mut s = masked;
                if kept[j] > 0.5 {
                    s = dot(&qr, &ks, j, head);
                }
                if s > top {
                    let shrink = f32::exp(top - s);
                    total *= shrink;
                    let rescale = Vector::<f32, N>::new(shrink);
                    #[unroll]
                    for c in 0..head {
                        acc[c] *= rescale;
                    }
                    top = s;
                }
                let p = f32::exp(s - top);
                total += p;
                add_scaled(&mut acc, p, &vs, j, head);
            }
        }
        sync_cube();
        t0 += tile;
    }
    if me < rows {
        store_row(&acc, out, out_base + me * out_stride, 1.0 / total, head);
        let at = problem * rows + me;
        stats[at] = top;
        stats[problems * rows + at] = 1.0 / total;
    }
}

/// Backward: qkv's gradient [b, m, l, 3d] from the forward's input, output and statistics and
/// dout [b, m, l, d]. Queries (step 1) and keys (step 2) come in tiles of `tile` rows; `head` counts a
/// head's vectors of N channels.
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
#[allow(clippy::too_many_arguments)]
pub fn row_attention_backward_kernel<E: Float, N: Size>(
    qkv: &Tensor<Vector<E, N>>,
    keep: &Tensor<f32>,
    out: &Tensor<Vector<E, N>>,
    stats: &Tensor<f32>,
    dout: &Tensor<Vector<E, N>>,
    dqkv: &mut Tensor<Vector<E, N>>,
    batch: u32,
    rows: u32,
    len: u32,
    n_heads: u32,
    scale: f32,
    masked: f32,
    #[comptime] head: usize,
    #[comptime] tile: usize,
    #[comptime] threads: usize,
) {
    let rows = rows as usize;
    let problems = batch as usize * len as usize * n_heads as usize;
    let problem = problem_index(problems);
    if problem == problems {
        terminate!();
    }
    let me = UNIT_POS_X as usize;
    let (len, n_heads) = (len as usize, n_heads as usize);
    let (base, stride, item) = problem_base(problem, rows, len, n_heads, 3, head);
    let (out_base, out_stride, _) = problem_base(problem, rows, len, n_heads, 1, head);
    let width = n_heads * head;
    // This thread's row: its query (then key and value) in qkv, its output and dout.
    let mine = base + me * stride;
    let out_mine = out_base + me * out_stride;

    let mut sa = SharedMemory::<Vector<f32, N>>::new(tile * head);
    let mut sb = SharedMemory::<Vector<f32, N>>::new(tile * head);
    let mut kept = SharedMemory::<f32>::new(tile);
    let mut peak = SharedMemory::<f32>::new(threads);
    let mut norm = SharedMemory::<f32>::new(threads);
    let mut centre = SharedMemory::<f32>::new(threads);
    let mut qr = zeros::<N>(head);
    let mut dor = zeros::<N>(head);
    // Per query: the forward's statistics, and c_i = dout_i . out_i.
    if me < rows {
        load_row(qkv, &mut qr, mine, scale, head);
        load_row(dout, &mut dor, out_mine, 1.0, head);
        let at = problem * rows + me;
        peak[me] = stats[at];
        norm[me] = stats[problems * rows + at];
        let mut weighted = Vector::<f32, N>::new(0.0);
        #[unroll]
        for c in 0..head {
            weighted += dor[c] * Vector::<f32, N>::cast_from(out[out_mine + c]);
        }
        centre[me] = f32::cast_from(weighted.vector_sum());
    }

    // (1) Per key: dk and dv, over tiles of Q and dout.
    let mut kr = zeros::<N>(head);
    let mut vr = zeros::<N>(head);
    let mut dkr = zeros::<N>(head);
    let mut dvr = zeros::<N>(head);
    let mut live = false;
    if me < rows {
        load_row(qkv, &mut kr, mine + width, scale, head);
        load_row(qkv, &mut vr, mine + 2 * width, 1.0, head);
        live = keep[item * rows + me] > 0.5;
    }
    let mut t0 = 0;
    while t0 < rows {
        let n = tile_rows(t0, rows, tile);
        load_tile(qkv, &mut sa, base + t0 * stride, stride, n, head, threads);
        load_tile(dout, &mut sb, out_base + t0 * out_stride, out_stride, n, head, threads);
        sync_cube();
        if me < rows {
            for i in 0..n {
                let mut s = masked;
                if live {
                    s = dot(&kr, &sa, i, head);
                }
                let p = f32::exp(s - peak[t0 + i]) * norm[t0 + i];
                add_scaled(&mut dvr, p, &sb, i, head);
                if live {
                    let ds = p * (dot(&vr, &sb, i, head) - centre[t0 + i]);
                    add_scaled(&mut dkr, ds, &sa, i, head);
                }
            }
        }
        sync_cube();
        t0 += tile;
    }
    if me < rows {
        store_row(&dkr, dqkv, mine + width, scale, head);
        store_row(&dvr, dqkv, mine + 2 * width, 1.0, head);
    }

    // (2) Per query: dq, over the key tiles.
    let mut dqr = zeros::<N>(head);
    let mut my_peak = 0.0f32;
    let mut my_norm = 0.0f32;
    let mut my_centre = 0.0f32;
    if me < rows {
        my_peak = peak[me];
        my_norm = norm[me];
        my_centre = centre[me];
    }
    t0 = 0;
    while t0 < rows {
        let n = tile_rows(t0, rows, tile);
        load_keys(
            qkv,
            keep,
            &mut sa,
            &mut sb,
            &mut kept,
            base + width + t0 * stride,
            width,
            stride,
            item * rows + t0,
            n,
            head,
            threads,
        );
        if me < rows {
            for j in 0..n {
                if kept[j] > 0.5 {
                    let p = f32::exp(dot(&qr, &sa, j, head) - my_peak) * my_norm;
                    let ds = p * (dot(&dor, &sb, j, head) - my_centre);
                    add_scaled(&mut dqr, ds, &sa, j, head);
                }
            }
        }
        sync_cube();
        t0 += tile;
    }
    if me < rows {
        store_row(&dqr, dqkv, mine, scale, head);
    }
}

/// Threads per cube: one per row, rounded up to whole warps.
fn threads(rows: usize) -> usize {
    rows.next_multiple_of(32)
}

/// Whether the kernels handle this input: qkv of an activation type, an f32 key mask, at least one problem, a head of at most
/// [`MAX_HEAD`] channels, one thread per row within the device's cube size (1 024 rows on CUDA,
/// the adapter's limit on WGPU), and the shared memory within the device's.
pub fn supported<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: &RowAttentionInput<Cube<R, F, I, BT>>,
) -> bool {
    let [batch, rows, len, width] = input.dims();
    let head = width / input.n_heads;
    let threads = threads(rows);
    // The backward's: two tiles, the tile's mask, three floats per row.
    let shared = 4 * (2 * TILE * head + TILE + 3 * threads);
    let device = input.qkv.clone().into_primitive().tensor();
    let hardware = &device.client.properties().hardware;
    activation(&input.qkv)
        && input.key_keep.dtype() == DType::F32
        && batch * rows * len > 0
        && (1..=MAX_HEAD).contains(&head)
        && threads <= hardware.max_units_per_cube as usize
        && shared <= hardware.max_shared_memory_size
}

/// The contiguous inputs, their sizes, and the launch shape.
struct Launch<R: CubeRuntime> {
    qkv: CubeTensor<R>,
    keep: CubeTensor<R>,
    /// batch, rows, positions, width (a third of qkv's)
    dims: [usize; 4],
    n_heads: usize,
    /// Channels per vector of the kernels' loads and arithmetic.
    vector: usize,
}

/// The widest vector (4, 2 or 1 channels) that divides a head: a head's channels are then whole
/// vectors, read 16 bytes at a time from global and shared memory (scalar shared-memory reads
/// made the inner products load-bound). Every tensor's start is aligned to it: burn keeps a slice
/// as a view only at the device's memory alignment, and copies it otherwise.
fn vector_width(head: usize) -> usize {
    match head % 4 {
        0 => 4,
        2 => 2,
        _ => 1,
    }
}

impl<R: CubeRuntime> Launch<R> {
    fn new<F: FloatElement, I: IntElement, BT: BoolElement>(input: RowAttentionInput<Cube<R, F, I, BT>>) -> Self {
        let dims = input.dims();
        Launch {
            vector: vector_width(dims[3] / input.n_heads),
            dims,
            n_heads: input.n_heads,
            qkv: prim(input.qkv),
            keep: prim(input.key_keep),
        }
    }

    /// One cube per problem, laid over x and (past 65 535) y.
    fn cube_count(&self) -> CubeCount {
        let [batch, _, len, _] = self.dims;
        flat_grid(batch * len * self.n_heads)
    }

    fn cube_dim(&self) -> CubeDim {
        CubeDim::new_1d(threads(self.dims[1]) as u32)
    }

    /// A head's vectors.
    fn head(&self) -> usize {
        self.dims[3] / self.n_heads / self.vector
    }

    fn scale(&self) -> f32 {
        score_scale(self.dims[3], self.n_heads) as f32
    }
}

/// Forward on the kernel: out [b, m, l, d] and the softmax statistics.
pub fn forward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: RowAttentionInput<Cube<R, F, I, BT>>,
) -> RowAttentionOutput<Cube<R, F, I, BT>> {
    let p = Launch::new(input);
    let [batch, rows, len, _] = p.dims;
    let out = empty_as(&p.qkv, p.dims.to_vec(), p.qkv.dtype);
    let stats = empty_like(&p.qkv, vec![2, batch, len, p.n_heads, rows]);
    with_activation!(p.qkv.dtype, E => row_attention_forward_kernel::launch::<E, R>(
        &p.qkv.client,
        p.cube_count(),
        p.cube_dim(),
        p.vector,
        p.qkv.clone().into_tensor_arg(),
        p.keep.clone().into_tensor_arg(),
        out.clone().into_tensor_arg(),
        stats.clone().into_tensor_arg(),
        batch as u32,
        rows as u32,
        len as u32,
        p.n_heads as u32,
        p.scale(),
        MASKED_SCORE,
        p.head(),
        TILE,
        threads(rows),
    ));
    RowAttentionOutput {
        out: tensor(out),
        stats: tensor(stats),
    }
}

/// Backward on the kernel: the gradient of `sum(out * dout)` for qkv, from what [`forward`]
/// returned for the same input.
pub fn backward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: RowAttentionInput<Cube<R, F, I, BT>>,
    saved: RowAttentionOutput<Cube<R, F, I, BT>>,
    dout: BurnTensor<Cube<R, F, I, BT>, 4>,
) -> BurnTensor<Cube<R, F, I, BT>, 4> {
    let p = Launch::new(input);
    let (out, stats, dout) = (prim(saved.out), prim(saved.stats), prim(dout));
    let [batch, rows, len, _] = p.dims;
    let grad = empty_as(&p.qkv, p.qkv.meta.shape().to_vec(), p.qkv.dtype);
    with_activation!(p.qkv.dtype, E => row_attention_backward_kernel::launch::<E, R>(
        &p.qkv.client,
        p.cube_count(),
        p.cube_dim(),
        p.vector,
        p.qkv.clone().into_tensor_arg(),
        p.keep.clone().into_tensor_arg(),
        out.into_tensor_arg(),
        stats.into_tensor_arg(),
        dout.into_tensor_arg(),
        grad.clone().into_tensor_arg(),
        batch as u32,
        rows as u32,
        len as u32,
        p.n_heads as u32,
        p.scale(),
        MASKED_SCORE,
        p.head(),
        TILE,
        threads(rows),
    ));
    tensor(grad)
}
