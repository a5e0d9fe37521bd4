//! The selective scan's backward kernels.
//!
//! L is cut into chunks of `chunk` positions. The state entering every chunk (the checkpoints)
//! comes from the forward kernel's `to_end` launch over the chunks, chained by `combine.rs`:
//! parallel over chunks, and never more than b·d·N·⌈l/chunk⌉ floats. That launch also leaves
//! delta' = softplus(delta + bias) [b, d, l], so that no pass below recomputes the softplus.
//!
//! The main kernel runs one cube per (block of `CUBE_DIM_X` channels, batch row, segment of
//! consecutive chunks), one thread per channel, as in the forward. It walks its segment backwards
//! one chunk at a time; inside a chunk, one tile of `tile` positions at a time:
//!
//! 1. it re-runs the forward over the chunk from the checkpoint and keeps the state at each tile
//!    start in `scratch` [cubes, ⌈chunk / tile⌉, N, block] (coalesced: consecutive threads,
//!    consecutive floats; reused chunk after chunk, so it mostly stays in L2);
//! 2. for each tile of the chunk (last first), it re-runs the tile's steps from the saved
//!    tile-start state into shared memory, then runs the reverse (adjoint) recurrence over them.
//!
//! With one segment (the batch rows and channels fill the GPU) the adjoint state simply carries
//! over from chunk to chunk. Otherwise L is split into segments of whole chunks, as many as give
//! `KernelConfig::split_cubes` cubes, and the adjoint state entering each segment from the right
//! is found first, like the checkpoints: `scan_adjoint_kernel` runs the reverse recurrence over
//! each segment from zero (it needs only delta', C, dy and z) and `combine.rs` chains the results
//! right to left. That costs one more pass over those inputs and one more exponential per state
//! and position, in exchange for b·d·segments threads.
//!
//! Main kernel:
//! - Registers: the state x [N] and adjoint state h [N], A's row, the running sums for dA [N], dD
//!   and d(delta_bias).
//! - Shared memory: the tile's inputs (u, delta', delta, z, dy; B and C) loaded coalesced, B and
//!   C position-major [tile, N] (the tile is short, so their stores barely conflict); the tile's
//!   states [tile + 1, N, block + 1] (padded rows: conflict-free for both the per-thread writes and
//!   the per-row reduction reads); the per-channel dB terms [tile, N, block + 1]; and per channel
//!   and position what the re-run hands the reverse pass (softplus', y before the gate)
//!   and what the reverse pass hands the dC sums (the gradient g of y before the gate, dC being
//!   the sum of state · g). dB and dC are summed over the cube's channels here and over channel
//!   blocks by the caller.
//! - Where the cube is one plane (`plane`: a warp of 32 on CUDA; the launch asks for it on
//!   channels-last inputs, where it measured faster), those sums are instead a butterfly over
//!   the plane's lanes right where the reverse pass makes the terms, and the states are kept
//!   unpadded: no dB terms or g in shared memory, no reduction reading them back, and about two
//!   thirds of the shared memory (more cubes per SM), for about one dependent shuffle per state
//!   and position.
//! - Global memory: inputs read for the reverse pass, u / delta' / B once more for the chunk
//!   re-run (and u / delta / B by the checkpoint pass), du / ddelta / dz written once, dB / dC
//!   per channel block [b, blocks, N, l] (or [b, blocks, l, N]), dA / dD / d(delta_bias) per batch row and segment.
//!
//! Extra memory: delta' (b·d·l floats), the checkpoints b·d·N·⌈l/chunk⌉ floats, per segment the
//! adjoint carry b·d·N floats and the scratch b·d·N·⌈chunk/tile⌉ floats, and the per-block dB/dC
//! partials: O(b·d·l), never O(b·d·N·l).
//!
//! Element types as in `forward.rs`: the activations (u, delta, z, B, C, dy and their gradients)
//! of the kernels' type `E` (f32, f16 or bf16), converted on load and store; everything else f32,
//! delta' and the partial sums included. Only f32 arithmetic, conversions, `exp`, shared memory
//! and barriers: nothing newer than sm_60 (Pascal).

use cubecl::prelude::*;

use super::forward::{load_rows, load_states, sigmoid, slot_pos, slot_row, store_rows};

/// The end of piece `c` (`size` positions each) of a sequence of `len`.
#[cube]
fn piece_end(c: usize, size: usize, len: usize) -> usize {
    let mut end = (c + 1) * size;
    if end > len {
        end = len;
    }
    end
}

