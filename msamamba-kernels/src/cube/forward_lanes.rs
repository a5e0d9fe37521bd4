//! The selective scan's forward with the positions of L across a plane's lanes.
//!
//! The one-thread-per-channel forward (`forward.rs`) runs each channel's N recurrences in
//! order, one position after another: b·d threads in all, each a chain of L dependent steps. At
//! 64 x 4096 that is 16 384 threads, too few to fill a data-centre GPU, so L had to be split and
//! scanned twice; and a thread's steps wait on one another and on its tile loads, with few other
//! warps to hide them.
//! Here one plane of 32 lanes takes one channel, each lane a run of `items` consecutive
//! positions of every tile of 32·`items`: b·d planes, 32 times the threads.
//!
//! Each state is a linear recurrence x_t = a_t x_{t-1} + b_t with a_t = exp(delta'_t A) and
//! b_t = delta'_t u_t B_t, and steps compose as affine maps (a1, b1) then (a2, b2) =
//! (a1 a2, a2 b1 + b2). Per state, a lane folds its run into one map, the plane scans the 32
//! maps (five rounds of shuffles), and each lane replays its run from the state the scan hands
//! it, adding C_t x_t into its positions' outputs. The state leaving the tile (the last lane's)
//! carries to the next tile. What a lane keeps: u, delta' and the outputs of its run, the decays
//! and inputs of the state at hand, and the N carried states.
//!
//! - Shared memory: one tile of u, delta and z for the cube's channels, and of B and C, loaded
//!   cooperatively in the order memory holds them (positions or, channels-last, channels
//!   adjacent), so every load is coalesced whichever layout the model hands over. Each lane's run
//!   is followed by one float of padding (and each row by one more), so the lanes' reads of their
//!   k-th positions fall on distinct banks. The u tile stages y for a coalesced store.
//! - Saving (under autodiff, where the lanes backward runs: each tile is one of its chunks): lane
//!   0 of each plane writes the state entering every tile, and delta' goes out through the delta
//!   tile, coalesced like y.
//! - Where the cube's x dimension is not exactly one plane of 32 (drivers without plane
//!   operations, such as the CPU Vulkan driver the tests run on), the scan across lanes goes
//!   through shared memory instead, each lane composing all 32 maps: two barriers per scan
//!   instead of a parallel scan's eleven, as that driver compiles each barrier into a coroutine
//!   suspension and the compile time grows with them.
//!
//! Element types as in `forward.rs` (activations f32, f16 or bf16, f32 inside). Only f32
//! arithmetic, conversions, `exp`, `log1p`, shared memory, barriers and plane shuffles (sm_30 on
//! CUDA): Pascal runs it. Fast-math modes as in `forward.rs`.

use cubecl::prelude::*;

use super::forward::{at, sigmoid, slot_pos, slot_row, softplus};

/// Lanes of a plane: the cube's x dimension.
pub const LANES: usize = 32;

/// Where tile position `j` sits in its shared row: each lane's run of `items` positions, then one
/// float of padding.
#[cube]
pub(super) fn run_slot(j: usize, #[comptime] items: usize) -> usize {
    j + j / items
}

/// `v` of the lane `offset` before this one in the order of the runs: below, or above in
/// `reverse`.
#[cube]
fn from_lane_before(v: f32, offset: u32, #[comptime] reverse: bool) -> f32 {
    if reverse {
        plane_shuffle_down(v, offset)
    } else {
        plane_shuffle_up(v, offset)
    }
}

/// Whether the plane has a lane `offset` before `lane` in the order of the runs.
#[cube]
fn has_lane_before(lane: u32, offset: u32, #[comptime] reverse: bool) -> bool {
    if reverse {
        lane + offset < LANES as u32
    } else {
        lane >= offset
    }
}

