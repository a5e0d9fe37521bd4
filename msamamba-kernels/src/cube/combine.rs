//! Chains per-segment scans into the true state at every segment boundary.
//!
//! A segment scanned from a zero state ends in `own`; scanned from the state `s` it ends in
//! exp(a · sum delta') · s + `own` (the recurrence is linear in the state, and its decays over the
//! segment multiply to the exponential of the summed steps). Walking the segments in order (or in
//! reverse, for the adjoint state of the backward) therefore yields every segment's true incoming
//! state in one short sequential loop.
//!
//! One thread per (batch row, channel, state index): registers hold the running state only; each
//! segment's entry [b, segments, d, N] is read and overwritten in place (consecutive threads,
//! consecutive floats), its sum of delta' [b, segments, d] read. No shared memory.

use cubecl::prelude::*;

/// Segments whose inputs are loaded together.
const GROUP: usize = 8;

/// Replaces each segment's zero-start result in `state` [b, segments, d, N] by the state entering
/// the segment: from the left, or from the right when `reverse`. `dt_sum` [b, segments, d] holds
/// each segment's sum of delta', `a` [d, N]. One batch row per `CUBE_POS_Y`.
#[cube(launch, fast_math = FastMath::ReducedPrecision | FastMath::NotNaN | FastMath::NotInf)]
pub fn scan_combine_kernel(
    state: &mut Tensor<f32>,
    dt_sum: &Tensor<f32>,
    a: &Tensor<f32>,
    dim: u32,
    segments: u32,
    #[comptime] n_state: usize,
    #[comptime] reverse: bool,
) {
    let dim = dim as usize;
    let segments = segments as usize;
    let batch = CUBE_POS_Y as usize;
    // channel · N + state index, which is also the index into a.
    let k = (CUBE_POS_X * CUBE_DIM_X + UNIT_POS_X) as usize;
    if k < dim * n_state {
        let channel = k / n_state;
        let ar = a[k];
        let mut carry = 0.0f32;
        let mut own = Array::<f32>::new(GROUP);
        let mut decay = Array::<f32>::new(GROUP);
        let mut g0 = 0usize;
        while g0 < segments {
            // A group's loads first: they do not depend on the carry, so their latencies overlap.
            #[unroll]
            for q in 0..GROUP {
                if g0 + q < segments {
                    let s = segment_at(g0 + q, segments, reverse);
                    own[q] = state[(batch * segments + s) * dim * n_state + k];
                    decay[q] = f32::exp(ar * dt_sum[(batch * segments + s) * dim + channel]);
                }
            }
            #[unroll]
            for q in 0..GROUP {
                if g0 + q < segments {
                    let s = segment_at(g0 + q, segments, reverse);
                    state[(batch * segments + s) * dim * n_state + k] = carry;
                    carry = decay[q] * carry + own[q];
                }
            }
            g0 += GROUP;
        }
    }
}

/// The segment visited at `step`: in order, or last first when `reverse`.
#[cube]
fn segment_at(step: usize, segments: usize, #[comptime] reverse: bool) -> usize {
    let mut s = step;
    if reverse {
        s = segments - 1 - step;
    }
    s
}
