//! The selective scan's backward with the positions of L across a plane's lanes.
//!
//! The one-thread-per-channel backward (`backward.rs`) re-runs every chunk twice (from the
//! checkpoint to each tile start, then each tile into shared memory) before its reverse pass,
//! and splits L, with one more pass over the inputs, where b·d threads do not fill the GPU: on
//! short batches of long sequences it walks L serially with too few threads to hide the latency.
//! Here, as in `forward_lanes.rs`, one plane of 32 lanes takes one channel and each lane a run of
//! `items` consecutive positions; a tile is one chunk of 32·`items` positions, so the state
//! entering it is the chunk's checkpoint. Tiles run last first; for each state, in one sweep:
//!
//! 1. the forward over the tile from the checkpoint, as in the forward kernel (each lane folds
//!    its run into one affine map, the plane scans the maps, each lane replays its run), keeping
//!    the lane's states in registers;
//! 2. the adjoint recurrence right to left the same way: with r_t = a_t h_t the adjoint handed
//!    to x_{t-1}, h_t = C_t g_t + r_{t+1} and r_t = a_t h_t, again a chain of affine maps, now
//!    scanned from lane 31 down and carried from the tile on the right;
//! 3. the gradient terms of each position: du, ddelta and dA summed over the states in
//!    registers, the dB and dC terms staged in shared memory and summed over the cube's channels
//!    there, one coalesced row of partial sums per state and cube (`db_part`, `dc_part`), which
//!    the caller sums over channel blocks.
//!
//! No re-run beyond the one forward sweep, no split of L (b·d planes of 32 lanes fill the GPU
//! where b·d threads do not), and no scratch memory:
//! the extra memory is the forward's (delta' and the checkpoints) and the partial sums
//! [b, d / channels, N, l] of dB and dC.
//!
//! - Shared memory: three rows per channel (the tile's u, delta' and delta; then dy and z; then
//!   the dB and dC terms of one state; then du, ddelta and dz for a coalesced store) and the tile
//!   of B and C, in the padded run layout of the forward kernel.
//! - The states are a loop, not unrolled: per state, two chains and the dB/dC sums with their
//!   barriers; unrolled, those barriers multiply the CPU Vulkan driver's compile time (see
//!   `forward_lanes.rs`). The adjoint carries and the dA sums are per-state arrays indexed at run
//!   time.
//!
//! Element types as in `backward.rs` (activations and their gradients f32, f16 or bf16, f32
//! inside). Only f32 arithmetic, conversions, `exp`, shared memory, barriers and plane shuffles:
//! Pascal runs it.

use cubecl::prelude::*;

use super::forward::sigmoid;
use super::forward_lanes::{LANES, chain_runs, load_lane_rows, load_lane_states, run_slot, store_lane_rows};

