//! The selective scan's forward kernel, and the tile loads it shares with the backward.
//!
//! One cube per (block of `CUBE_DIM_X` channels, batch row, segment of L); one thread per channel,
//! running the recurrence over the segment's positions in order. With one segment (the batch rows
//! and channels fill the GPU) that is the whole scan. Otherwise the segments are the chunks of
//! `KernelConfig::chunk` positions, scanned in parallel: a first launch (`to_end`) scans each segment from a zero state and keeps only its end
//! state, its sum of steps delta' and delta' itself; `combine.rs` chains those into each
//! segment's true start state (the end states are linear in the start state, with decay
//! exp(a · sum delta')); a second launch rescans every segment from its start state, taking
//! delta' as computed (no second softplus), and writes y. Reading u and B twice and writing
//! delta' is the price of filling the GPU when b·d alone is too small.
//!
//! - Registers: the thread's state x [N], its row of A [N], its D and delta bias. The state
//!   never leaves registers, so the recurrence costs no memory traffic.
//! - Shared memory: one time tile (`tile` positions) of u, delta (or delta') and z for the cube's
//!   channels, loaded with consecutive threads on consecutive positions, or on consecutive
//!   channels when the tensors are channels-last (coalesced either way), rows padded by one float
//!   so that the per-channel reads of the recurrence hit distinct banks; the tile of B and C
//!   ([N, tile], or [tile, N] channels-last), which every channel of the batch row reads
//!   (broadcast). The u tile is reused to stage y for a coalesced store.
//! - Global memory: inputs read once per launch, y (or delta') written once; per segment, the
//!   start state read and (`to_end`) the end state and sum of delta' written, [b, segments, d, N]
//!   and [b, segments, d]: N/segment floats per input element.
//!
//! Under autodiff a one-segment launch also `save`s what the backward would otherwise run the
//! forward again for (the first launch above, plus the chaining): delta' and the state entering
//! every chunk, from the scan it runs anyway, so the backward skips three passes over the inputs.
//!
//! The activations (u, delta, z, B, C, y) may be f32, f16 or bf16 in global memory (the kernel's
//! type `E`); they are converted on load and store, and everything else is f32: registers,
//! shared memory, the parameters and the checkpoints. Only f32 arithmetic, conversions, `exp`,
//! `log1p`, shared memory and barriers: nothing newer than sm_60 (Pascal) on CUDA, and plain
//! compute shaders on WGPU.
//!
//! The scan kernels run in fast-math modes that make `exp` the hardware's approximate
//! exponential (`__expf` on CUDA, as mamba_ssm's `exp2f` under `--use_fast_math`): the accurate
//! `expf` is about ten instructions, and the backward takes four exponentials per state and
//! position. Its relative error, a few ulp plus about 2^-22·|x|, is far inside the tests'
//! tolerances. The modes assume no infinities: the sigmoid takes exp(-|x|) and softplus stops at 20,
//! and the decays exp(delta' · A) are at most 1 for the model's non-negative step sizes.

use cubecl::prelude::*;

/// softplus(x) = log(1 + e^x), as mamba_ssm computes it (identity above 20).
#[cube]
pub fn softplus(x: f32) -> f32 {
    let mut out = x;
    if x <= 20.0 {
        out = f32::log1p(f32::exp(x));
    }
    out
}

/// Logistic sigmoid.
#[cube]
pub fn sigmoid(x: f32) -> f32 {
    // exp of -|x| alone: never infinite, which the kernels' fast-math modes rule out.
    let e = f32::exp(-f32::abs(x));
    let s = 1.0 / (1.0 + e);
    select(x >= 0.0, s, e * s)
}

/// The offset of (batch row, channel or state index `c`, position `pos`) in a [b, c, l] tensor of
/// any strides: the model hands the scan views (its channels-last activations, slices of the x
/// projection) rather than channels-first copies.
#[cube]
pub fn at<T: CubePrimitive>(t: &Tensor<T>, batch: usize, c: usize, pos: usize) -> usize {
    batch * t.stride(0) + c * t.stride(1) + pos * t.stride(2)
}