/// Sums `vals` [held] over the lanes of the plane that differ in the bits of `mask` and below
/// (`mask` = plane size / 2 at the top), spreading the sums over them: every butterfly step
/// exchanges half of the values still held, so `held` sums cost about `held` shuffles a lane
/// instead of `held` · log2(lanes). Afterwards lane `l` (of `lanes`) holds in `vals[0..held/lanes]`
/// the sums of values `l·held/lanes..`, or, where `held < lanes`, in `vals[0]` the sum of value
/// `l / (lanes / held)`. `held` and `mask` are powers of two.
#[cube]
fn plane_spread_sum(vals: &mut Array<f32>, #[comptime] held: usize, #[comptime] mask: u32) {
    let half = comptime!(held.div_ceil(2));
    if comptime!(held > 1) {
        let upper = (UNIT_POS_PLANE & mask) != 0;
        #[unroll]
        for k in 0..half {
            let low = vals[k];
            let high = vals[k + half];
            vals[k] = select(upper, high, low) + plane_shuffle_xor(select(upper, low, high), mask);
        }
    } else {
        vals[0] += plane_shuffle_xor(vals[0], mask);
    }
    if comptime!(mask > 1) {
        plane_spread_sum(vals, half, comptime!(mask / 2));
    }
}

/// The butterfly sum of one position's N terms (one per thread: a channel) over the plane, into
/// `sums[(offset + i) · tile + j]` for each state i. `terms` has N's next power of two slots, its
/// N terms first.
#[cube]
#[allow(clippy::too_many_arguments)]
fn plane_sums(
    terms: &mut Array<f32>,
    sums: &mut SharedMemory<f32>,
    offset: usize,
    j: usize,
    #[comptime] n_state: usize,
    #[comptime] lanes: usize,
    #[comptime] tile: usize,
) {
    let held = comptime!(n_state.next_power_of_two());
    #[unroll]
    for i in n_state..held {
        terms[i] = 0.0;
    }
    plane_spread_sum(terms, held, comptime!((lanes / 2) as u32));
    let lane = UNIT_POS_PLANE as usize;
    if comptime!(held >= lanes) {
        let per = comptime!(held / lanes);
        #[unroll]
        for k in 0..per {
            let i = lane * per + k;
            if i < n_state {
                sums[(offset + i) * tile + j] = terms[k];
            }
        }
    } else {
        let group = comptime!(lanes / held);
        let i = lane / group;
        if lane == i * group && i < n_state {
            sums[(offset + i) * tile + j] = terms[0];
        }
    }
}

/// Adjoint carries of segments of `seg` positions (segment = `CUBE_POS_Z`): each runs the reverse
/// recurrence over its positions from a zero adjoint state; `carry` [b, segments, d, N] receives
/// the adjoint state it hands to the previous segment, `dt_sum` [b, segments, d] its sum of
/// delta'. Tensors as in the main kernel.
///
/// Registers: the adjoint state [N] and A's row. Shared memory: tiles of delta', dy and z rows
/// (coalesced loads) and of C [N, tile]. Global memory: those inputs read once, N + 1 floats
/// written per thread.
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
#[allow(clippy::too_many_arguments)]
pub fn scan_adjoint_kernel<E: Float>(
    dtp: &Tensor<f32>,
    z: &Tensor<E>,
    a: &Tensor<f32>,
    cm: &Tensor<E>,
    dy: &Tensor<E>,
    carry: &mut Tensor<f32>,
    dt_sum: &mut Tensor<f32>,
    dim: u32,
    len: u32,
    seg: u32,
    #[comptime] n_state: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] has_z: bool,
    #[comptime] channels_last: bool,
) {
    let dim = dim as usize;
    let len = len as usize;
    let seg = seg as usize;
    let me = UNIT_POS_X as usize;
    let batch = CUBE_POS_Y as usize;
    let segment = CUBE_POS_Z as usize;
    let segments = CUBE_COUNT_Z as usize;
    let first = CUBE_POS_X as usize * block;
    let channel = first + me;
    let live = channel < dim;
    let row = tile + 1;
    let cs = segment * seg;
    let ce = piece_end(segment, seg, len);

    let z_len = comptime!(if has_z { block * (tile + 1) } else { 1 });
    let mut sdt = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sdy = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sz = SharedMemory::<f32>::new(z_len);
    let mut sc = SharedMemory::<f32>::new(n_state * tile);

    let mut h = Array::<f32>::new(n_state);
    let mut ar = Array::<f32>::new(n_state);
    let mut dt_acc = 0.0f32;
    #[unroll]
    for i in 0..n_state {
        h[i] = 0.0;
        ar[i] = 0.0;
    }
    if live {
        #[unroll]
        for i in 0..n_state {
            ar[i] = a[channel * n_state + i];
        }
    }

    let mut k = (ce - cs).div_ceil(tile);
    while k > 0 {
        k -= 1;
        let t0 = cs + k * tile;
        let mut steps = ce - t0;
        if steps > tile {
            steps = tile;
        }
        load_rows(dtp, &mut sdt, batch, first, dim, t0, steps, block, tile, channels_last);
        load_rows(dy, &mut sdy, batch, first, dim, t0, steps, block, tile, channels_last);
        if has_z {
            load_rows(z, &mut sz, batch, first, dim, t0, steps, block, tile, channels_last);
        }
        load_states(
            cm,
            &mut sc,
            batch,
            t0,
            steps,
            n_state,
            block,
            tile,
            false,
            channels_last,
        );
        sync_cube();
        let mut j = steps;
        while j > 0 {
            j -= 1;
            let dt = sdt[me * row + j];
            dt_acc += dt;
            let mut g = sdy[me * row + j];
            if has_z {
                let zz = sz[me * row + j];
                g = g * zz * sigmoid(zz);
            }
            #[unroll]
            for i in 0..n_state {
                h[i] = (h[i] + sc[i * tile + j] * g) * f32::exp(dt * ar[i]);
            }
        }
        sync_cube();
    }

    if live {
        #[unroll]
        for i in 0..n_state {
            carry[((batch * segments + segment) * dim + channel) * n_state + i] = h[i];
        }
        dt_sum[(batch * segments + segment) * dim + channel] = dt_acc;
    }
}

