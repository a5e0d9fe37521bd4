//! The selective scan's backward kernel.
//!
//! One cube per (block of `CUBE_DIM_X` channels, batch row), one thread per channel, as in the
//! forward. The sequence is walked backwards one chunk at a time; inside a chunk, one tile of
//! `tile` positions at a time. Per-position states are never stored in global memory:
//!
//! 1. the forward kernel saved the state at each chunk start (`ckpt` [b, d, chunks, N]);
//! 2. for each chunk (last first), the thread re-runs the forward over the chunk from that state
//!    and keeps the state at each tile start in `scratch` [cubes, chunk / tile, N, block]
//!    (coalesced: consecutive threads, consecutive floats; it stays in L2);
//! 3. for each tile of the chunk (last first), it re-runs the tile's `tile` steps from the saved
//!    tile-start state into shared memory, then runs the reverse recurrence over them.
//!
//! - Registers: the adjoint state h [N], A's row, the running sums for dA [N], dD and
//!   d(delta_bias).
//! - Shared memory: the tile's inputs (u, delta, z, dy; B and C) loaded coalesced; the tile's
//!   states [tile + 1, N, block + 1] (padded rows: conflict-free for both the per-thread writes and
//!   the per-row reduction reads); and the per-channel dB terms [tile, N, block + 1]. The dC terms
//!   reuse the state slots once a state is no longer needed. dB and dC are summed over the cube's
//!   channels here and over channel blocks by the caller.
//! - Global memory: inputs read for the reverse pass, u / delta / B read twice more (forward
//!   recompute of the chunk-start states and of the chunk), du / ddelta / dz written once, dB / dC
//!   per channel block [b, blocks, N, l], dA / dD / d(delta_bias) per batch row.
//!
//! Extra memory: the chunk-start states, b·d·N·⌈l/chunk⌉ floats (N/chunk of u), the scratch
//! b·d·N·chunk/tile floats, and the per-block dB/dC partials: O(b·d·l), never O(b·d·N·l).
//!
//! Only f32 arithmetic, `exp`, shared memory and barriers: nothing newer than sm_60 (Pascal).

use cubecl::prelude::*;

use super::forward::{sigmoid, softplus};

/// Loads `tile` positions from `t0` of a [b, d, l] tensor into shared memory rows of `tile + 1`.
#[cube]
fn load_rows(
    src: &Tensor<f32>,
    dst: &mut SharedMemory<f32>,
    batch: usize,
    first: usize,
    dim: usize,
    len: usize,
    t0: usize,
    steps: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
) {
    let me = UNIT_POS_X as usize;
    #[unroll]
    for k in 0..tile {
        let idx = k * block + me;
        let ch = idx / tile;
        let j = idx % tile;
        let gch = first + ch;
        let mut v = 0.0f32;
        if j < steps && gch < dim {
            v = src[(batch * dim + gch) * len + t0 + j];
        }
        dst[ch * (tile + 1) + j] = v;
    }
}

/// Stores shared memory rows of `tile + 1` back into `tile` positions of a [b, d, l] tensor.
#[cube]
fn store_rows(
    src: &SharedMemory<f32>,
    dst: &mut Tensor<f32>,
    batch: usize,
    first: usize,
    dim: usize,
    len: usize,
    t0: usize,
    steps: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
) {
    let me = UNIT_POS_X as usize;
    #[unroll]
    for k in 0..tile {
        let idx = k * block + me;
        let ch = idx / tile;
        let j = idx % tile;
        let gch = first + ch;
        if j < steps && gch < dim {
            dst[(batch * dim + gch) * len + t0 + j] = src[ch * (tile + 1) + j];
        }
    }
}

/// Loads `tile` positions of a [b, N, l] tensor (B or C) into shared memory [N, tile].
#[cube]
fn load_states(
    src: &Tensor<f32>,
    dst: &mut SharedMemory<f32>,
    batch: usize,
    len: usize,
    t0: usize,
    steps: usize,
    #[comptime] n_state: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
) {
    let mut idx = UNIT_POS_X as usize;
    while idx < n_state * tile {
        let i = idx / tile;
        let j = idx % tile;
        let mut v = 0.0f32;
        if j < steps {
            v = src[(batch * n_state + i) * len + t0 + j];
        }
        dst[idx] = v;
        idx += block;
    }
}