/// The tile row (channel or state index, of `rows`) that load slot `idx` covers. Consecutive
/// slots take consecutive memory: consecutive positions, or consecutive rows when `channels_last`
/// (the rows are then adjacent in memory), so every warp load is coalesced.
#[cube]
pub fn slot_row(
    idx: usize,
    #[comptime] rows: usize,
    #[comptime] tile: usize,
    #[comptime] channels_last: bool,
) -> usize {
    let mut r = idx / tile;
    if channels_last {
        r = idx % rows;
    }
    r
}

/// The tile position that load slot `idx` covers (see [`slot_row`]).
#[cube]
pub fn slot_pos(
    idx: usize,
    #[comptime] rows: usize,
    #[comptime] tile: usize,
    #[comptime] channels_last: bool,
) -> usize {
    let mut j = idx % tile;
    if channels_last {
        j = idx / rows;
    }
    j
}

/// Loads `steps` (≤ `tile`) positions from `t0` of a [b, d, l] tensor into shared memory rows of
/// `tile + 1` (f32 whatever the tensor's type), one row per channel of the cube. The padding keeps
/// both the loads (consecutive channels or positions) and the recurrence's per-channel reads on
/// distinct banks.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn load_rows<E: Float>(
    src: &Tensor<E>,
    dst: &mut SharedMemory<f32>,
    batch: usize,
    first: usize,
    dim: usize,
    t0: usize,
    steps: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] channels_last: bool,
) {
    let me = UNIT_POS_X as usize;
    #[unroll]
    for k in 0..tile {
        let idx = k * block + me;
        let ch = slot_row(idx, block, tile, channels_last);
        let j = slot_pos(idx, block, tile, channels_last);
        let gch = first + ch;
        let mut v = 0.0f32;
        if j < steps && gch < dim {
            v = f32::cast_from(src[at(src, batch, gch, t0 + j)]);
        }
        dst[ch * (tile + 1) + j] = v;
    }
}

/// Stores shared memory rows of `tile + 1` back into `steps` positions from `t0` of a [b, d, l]
/// tensor, rounded to its type.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn store_rows<E: Float>(
    src: &SharedMemory<f32>,
    dst: &mut Tensor<E>,
    batch: usize,
    first: usize,
    dim: usize,
    t0: usize,
    steps: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] channels_last: bool,
) {
    let me = UNIT_POS_X as usize;
    #[unroll]
    for k in 0..tile {
        let idx = k * block + me;
        let ch = slot_row(idx, block, tile, channels_last);
        let j = slot_pos(idx, block, tile, channels_last);
        let gch = first + ch;
        if j < steps && gch < dim {
            dst[at(dst, batch, gch, t0 + j)] = E::cast_from(src[ch * (tile + 1) + j]);
        }
    }
}

/// Where state index `i` of tile position `j` lives in a shared tile of B or C: [tile, N] when
/// `position_major`, else [N, tile].
#[cube]
pub fn state_slot(
    i: usize,
    j: usize,
    #[comptime] n_state: usize,
    #[comptime] tile: usize,
    #[comptime] position_major: bool,
) -> usize {
    let mut s = i * tile + j;
    if position_major {
        s = j * n_state + i;
    }
    s
}

/// Loads `steps` positions from `t0` of a [b, N, l] tensor (B or C) into shared memory, laid out
/// as [`state_slot`] says. Global reads are coalesced (see [`slot_row`]); a layout whose shared
/// stores run across the loads' order conflicts on banks unless the tile is short. Position-major
/// puts a position's N values side by side, which lets the compiler fetch them four at a time.
#[cube]
#[allow(clippy::too_many_arguments)]
pub fn load_states<E: Float>(
    src: &Tensor<E>,
    dst: &mut SharedMemory<f32>,
    batch: usize,
    t0: usize,
    steps: usize,
    #[comptime] n_state: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] position_major: bool,
    #[comptime] channels_last: bool,
) {
    let mut idx = UNIT_POS_X as usize;
    while idx < n_state * tile {
        let i = slot_row(idx, n_state, tile, channels_last);
        let j = slot_pos(idx, n_state, tile, channels_last);
        let mut v = 0.0f32;
        if j < steps {
            v = f32::cast_from(src[at(src, batch, i, t0 + j)]);
        }
        dst[state_slot(i, j, n_state, tile, position_major)] = v;
        idx += block;
    }
}