/// Backward scan: gradients of `sum(y * dy)`. Tensors as in the forward kernel plus dy (of type
/// `E`), delta' `dtp` [b, d, l] and the chunk-start states `ckpt` [b, chunks, d, N] (f32). Segment
/// `CUBE_POS_Z` covers `per_segment` chunks of `chunk` positions; its adjoint state starts from
/// `adj` [b, segments, d, N] when `has_adj`, from zero otherwise. Outputs du, ddelta, dz
/// [b, d, l] (any strides, like the inputs), db_part and dc_part [b, blocks, N, l] contiguous
/// ([b, blocks, l, N] when `channels_last`), da_part [d, N, b · segments], dd_part and dbias_part
/// [d, b · segments] (summed along their contiguous axis: along the other, burn's reduction runs
/// on one cube).
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
#[allow(clippy::too_many_arguments)]
pub fn scan_backward_kernel<E: Float>(
    u: &Tensor<E>,
    delta: &Tensor<E>,
    z: &Tensor<E>,
    a: &Tensor<f32>,
    bm: &Tensor<E>,
    cm: &Tensor<E>,
    dskip: &Tensor<f32>,
    delta_bias: &Tensor<f32>,
    dy: &Tensor<E>,
    dtp: &Tensor<f32>,
    ckpt: &Tensor<f32>,
    adj: &Tensor<f32>,
    scratch: &mut Tensor<f32>,
    du: &mut Tensor<E>,
    ddelta: &mut Tensor<E>,
    dz: &mut Tensor<E>,
    db_part: &mut Tensor<f32>,
    dc_part: &mut Tensor<f32>,
    da_part: &mut Tensor<f32>,
    dd_part: &mut Tensor<f32>,
    dbias_part: &mut Tensor<f32>,
    dim: u32,
    len: u32,
    chunk: u32,
    per_segment: u32,
    #[comptime] n_state: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] has_z: bool,
    #[comptime] delta_softplus: bool,
    #[comptime] has_adj: bool,
    #[comptime] channels_last: bool,
    #[comptime] plane: bool,
) {
    let dim = dim as usize;
    let len = len as usize;
    let chunk = chunk as usize;
    let me = UNIT_POS_X as usize;
    let batch = CUBE_POS_Y as usize;
    let blk = CUBE_POS_X as usize;
    let blocks = CUBE_COUNT_X as usize;
    let segment = CUBE_POS_Z as usize;
    let segments = CUBE_COUNT_Z as usize;
    let first = blk * block;
    let channel = first + me;
    let live = channel < dim;
    let row = tile + 1;
    // Padded rows keep the cross-channel reduction's reads free of bank conflicts; with the
    // butterfly there is none.
    let pad = comptime!(if plane { block } else { block + 1 });
    let terms_len = comptime!(if plane { n_state.next_power_of_two() } else { 1 });
    let chunks = len.div_ceil(chunk);
    let first_chunk = segment * per_segment as usize;
    let mut last_chunk = first_chunk + per_segment as usize;
    if last_chunk > chunks {
        last_chunk = chunks;
    }
    let tiles_per_chunk = chunk.div_ceil(tile);
    let scratch_base = ((batch * segments + segment) * blocks + blk) * tiles_per_chunk * n_state * block;

    let z_len = comptime!(if has_z { block * (tile + 1) } else { 1 });
    let sig_len = comptime!(if delta_softplus { block * (tile + 1) } else { 1 });
    let mut su = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sdt = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sz = SharedMemory::<f32>::new(z_len);
    let mut sdy = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sb = SharedMemory::<f32>::new(n_state * tile);
    let mut sc = SharedMemory::<f32>::new(n_state * tile);
    // Left by the tile's re-run for the reverse pass, one row per channel: y before the gate,
    // and softplus' (the sigmoid of delta + bias). The reverse pass leaves the gradient g of the
    // pre-gate y for the dC sums.
    let mut sy = SharedMemory::<f32>::new(z_len);
    let mut ssig = SharedMemory::<f32>::new(sig_len);
    let mut sg = SharedMemory::<f32>::new(comptime!(if plane { 1 } else { block * (tile + 1) }));
    // States of the tile, slot s = state before step s: [tile + 1, N, pad].
    let mut xs = SharedMemory::<f32>::new((tile + 1) * n_state * pad);
    // Per-channel dB terms [tile, N, block + 1], or with the butterfly the tile's dB and dC
    // already summed over the cube's channels [2, N, tile].
    let mut dbs = SharedMemory::<f32>::new(comptime!(if plane {
        2 * n_state * tile
    } else {
        tile * n_state * (block + 1)
    }));
    let mut terms = Array::<f32>::new(terms_len);

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
            if has_adj {
                h[i] = adj[((batch * segments + segment) * dim + channel) * n_state + i];
            }
        }
        skip = dskip[channel];
        bias = delta_bias[channel];
    }

    let mut c = last_chunk;
    while c > first_chunk {
        c -= 1;
        let cs = c * chunk;
        let ce = piece_end(c, chunk, len);
        let tiles = (ce - cs).div_ceil(tile);

        // 1. Forward over the chunk from its checkpoint; keep each tile's start state.
        if live {
            let base = ((batch * chunks + c) * dim + channel) * n_state;
            #[unroll]
            for i in 0..n_state {
                x[i] = ckpt[base + i];
            }
        }
        for k in 0..tiles {
            let t0 = cs + k * tile;
            let mut steps = ce - t0;
            if steps > tile {
                steps = tile;
            }
            #[unroll]
            for i in 0..n_state {
                scratch[scratch_base + (k * n_state + i) * block + me] = x[i];
            }
            // The state after the last tile is not needed.
            if k + 1 < tiles {
                load_rows(u, &mut su, batch, first, dim, t0, steps, block, tile, channels_last);
                load_rows(dtp, &mut sdt, batch, first, dim, t0, steps, block, tile, channels_last);
                load_states(bm, &mut sb, batch, t0, steps, n_state, block, tile, true, channels_last);
                sync_cube();
                for j in 0..steps {
                    let dt = sdt[me * row + j];
                    let dtu = dt * su[me * row + j];
                    #[unroll]
                    for i in 0..n_state {
                        x[i] = f32::exp(dt * ar[i]) * x[i] + dtu * sb[j * n_state + i];
                    }
                }
                sync_cube();
            }
        }

        // 2. Tiles of the chunk, last first.
        let mut k = tiles;
        while k > 0 {
            k -= 1;
            let t0 = cs + k * tile;
            let mut steps = ce - t0;
            if steps > tile {
                steps = tile;
            }
            load_rows(u, &mut su, batch, first, dim, t0, steps, block, tile, channels_last);
            load_rows(dtp, &mut sdt, batch, first, dim, t0, steps, block, tile, channels_last);
            if delta_softplus {
                load_rows(
                    delta,
                    &mut ssig,
                    batch,
                    first,
                    dim,
                    t0,
                    steps,
                    block,
                    tile,
                    channels_last,
                );
            }
            load_rows(dy, &mut sdy, batch, first, dim, t0, steps, block, tile, channels_last);
            if has_z {
                load_rows(z, &mut sz, batch, first, dim, t0, steps, block, tile, channels_last);
            }
            load_states(bm, &mut sb, batch, t0, steps, n_state, block, tile, true, channels_last);
            load_states(cm, &mut sc, batch, t0, steps, n_state, block, tile, true, channels_last);
            sync_cube();

            // Re-run the tile's steps into shared memory.
            #[unroll]
            for i in 0..n_state {
                let v = scratch[scratch_base + (k * n_state + i) * block + me];
                x[i] = v;
                xs[i * pad + me] = v;
            }
            for j in 0..steps {
                let uu = su[me * row + j];
                let dt = sdt[me * row + j];
                if delta_softplus {
                    ssig[me * row + j] = sigmoid(ssig[me * row + j] + bias);
                }
                let dtu = dt * uu;
                let mut yv = skip * uu;
                #[unroll]
                for i in 0..n_state {
                    x[i] = f32::exp(dt * ar[i]) * x[i] + dtu * sb[j * n_state + i];
                    xs[((j + 1) * n_state + i) * pad + me] = x[i];
                    if has_z {
                        yv += x[i] * sc[j * n_state + i];
                    }
                }
                if has_z {
                    sy[me * row + j] = yv;
                }
            }

            // The reverse recurrence over the tile.
            let mut jj = steps;
            while jj > 0 {
                jj -= 1;
                let j = jj;
                let uu = su[me * row + j];
                let dt = sdt[me * row + j];
                let mut g = sdy[me * row + j];
                if has_z {
                    let yv = sy[me * row + j];
                    let zz = sz[me * row + j];
                    let s = sigmoid(zz);
                    sz[me * row + j] = g * yv * s * (1.0 + zz * (1.0 - s));
                    g = g * zz * s;
                }
                if !plane {
                    sg[me * row + j] = g;
                }
                dd_acc += g * uu;
                let dtu = dt * uu;
                let mut hb = 0.0f32;
                let mut ga = 0.0f32;
                #[unroll]
                for i in 0..n_state {
                    h[i] += sc[j * n_state + i] * g;
                    let decay = f32::exp(dt * ar[i]);
                    let gg = h[i] * xs[(j * n_state + i) * pad + me] * decay;
                    ga += gg * ar[i];
                    da[i] += gg * dt;
                    hb += h[i] * sb[j * n_state + i];
                    if plane {
                        terms[i] = h[i] * dtu;
                    } else {
                        dbs[(j * n_state + i) * pad + me] = h[i] * dtu;
                    }
                    h[i] *= decay;
                }
                if plane {
                    plane_sums(&mut terms, &mut dbs, 0, j, n_state, block, tile);
                    #[unroll]
                    for i in 0..n_state {
                        terms[i] = xs[((j + 1) * n_state + i) * pad + me] * g;
                    }
                    plane_sums(&mut terms, &mut dbs, n_state, j, n_state, block, tile);
                }
                let mut ddt = ga + hb * uu;
                if delta_softplus {
                    ddt *= ssig[me * row + j];
                }
                dbias_acc += ddt;
                su[me * row + j] = hb * dt + skip * g;
                sdt[me * row + j] = ddt;
            }
            sync_cube();

            store_rows(&su, du, batch, first, dim, t0, steps, block, tile, channels_last);
            store_rows(&sdt, ddelta, batch, first, dim, t0, steps, block, tile, channels_last);
            if has_z {
                store_rows(&sz, dz, batch, first, dim, t0, steps, block, tile, channels_last);
            }
            // dB and dC of the tile, summed over the cube's channels (one row per thread).
            let mut p = me;
            while p < n_state * tile {
                let i = slot_row(p, n_state, tile, channels_last);
                let j = slot_pos(p, n_state, tile, channels_last);
                if j < steps {
                    let mut sum_b = 0.0f32;
                    let mut sum_c = 0.0f32;
                    if plane {
                        sum_b = dbs[i * tile + j];
                        sum_c = dbs[(n_state + i) * tile + j];
                    } else {
                        let rb = (j * n_state + i) * pad;
                        let rc = ((j + 1) * n_state + i) * pad;
                        #[unroll]
                        for q in 0..block {
                            sum_b += dbs[rb + q];
                            sum_c += xs[rc + q] * sg[q * row + j];
                        }
                    }
                    let mut g = ((batch * blocks + blk) * n_state + i) * len + t0 + j;
                    if channels_last {
                        g = ((batch * blocks + blk) * len + t0 + j) * n_state + i;
                    }
                    db_part[g] = sum_b;
                    dc_part[g] = sum_c;
                }
                p += block;
            }
            sync_cube();
        }
    }

    if live {
        // This cube's (batch row, segment) is its partial sums' column; computed here, not kept
        // live through the scan (the kernel is at its register limit).
        let part = batch * segments + segment;
        let parts = CUBE_COUNT_Y as usize * segments;
        #[unroll]
        for i in 0..n_state {
            da_part[(channel * n_state + i) * parts + part] = da[i];
        }
        dd_part[channel * parts + part] = dd_acc;
        dbias_part[channel * parts + part] = dbias_acc;
    }
}