/// Chains the lanes' runs of one state: `pair` holds this lane's run as the map x -> p x + s
/// (p in `pair[0]`, s in `pair[1]`) and leaves there the state entering the run (`pair[0]`) and
/// the state leaving the plane's runs (`pair[1]`), from `carry`, the state entering them. The
/// runs follow one another from lane 0 up or, `reverse` (the backward's adjoint recurrence),
/// from lane 31 down. An inclusive scan of the maps over the lanes, by plane shuffles (`plane`)
/// or through this plane's 2·32 floats of `scratch`.
#[cube]
pub(super) fn chain_runs(
    pair: &mut Array<f32>,
    carry: f32,
    scratch: &mut SharedMemory<f32>,
    #[comptime] plane: bool,
    #[comptime] reverse: bool,
) {
    let lane = UNIT_POS_X;
    let mut p = pair[0];
    let mut s = pair[1];
    if plane {
        // Each round composes the runs `offset` lanes before (after, in reverse) with this one's.
        let mut offset = 1u32;
        #[unroll]
        for _ in 0..5 {
            let p_in = from_lane_before(p, offset, reverse);
            let s_in = from_lane_before(s, offset, reverse);
            let take = has_lane_before(lane, offset, reverse);
            s = select(take, p * s_in + s, s);
            p = select(take, p * p_in, p);
            offset *= 2;
        }
        // The runs before this one (after it, in reverse), and all of them.
        let has_before = has_lane_before(lane, 1, reverse);
        let p_before = select(has_before, from_lane_before(p, 1, reverse), 1.0);
        let s_before = select(has_before, from_lane_before(s, 1, reverse), 0.0);
        let last = comptime!(if reverse { 0u32 } else { LANES as u32 - 1 });
        let p_all = plane_broadcast(p, last);
        let s_all = plane_broadcast(s, last);
        pair[0] = p_before * carry + s_before;
        pair[1] = p_all * carry + s_all;
    } else {
        // Every lane composes all 32 maps in order, noting the state where its own run begins:
        // 32 steps instead of 5 rounds, but two barriers instead of eleven (see the module doc).
        let lane = lane as usize;
        let base = UNIT_POS_Y as usize * 2 * LANES;
        scratch[base + lane] = p;
        scratch[base + LANES + lane] = s;
        sync_cube();
        let mut x = carry;
        let mut before = carry;
        for step in 0..LANES {
            let mut q = step;
            if reverse {
                q = LANES - 1 - step;
            }
            if q == lane {
                before = x;
            }
            x = scratch[base + q] * x + scratch[base + LANES + q];
        }
        pair[0] = before;
        pair[1] = x;
        sync_cube();
    }
}

/// Loads one tile (`steps` ≤ 32·`items` positions from `t0`) of the cube's `channels` rows of a
/// [b, d, l] tensor into `rows` [channels, row] at each lane run's slots (see [`run_slot`]),
/// zeros past L or past d: every load coalesced (see [`slot_row`]).
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn load_lane_rows<E: Float>(
    t: &Tensor<E>,
    rows: &mut SharedMemory<f32>,
    batch: usize,
    first: usize,
    dim: usize,
    t0: usize,
    steps: usize,
    #[comptime] channels: usize,
    #[comptime] items: usize,
    #[comptime] channels_last: bool,
) {
    let tile = comptime!(LANES * items);
    let row = comptime!(LANES * (items + 1) + 1);
    let threads = comptime!(channels * LANES);
    let me = UNIT_POS_Y as usize * LANES + UNIT_POS_X as usize;
    #[unroll]
    for k in 0..items {
        let idx = k * threads + me;
        let ch = slot_row(idx, channels, tile, channels_last);
        let j = slot_pos(idx, channels, tile, channels_last);
        let mut v = 0.0f32;
        if j < steps && first + ch < dim {
            v = f32::cast_from(t[at(t, batch, first + ch, t0 + j)]);
        }
        rows[ch * row + run_slot(j, items)] = v;
    }
}