/// Backward scan: gradients of `sum(y * dy)`. Tensors as in the forward kernel plus dy [b, d, l]
/// and the chunk-start states `ckpt`; outputs du, ddelta, dz [b, d, l], db_part and dc_part
/// [b, blocks, N, l], da_part [b, d, N], dd_part and dbias_part [b, d].
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn scan_backward_kernel(
    u: &Tensor<f32>,
    delta: &Tensor<f32>,
    z: &Tensor<f32>,
    a: &Tensor<f32>,
    bm: &Tensor<f32>,
    cm: &Tensor<f32>,
    dskip: &Tensor<f32>,
    delta_bias: &Tensor<f32>,
    dy: &Tensor<f32>,
    ckpt: &Tensor<f32>,
    scratch: &mut Tensor<f32>,
    du: &mut Tensor<f32>,
    ddelta: &mut Tensor<f32>,
    dz: &mut Tensor<f32>,
    db_part: &mut Tensor<f32>,
    dc_part: &mut Tensor<f32>,
    da_part: &mut Tensor<f32>,
    dd_part: &mut Tensor<f32>,
    dbias_part: &mut Tensor<f32>,
    dim: u32,
    len: u32,
    #[comptime] n_state: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] chunk: usize,
    #[comptime] has_z: bool,
    #[comptime] delta_softplus: bool,
) {
    let dim = dim as usize;
    let len = len as usize;
    let me = UNIT_POS_X as usize;
    let batch = CUBE_POS_Y as usize;
    let blk = CUBE_POS_X as usize;
    let blocks = CUBE_COUNT_X as usize;
    let first = blk * block;
    let channel = first + me;
    let live = channel < dim;
    let row = tile + 1;
    let pad = block + 1;
    let chunks = len.div_ceil(chunk);
    let tiles_per_chunk = chunk / tile;
    let scratch_base = (batch * blocks + blk) * tiles_per_chunk * n_state * block;

    let mut su = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sdt = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sz = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sdy = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sb = SharedMemory::<f32>::new(n_state * tile);
    let mut sc = SharedMemory::<f32>::new(n_state * tile);
    // States of the tile, slot s = state before step s: [tile + 1, N, block + 1].
    let mut xs = SharedMemory::<f32>::new((tile + 1) * n_state * (block + 1));
    // Per-channel dB terms: [tile, N, block + 1].
    let mut dbs = SharedMemory::<f32>::new(tile * n_state * (block + 1));

    let mut x = Array::<f32>::new(n_state);
    let mut h = Array::<f32>::new(n_state);
    let mut ar = Array::<f32>::new(n_state);
    let mut da = Array::<f32>::new(n_state);
    let mut skip = 0.0f32;
    let mut bias = 0.0f32;
    let mut dd_acc = 0.0f32;
    let mut dbias_acc = 0.0f32;
    #[unroll]
    for i in 0..n_state {
        x[i] = 0.0;
        h[i] = 0.0;
        ar[i] = 0.0;
        da[i] = 0.0;
    }
    if live {
        #[unroll]
        for i in 0..n_state {
            ar[i] = a[channel * n_state + i];
        }
        skip = dskip[channel];
        bias = delta_bias[channel];
    }

    let mut c = chunks;
    while c > 0 {
        c -= 1;
        let cs = c * chunk;
        let mut chunk_len = len - cs;
        if chunk_len > chunk {
            chunk_len = chunk;
        }
        let tiles = chunk_len.div_ceil(tile);

        // 2. Forward over the chunk from its saved start state; keep each tile's start state.
        if live {
            let base = ((batch * dim + channel) * chunks + c) * n_state;
            #[unroll]
            for i in 0..n_state {
                x[i] = ckpt[base + i];
            }
        }
        for k in 0..tiles {
            let t0 = cs + k * tile;
            let mut steps = len - t0;
            if steps > tile {
                steps = tile;
            }
            #[unroll]
            for i in 0..n_state {
                scratch[scratch_base + (k * n_state + i) * block + me] = x[i];
            }
            load_rows(u, &mut su, batch, first, dim, len, t0, steps, block, tile);
            load_rows(delta, &mut sdt, batch, first, dim, len, t0, steps, block, tile);
            load_states(bm, &mut sb, batch, len, t0, steps, n_state, block, tile);
            sync_cube();
            for j in 0..steps {
                let mut dt = sdt[me * row + j] + bias;
                if delta_softplus {
                    dt = softplus(dt);
                }
                let dtu = dt * su[me * row + j];
                #[unroll]
                for i in 0..n_state {
                    x[i] = f32::exp(dt * ar[i]) * x[i] + dtu * sb[i * tile + j];
                }
            }
            sync_cube();
        }

        // 3. Tiles of the chunk, last first.
        let mut k = tiles;
        while k > 0 {
            k -= 1;
            let t0 = cs + k * tile;
            let mut steps = len - t0;
            if steps > tile {
                steps = tile;
            }
            load_rows(u, &mut su, batch, first, dim, len, t0, steps, block, tile);
            load_rows(delta, &mut sdt, batch, first, dim, len, t0, steps, block, tile);
            load_rows(dy, &mut sdy, batch, first, dim, len, t0, steps, block, tile);
            if has_z {
                load_rows(z, &mut sz, batch, first, dim, len, t0, steps, block, tile);
            }
            load_states(bm, &mut sb, batch, len, t0, steps, n_state, block, tile);
            load_states(cm, &mut sc, batch, len, t0, steps, n_state, block, tile);
            sync_cube();

            // Re-run the tile's steps into shared memory.
            #[unroll]
            for i in 0..n_state {
                let v = scratch[scratch_base + (k * n_state + i) * block + me];
                x[i] = v;
                xs[i * pad + me] = v;
            }
            for j in 0..steps {
                let mut dt = sdt[me * row + j] + bias;
                if delta_softplus {
                    dt = softplus(dt);
                }
                let dtu = dt * su[me * row + j];
                #[unroll]
                for i in 0..n_state {
                    x[i] = f32::exp(dt * ar[i]) * x[i] + dtu * sb[i * tile + j];
                    xs[((j + 1) * n_state + i) * pad + me] = x[i];
                }
            }

            // The reverse recurrence over the tile.
            let mut jj = steps;
            while jj > 0 {
                jj -= 1;
                let j = jj;
                let uu = su[me * row + j];
                let raw = sdt[me * row + j] + bias;
                let mut dt = raw;
                if delta_softplus {
                    dt = softplus(raw);
                }
                let mut g = sdy[me * row + j];
                if has_z {
                    let mut yv = skip * uu;
                    #[unroll]
                    for i in 0..n_state {
                        yv += sc[i * tile + j] * xs[((j + 1) * n_state + i) * pad + me];
                    }
                    let zz = sz[me * row + j];
                    let s = sigmoid(zz);
                    sz[me * row + j] = g * yv * s * (1.0 + zz * (1.0 - s));
                    g = g * zz * s;
                }
                dd_acc += g * uu;
                let dtu = dt * uu;
                let mut hb = 0.0f32;
                let mut ga = 0.0f32;
                #[unroll]
                for i in 0..n_state {
                    let cur = ((j + 1) * n_state + i) * pad + me;
                    h[i] += sc[i * tile + j] * g;
                    let decay = f32::exp(dt * ar[i]);
                    let gg = h[i] * xs[(j * n_state + i) * pad + me] * decay;
                    ga += gg * ar[i];
                    da[i] += gg * dt;
                    hb += h[i] * sb[i * tile + j];
                    dbs[(j * n_state + i) * pad + me] = h[i] * dtu;
                    // This state is no longer needed: its slot takes the dC term.
                    xs[cur] = xs[cur] * g;
                    h[i] *= decay;
                }
                let mut ddt = ga + hb * uu;
                if delta_softplus {
                    ddt *= sigmoid(raw);
                }
                dbias_acc += ddt;
                su[me * row + j] = hb * dt + skip * g;
                sdt[me * row + j] = ddt;
            }
            sync_cube();

            store_rows(&su, du, batch, first, dim, len, t0, steps, block, tile);
            store_rows(&sdt, ddelta, batch, first, dim, len, t0, steps, block, tile);
            if has_z {
                store_rows(&sz, dz, batch, first, dim, len, t0, steps, block, tile);
            }
            // dB and dC of the tile, summed over the cube's channels (one row per thread).
            let mut p = me;
            while p < n_state * tile {
                let i = p / tile;
                let j = p % tile;
                if j < steps {
                    let rb = (j * n_state + i) * pad;
                    let rc = ((j + 1) * n_state + i) * pad;
                    let mut sum_b = 0.0f32;
                    let mut sum_c = 0.0f32;
                    #[unroll]
                    for q in 0..block {
                        sum_b += dbs[rb + q];
                        sum_c += xs[rc + q];
                    }
                    let g = ((batch * blocks + blk) * n_state + i) * len + t0 + j;
                    db_part[g] = sum_b;
                    dc_part[g] = sum_c;
                }
                p += block;
            }
            sync_cube();
        }
    }

    if live {
        #[unroll]
        for i in 0..n_state {
            da_part[(batch * dim + channel) * n_state + i] = da[i];
        }
        dd_part[batch * dim + channel] = dd_acc;
        dbias_part[batch * dim + channel] = dbias_acc;
    }
}