/// Forward scan over segments of `seg` positions (segment = `CUBE_POS_Z`). With `to_end`, each
/// segment starts from zero and only its end state `end` [b, segments, d, N], its sum of delta'
/// `dt_sum` [b, segments, d] and delta' itself `dtp` [b, d, l] are written; otherwise y is
/// written, each segment starting from `start` [b, segments, d, N] with delta' read from `dtp`
/// when `has_start`, from zero otherwise. With `save` (one segment, from zero), y, delta' `dtp`
/// and the state entering every chunk of `chunk` positions `end` [b, chunks, d, N] are written.
///
/// u, delta, z, y, dtp [b, d, l] and bm, cm [b, N, l] may have any strides (see [`at`]);
/// `channels_last` says which of positions or channels (states) are adjacent in memory, for
/// coalesced loads. a [d, N], dskip, delta_bias [d] and the per-segment tensors are contiguous.
/// The activations (u, delta, z, bm, cm and y) are of type `E`, the rest f32. Tensors a launch
/// does not use may be any tensor of their type (`z` without `has_z`, ...).
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
#[allow(clippy::too_many_arguments)]
pub fn scan_forward_kernel<E: Float>(
    u: &Tensor<E>,
    delta: &Tensor<E>,
    z: &Tensor<E>,
    a: &Tensor<f32>,
    bm: &Tensor<E>,
    cm: &Tensor<E>,
    dskip: &Tensor<f32>,
    delta_bias: &Tensor<f32>,
    start: &Tensor<f32>,
    y: &mut Tensor<E>,
    end: &mut Tensor<f32>,
    dt_sum: &mut Tensor<f32>,
    dtp: &mut Tensor<f32>,
    dim: u32,
    len: u32,
    seg: u32,
    chunk: u32,
    #[comptime] n_state: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] has_z: bool,
    #[comptime] delta_softplus: bool,
    #[comptime] has_start: bool,
    #[comptime] to_end: bool,
    #[comptime] save: bool,
    #[comptime] channels_last: bool,
) {
    let dim = dim as usize;
    let len = len as usize;
    let me = UNIT_POS_X as usize;
    let batch = CUBE_POS_Y as usize;
    let segment = CUBE_POS_Z as usize;
    let segments = CUBE_COUNT_Z as usize;
    let first = CUBE_POS_X as usize * block;
    let channel = first + me;
    let live = channel < dim;
    let row = tile + 1;
    let seg_start = segment * seg as usize;
    let mut seg_end = seg_start + seg as usize;
    if seg_end > len {
        seg_end = len;
    }
    let state_base = ((batch * segments + segment) * dim + channel) * n_state;
    // With `save`: the next chunk start, and where its state goes.
    let chunk = chunk as usize;
    let mut next_start = chunk;
    let mut saved_at = (batch * len.div_ceil(chunk) * dim + channel) * n_state;

    // Tiles the launch does not read take no room: more cubes fit on a multiprocessor.
    let z_len = comptime!(if has_z && !to_end { block * (tile + 1) } else { 1 });
    let c_len = comptime!(if to_end { 1 } else { n_state * tile });
    let mut su = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sdt = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sz = SharedMemory::<f32>::new(z_len);
    let mut sb = SharedMemory::<f32>::new(n_state * tile);
    let mut sc = SharedMemory::<f32>::new(c_len);

    let mut x = Array::<f32>::new(n_state);
    let mut ar = Array::<f32>::new(n_state);
    let mut skip = 0.0f32;
    let mut bias = 0.0f32;
    let mut dt_acc = 0.0f32;
    #[unroll]
    for i in 0..n_state {
        x[i] = 0.0;
        ar[i] = 0.0;
    }
    if live {
        #[unroll]
        for i in 0..n_state {
            ar[i] = a[channel * n_state + i];
            if has_start {
                x[i] = start[state_base + i];
            }
        }
        skip = dskip[channel];
        bias = delta_bias[channel];
        if save {
            #[unroll]
            for i in 0..n_state {
                end[saved_at + i] = 0.0;
            }
        }
    }

    let mut t0 = seg_start;
    while t0 < seg_end {
        let mut steps = seg_end - t0;
        if steps > tile {
            steps = tile;
        }
        // u, delta (or delta') and z in one loop, B and C in another: each thread has several
        // independent global loads in flight, hiding their latency (one tensor after another,
        // each load waits for the last).
        let read_z = comptime!(has_z && !to_end);
        #[unroll]
        for k in 0..tile {
            let idx = k * block + me;
            let ch = slot_row(idx, block, tile, channels_last);
            let j = slot_pos(idx, block, tile, channels_last);
            let gch = first + ch;
            let mut vu = 0.0f32;
            let mut vd = 0.0f32;
            let mut vz = 0.0f32;
            if j < steps && gch < dim {
                vu = f32::cast_from(u[at(u, batch, gch, t0 + j)]);
                if has_start {
                    vd = dtp[at(dtp, batch, gch, t0 + j)];
                } else {
                    vd = f32::cast_from(delta[at(delta, batch, gch, t0 + j)]);
                }
                if read_z {
                    vz = f32::cast_from(z[at(z, batch, gch, t0 + j)]);
                }
            }
            su[ch * row + j] = vu;
            sdt[ch * row + j] = vd;
            if read_z {
                sz[ch * row + j] = vz;
            }
        }
        // B and C position-major when their states are adjacent in memory: the shared stores
        // then follow the coalesced loads without bank conflicts.
        let mut idx = me;
        while idx < n_state * tile {
            let i = slot_row(idx, n_state, tile, channels_last);
            let j = slot_pos(idx, n_state, tile, channels_last);
            let mut vb = 0.0f32;
            let mut vc = 0.0f32;
            if j < steps {
                vb = f32::cast_from(bm[at(bm, batch, i, t0 + j)]);
                if !to_end {
                    vc = f32::cast_from(cm[at(cm, batch, i, t0 + j)]);
                }
            }
            let s = state_slot(i, j, n_state, tile, channels_last);
            sb[s] = vb;
            if !to_end {
                sc[s] = vc;
            }
            idx += block;
        }
        sync_cube();

        // The recurrence, one channel per thread, state in registers.
        for j in 0..steps {
            let uu = su[me * row + j];
            let mut dt = sdt[me * row + j];
            if !has_start {
                dt += bias;
                if delta_softplus {
                    dt = softplus(dt);
                }
                if to_end || save {
                    sdt[me * row + j] = dt;
                }
            }
            let du = dt * uu;
            if to_end {
                dt_acc += dt;
                #[unroll]
                for i in 0..n_state {
                    x[i] = f32::exp(dt * ar[i]) * x[i] + du * sb[state_slot(i, j, n_state, tile, channels_last)];
                }
            } else {
                let mut acc = 0.0f32;
                #[unroll]
                for i in 0..n_state {
                    let s = state_slot(i, j, n_state, tile, channels_last);
                    x[i] = f32::exp(dt * ar[i]) * x[i] + du * sb[s];
                    acc += x[i] * sc[s];
                }
                let mut out = acc + skip * uu;
                if has_z {
                    let zz = sz[me * row + j];
                    out = out * zz * sigmoid(zz);
                }
                su[me * row + j] = out;
                // The same position for every thread: a uniform branch.
                if save && t0 + j + 1 == next_start && next_start < len {
                    saved_at += dim * n_state;
                    next_start += chunk;
                    if live {
                        #[unroll]
                        for i in 0..n_state {
                            end[saved_at + i] = x[i];
                        }
                    }
                }
            }
        }
        sync_cube();

        if to_end || save {
            store_rows(&sdt, dtp, batch, first, dim, t0, steps, block, tile, channels_last);
        }
        if !to_end {
            store_rows(&su, y, batch, first, dim, t0, steps, block, tile, channels_last);
        }
        sync_cube();
        t0 += tile;
    }

    if to_end && live {
        #[unroll]
        for i in 0..n_state {
            end[state_base + i] = x[i];
        }
        dt_sum[(batch * segments + segment) * dim + channel] = dt_acc;
    }
}