/// Loads one tile of B or C [b, N, l] into `rows` [N, row], as [`load_lane_rows`].
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn load_lane_states<E: Float>(
    t: &Tensor<E>,
    rows: &mut SharedMemory<f32>,
    batch: usize,
    t0: usize,
    steps: usize,
    #[comptime] n_state: usize,
    #[comptime] channels: usize,
    #[comptime] items: usize,
    #[comptime] channels_last: bool,
) {
    let tile = comptime!(LANES * items);
    let row = comptime!(LANES * (items + 1) + 1);
    let threads = comptime!(channels * LANES);
    let mut idx = UNIT_POS_Y as usize * LANES + UNIT_POS_X as usize;
    while idx < n_state * tile {
        let i = slot_row(idx, n_state, tile, channels_last);
        let j = slot_pos(idx, n_state, tile, channels_last);
        let mut v = 0.0f32;
        if j < steps {
            v = f32::cast_from(t[at(t, batch, i, t0 + j)]);
        }
        rows[i * row + run_slot(j, items)] = v;
        idx += threads;
    }
}

/// Stores one tile of `rows` [channels, row] into a [b, d, l] tensor, rounded to its type:
/// [`load_lane_rows`] the other way.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn store_lane_rows<E: Float>(
    rows: &SharedMemory<f32>,
    t: &mut Tensor<E>,
    batch: usize,
    first: usize,
    dim: usize,
    t0: usize,
    steps: usize,
    #[comptime] channels: usize,
    #[comptime] items: usize,
    #[comptime] channels_last: bool,
) {
    let tile = comptime!(LANES * items);
    let row = comptime!(LANES * (items + 1) + 1);
    let threads = comptime!(channels * LANES);
    let me = UNIT_POS_Y as usize * LANES + UNIT_POS_X as usize;
    #[unroll]
    for k in 0..items {
        let idx = k * threads + me;
        let ch = slot_row(idx, channels, tile, channels_last);
        let j = slot_pos(idx, channels, tile, channels_last);
        if j < steps && first + ch < dim {
            t[at(t, batch, first + ch, t0 + j)] = E::cast_from(rows[ch * row + run_slot(j, items)]);
        }
    }
}