/// Backward scan, one plane per (channel, batch row), cubes of `channels` planes: gradients of
/// `sum(y * dy)`. Tensors as in [`super::forward_lanes::scan_lanes_kernel`] plus dy (of type `E`),
/// delta' `dtp` [b, d, l] and the checkpoints `ckpt` [b, chunks, d, N] of chunks of 32·`items`
/// positions (f32). Outputs du, ddelta, dz [b, d, l] (any strides, type `E`), and f32 db_part and
/// dc_part [b, blocks, N, l] contiguous, da_part [d, N, b], dd_part and dbias_part [d, b].
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
#[allow(clippy::too_many_arguments)]
pub fn scan_backward_lanes_kernel<E: Float>(
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
    #[comptime] n_state: usize,
    #[comptime] channels: usize,
    #[comptime] items: usize,
    #[comptime] has_z: bool,
    #[comptime] delta_softplus: bool,
    #[comptime] channels_last: bool,
    #[comptime] plane: bool,
) {
    let dim = dim as usize;
    let len = len as usize;
    let lane = UNIT_POS_X as usize;
    let warp = UNIT_POS_Y as usize;
    let batch = CUBE_POS_Y as usize;
    let blk = CUBE_POS_X as usize;
    let blocks = CUBE_COUNT_X as usize;
    let first = blk * channels;
    let channel = first + warp;
    let live = channel < dim;
    let tile = comptime!(LANES * items);
    let row = comptime!(LANES * (items + 1) + 1);
    let threads = comptime!(LANES * channels);
    let me = warp * LANES + lane;
    let chunks = len.div_ceil(tile);

    let scratch_len = comptime!(if plane { 1 } else { channels * 2 * LANES });
    let mut s0 = SharedMemory::<f32>::new(channels * row);
    let mut s1 = SharedMemory::<f32>::new(channels * row);
    let mut s2 = SharedMemory::<f32>::new(channels * row);
    let mut sb = SharedMemory::<f32>::new(n_state * row);
    let mut sc = SharedMemory::<f32>::new(n_state * row);
    let mut scratch = SharedMemory::<f32>::new(scratch_len);

    // Per state: the adjoint entering from the tile on the right, and this lane's dA sum.
    let mut carry = Array::<f32>::new(n_state);
    let mut da = Array::<f32>::new(n_state);
    for i in 0..n_state {
        carry[i] = 0.0;
        da[i] = 0.0;
    }
    let mut skip = 0.0f32;
    let mut bias = 0.0f32;
    if live {
        skip = dskip[channel];
        bias = delta_bias[channel];
    }
    let mut dd_acc = 0.0f32;
    let mut dbias_acc = 0.0f32;

    // This lane's positions: inputs, softplus', the gradient g of y before the gate, y before
    // the gate, and the du and ddelta' sums; per state, the decays and the states before and
    // after each step.
    let mut uu = Array::<f32>::new(items);
    let mut dt = Array::<f32>::new(items);
    let mut sig = Array::<f32>::new(items);
    let mut dyv = Array::<f32>::new(items);
    let mut zz = Array::<f32>::new(items);
    let mut g = Array::<f32>::new(items);
    let mut ypre = Array::<f32>::new(items);
    let mut dua = Array::<f32>::new(items);
    let mut ddta = Array::<f32>::new(items);
    let mut decay = Array::<f32>::new(items);
    let mut xp = Array::<f32>::new(items);
    let mut xs = Array::<f32>::new(items);
    let mut pair = Array::<f32>::new(2usize);
    let own = warp * row + lane * (items + 1);
    let own_states = lane * (items + 1);

    let mut c = chunks;
    while c > 0 {
        c -= 1;
        let t0 = c * tile;
        let mut steps = len - t0;
        if steps > tile {
            steps = tile;
        }
        // Past L the rows load as zeros: no step (decay 1, no input), no gradient.
        load_lane_rows(u, &mut s0, batch, first, dim, t0, steps, channels, items, channels_last);
        load_lane_rows(
            dtp,
            &mut s1,
            batch,
            first,
            dim,
            t0,
            steps,
            channels,
            items,
            channels_last,
        );
        if delta_softplus {
            load_lane_rows(
                delta,
                &mut s2,
                batch,
                first,
                dim,
                t0,
                steps,
                channels,
                items,
                channels_last,
            );
        }
        load_lane_states(bm, &mut sb, batch, t0, steps, n_state, channels, items, channels_last);
        load_lane_states(cm, &mut sc, batch, t0, steps, n_state, channels, items, channels_last);
        sync_cube();
        #[unroll]
        for k in 0..items {
            uu[k] = s0[own + k];
            dt[k] = s1[own + k];
            sig[k] = 1.0;
            if delta_softplus {
                sig[k] = sigmoid(s2[own + k] + bias);
            }
        }
        sync_cube();
        load_lane_rows(
            dy,
            &mut s0,
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
            load_lane_rows(z, &mut s1, batch, first, dim, t0, steps, channels, items, channels_last);
        }
        sync_cube();
        #[unroll]
        for k in 0..items {
            let d = s0[own + k];
            dyv[k] = d;
            g[k] = d;
            if has_z {
                let zv = s1[own + k];
                zz[k] = zv;
                g[k] = d * zv * sigmoid(zv);
            }
            ypre[k] = skip * uu[k];
            dua[k] = skip * g[k];
            ddta[k] = 0.0;
            dd_acc += g[k] * uu[k];
        }
        // s0 and s1 now stage the dB and dC terms.
        sync_cube();

        for i in 0..n_state {
            let mut ai = 0.0f32;
            let mut start = 0.0f32;
            if live {
                ai = a[channel * n_state + i];
                start = ckpt[((batch * chunks + c) * dim + channel) * n_state + i];
            }
            let at_state = i * row + own_states;

            // 1. The forward over the tile.
            let mut p = 1.0f32;
            let mut s = 0.0f32;
            #[unroll]
            for k in 0..items {
                decay[k] = f32::exp(dt[k] * ai);
                s = decay[k] * s + dt[k] * uu[k] * sb[at_state + k];
                p *= decay[k];
            }
            pair[0] = p;
            pair[1] = s;
            chain_runs(&mut pair, start, &mut scratch, plane, false);
            let mut x = pair[0];
            #[unroll]
            for k in 0..items {
                xp[k] = x;
                x = decay[k] * x + dt[k] * uu[k] * sb[at_state + k];
                xs[k] = x;
                ypre[k] += sc[at_state + k] * x;
            }

            // 2. The adjoint recurrence, right to left: r -> a_t (C_t g_t + r) per position.
            let mut p = 1.0f32;
            let mut s = 0.0f32;
            #[unroll]
            for kk in 0..items {
                let k = items - 1 - kk;
                s = decay[k] * (sc[at_state + k] * g[k] + s);
                p *= decay[k];
            }
            pair[0] = p;
            pair[1] = s;
            chain_runs(&mut pair, carry[i], &mut scratch, plane, true);
            carry[i] = pair[1];
            let mut r = pair[0];

            // 3. The terms.
            let mut da_i = 0.0f32;
            #[unroll]
            for kk in 0..items {
                let k = items - 1 - kk;
                let h = sc[at_state + k] * g[k] + r;
                r = decay[k] * h;
                let bk = sb[at_state + k];
                let gg = h * xp[k] * decay[k];
                da_i += gg * dt[k];
                ddta[k] += gg * ai + h * uu[k] * bk;
                dua[k] += h * dt[k] * bk;
                s0[own + k] = h * dt[k] * uu[k];
                s1[own + k] = xs[k] * g[k];
            }
            da[i] += da_i;
            sync_cube();

            // dB and dC of state i over the cube's channels: one row each.
            let mut idx = me;
            while idx < 2 * tile {
                let j = idx % tile;
                if j < steps {
                    let slot = run_slot(j, items);
                    let out = ((batch * blocks + blk) * n_state + i) * len + t0 + j;
                    let mut sum = 0.0f32;
                    if idx < tile {
                        #[unroll]
                        for w in 0..channels {
                            sum += s0[w * row + slot];
                        }
                        db_part[out] = sum;
                    } else {
                        #[unroll]
                        for w in 0..channels {
                            sum += s1[w * row + slot];
                        }
                        dc_part[out] = sum;
                    }
                }
                idx += threads;
            }
            sync_cube();
        }

        #[unroll]
        for k in 0..items {
            let ddt = ddta[k] * sig[k];
            dbias_acc += ddt;
            s0[own + k] = dua[k];
            s1[own + k] = ddt;
            if has_z {
                let zv = zz[k];
                let sg = sigmoid(zv);
                s2[own + k] = dyv[k] * ypre[k] * sg * (1.0 + zv * (1.0 - sg));
            }
        }
        sync_cube();
        store_lane_rows(&s0, du, batch, first, dim, t0, steps, channels, items, channels_last);
        store_lane_rows(
            &s1,
            ddelta,
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
            store_lane_rows(&s2, dz, batch, first, dim, t0, steps, channels, items, channels_last);
        }
        sync_cube();
    }

    // The per-channel sums over the plane's lanes, through shared memory: once per cube.
    let parts = CUBE_COUNT_Y as usize;
    for q in 0..n_state + 2 {
        let mut v = dd_acc;
        if q < n_state {
            v = da[q];
        } else if q > n_state {
            v = dbias_acc;
        }
        s0[warp * row + lane] = v;
        sync_cube();
        if lane == 0 && live {
            let mut sum = 0.0f32;
            for w in 0..LANES {
                sum += s0[warp * row + w];
            }
            if q < n_state {
                da_part[(channel * n_state + q) * parts + batch] = sum;
            } else if q == n_state {
                dd_part[channel * parts + batch] = sum;
            } else {
                dbias_part[channel * parts + batch] = sum;
            }
        }
        sync_cube();
    }
}