/// Forward scan, one plane per (channel, batch row), cubes of `channels` planes: y [b, d, l];
/// with `save`, also delta' `dtp` [b, d, l] (laid out as y) and the state entering every tile,
/// `state` [b, tiles, d, N] (the checkpoints of the backward, whose chunk is this tile).
///
/// u, delta, z, y [b, d, l] and bm, cm [b, N, l] may have any strides (see [`at`]);
/// `channels_last` says which of positions or channels (states) are adjacent in memory, for
/// coalesced loads. a [d, N], dskip and delta_bias [d] are contiguous. The activations (u, delta,
/// z, bm, cm and y) are of type `E`, the rest f32. `z` without `has_z` may be any tensor of its
/// type, and so may `dtp` and `state` without `save`.
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
#[allow(clippy::too_many_arguments)]
pub fn scan_lanes_kernel<E: Float>(
    u: &Tensor<E>,
    delta: &Tensor<E>,
    z: &Tensor<E>,
    a: &Tensor<f32>,
    bm: &Tensor<E>,
    cm: &Tensor<E>,
    dskip: &Tensor<f32>,
    delta_bias: &Tensor<f32>,
    y: &mut Tensor<E>,
    dtp: &mut Tensor<f32>,
    state: &mut Tensor<f32>,
    dim: u32,
    len: u32,
    #[comptime] n_state: usize,
    #[comptime] channels: usize,
    #[comptime] items: usize,
    #[comptime] has_z: bool,
    #[comptime] delta_softplus: bool,
    #[comptime] channels_last: bool,
    #[comptime] plane: bool,
    #[comptime] save: bool,
) {
    let dim = dim as usize;
    let len = len as usize;
    let lane = UNIT_POS_X as usize;
    let warp = UNIT_POS_Y as usize;
    let batch = CUBE_POS_Y as usize;
    let first = CUBE_POS_X as usize * channels;
    let channel = first + warp;
    let live = channel < dim;
    let tile = comptime!(LANES * items);
    let row = comptime!(LANES * (items + 1) + 1);

    let z_len = comptime!(if has_z { channels * row } else { 1 });
    let scratch_len = comptime!(if plane { 1 } else { channels * 2 * LANES });
    let mut su = SharedMemory::<f32>::new(channels * row);
    let mut sdt = SharedMemory::<f32>::new(channels * row);
    let mut sz = SharedMemory::<f32>::new(z_len);
    let mut sb = SharedMemory::<f32>::new(n_state * row);
    let mut sc = SharedMemory::<f32>::new(n_state * row);
    let mut scratch = SharedMemory::<f32>::new(scratch_len);

    let mut ar = Array::<f32>::new(n_state);
    let mut carry = Array::<f32>::new(n_state);
    let mut skip = 0.0f32;
    let mut bias = 0.0f32;
    #[unroll]
    for i in 0..n_state {
        ar[i] = 0.0;
        carry[i] = 0.0;
    }
    if live {
        #[unroll]
        for i in 0..n_state {
            ar[i] = a[channel * n_state + i];
        }
        skip = dskip[channel];
        bias = delta_bias[channel];
    }

    let mut uu = Array::<f32>::new(items);
    let mut dt = Array::<f32>::new(items);
    let mut out = Array::<f32>::new(items);
    let mut decay = Array::<f32>::new(items);
    let mut input = Array::<f32>::new(items);
    let mut pair = Array::<f32>::new(2usize);
    let own = warp * row + lane * (items + 1);
    let own_states = lane * (items + 1);

    let tiles = len.div_ceil(tile);
    let mut t0 = 0usize;
    while t0 < len {
        let mut steps = len - t0;
        if steps > tile {
            steps = tile;
        }
        if save && lane == 0 && live {
            let at = ((batch * tiles + t0 / tile) * dim + channel) * n_state;
            #[unroll]
            for i in 0..n_state {
                state[at + i] = carry[i];
            }
        }
        load_lane_rows(u, &mut su, batch, first, dim, t0, steps, channels, items, channels_last);
        load_lane_rows(
            delta,
            &mut sdt,
            batch,
            first,
            dim,
            t0,
            steps,
            channels,
            items,
            channels_last,
        );
        if has_z {
            load_lane_rows(z, &mut sz, batch, first, dim, t0, steps, channels, items, channels_last);
        }
        load_lane_states(bm, &mut sb, batch, t0, steps, n_state, channels, items, channels_last);
        load_lane_states(cm, &mut sc, batch, t0, steps, n_state, channels, items, channels_last);
        sync_cube();

        #[unroll]
        for k in 0..items {
            let j = lane * items + k;
            uu[k] = su[own + k];
            let mut d = sdt[own + k] + bias;
            if delta_softplus {
                d = softplus(d);
            }
            // Past L: no step (decay 1, no input), so the last lane's state is L's end.
            d = select(j < steps, d, 0.0);
            dt[k] = d;
            if save {
                sdt[own + k] = d;
            }
            out[k] = skip * uu[k];
        }

        #[unroll]
        for i in 0..n_state {
            let at_state = i * row + own_states;
            let mut p = 1.0f32;
            let mut s = 0.0f32;
            #[unroll]
            for k in 0..items {
                decay[k] = f32::exp(dt[k] * ar[i]);
                input[k] = dt[k] * uu[k] * sb[at_state + k];
                s = decay[k] * s + input[k];
                p *= decay[k];
            }
            pair[0] = p;
            pair[1] = s;
            chain_runs(&mut pair, carry[i], &mut scratch, plane, false);
            let mut x = pair[0];
            carry[i] = pair[1];
            #[unroll]
            for k in 0..items {
                x = decay[k] * x + input[k];
                out[k] += sc[at_state + k] * x;
            }
        }

        #[unroll]
        for k in 0..items {
            let mut o = out[k];
            if has_z {
                let zz = sz[own + k];
                o = o * zz * sigmoid(zz);
            }
            su[own + k] = o;
        }
        sync_cube();

        store_lane_rows(&su, y, batch, first, dim, t0, steps, channels, items, channels_last);
        if save {
            store_lane_rows(&sdt, dtp, batch, first, dim, t0, steps, channels, items, channels_last);
        }
        sync_cube();
        t0 += tile;
    }
}
