//! The selective scan's forward kernel.
//!
//! One cube per (block of `CUBE_DIM_X` channels, batch row); one thread per channel, running the
//! recurrence over all L positions in order.
//!
//! - Registers: the thread's state x [N], its row of A [N], its D and delta bias. The state
//!   never leaves registers, so the recurrence costs no memory traffic.
//! - Shared memory: one time tile (`tile` positions) of u, delta and z for the cube's channels,
//!   loaded with consecutive threads on consecutive positions (coalesced), rows padded by one
//!   float so that the per-channel reads of the recurrence hit distinct banks; the tile of B and
//!   C [N, tile], which every channel of the batch row reads (broadcast). The u tile is reused to
//!   stage y for a coalesced store.
//! - Global memory: inputs read once, y written once, and (for the backward) the state at every
//!   chunk start, [b, d, chunks, N]: N/chunk floats per input element.
//!
//! Only f32 arithmetic, `exp`, `log1p`, shared memory and barriers: nothing newer than sm_60
//! (Pascal) on CUDA, and plain compute shaders on WGPU.

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
    1.0 / (1.0 + f32::exp(-x))
}

/// Forward scan. `y` is written when `write_y`, the chunk-start states `ckpt`
/// [b, d, ceil(l / chunk), N] when `write_ckpt` (`chunk` is a multiple of `tile`).
///
/// Tensors are contiguous: u, delta, z, y [b, d, l]; a [d, N]; bm, cm [b, N, l]; dskip,
/// delta_bias [d]. `z` is read only when `has_z` (pass any tensor otherwise).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn scan_forward_kernel(
    u: &Tensor<f32>,
    delta: &Tensor<f32>,
    z: &Tensor<f32>,
    a: &Tensor<f32>,
    bm: &Tensor<f32>,
    cm: &Tensor<f32>,
    dskip: &Tensor<f32>,
    delta_bias: &Tensor<f32>,
    y: &mut Tensor<f32>,
    ckpt: &mut Tensor<f32>,
    dim: u32,
    len: u32,
    #[comptime] n_state: usize,
    #[comptime] block: usize,
    #[comptime] tile: usize,
    #[comptime] chunk: usize,
    #[comptime] has_z: bool,
    #[comptime] delta_softplus: bool,
    #[comptime] write_y: bool,
    #[comptime] write_ckpt: bool,
) {
    let dim = dim as usize;
    let len = len as usize;
    let me = UNIT_POS_X as usize;
    let batch = CUBE_POS_Y as usize;
    let first = CUBE_POS_X as usize * block;
    let channel = first + me;
    let live = channel < dim;
    let row = tile + 1;
    let chunks = len.div_ceil(chunk);

    let mut su = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sdt = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sz = SharedMemory::<f32>::new(block * (tile + 1));
    let mut sb = SharedMemory::<f32>::new(n_state * tile);
    let mut sc = SharedMemory::<f32>::new(n_state * tile);

    let mut x = Array::<f32>::new(n_state);
    let mut ar = Array::<f32>::new(n_state);
    let mut skip = 0.0f32;
    let mut bias = 0.0f32;
    #[unroll]
    for i in 0..n_state {
        x[i] = 0.0;
        ar[i] = 0.0;
    }
    if live {
        #[unroll]
        for i in 0..n_state {
            ar[i] = a[channel * n_state + i];
        }
        skip = dskip[channel];
        bias = delta_bias[channel];
    }

    let mut t0 = 0usize;
    while t0 < len {
        let mut steps = len - t0;
        if steps > tile {
            steps = tile;
        }
        if write_ckpt && t0 % chunk == 0 && live {
            let base = ((batch * dim + channel) * chunks + t0 / chunk) * n_state;
            #[unroll]
            for i in 0..n_state {
                ckpt[base + i] = x[i];
            }
        }
        // Coalesced tile loads: consecutive threads read consecutive positions.
        #[unroll]
        for k in 0..tile {
            let idx = k * block + me;
            let ch = idx / tile;
            let j = idx % tile;
            let gch = first + ch;
            let mut vu = 0.0f32;
            let mut vd = 0.0f32;
            let mut vz = 0.0f32;
            if j < steps && gch < dim {
                let g = (batch * dim + gch) * len + t0 + j;
                vu = u[g];
                vd = delta[g];
                if has_z {
                    vz = z[g];
                }
            }
            su[ch * row + j] = vu;
            sdt[ch * row + j] = vd;
            if has_z {
                sz[ch * row + j] = vz;
            }
        }
        let mut idx = me;
        while idx < n_state * tile {
            let i = idx / tile;
            let j = idx % tile;
            let mut vb = 0.0f32;
            let mut vc = 0.0f32;
            if j < steps {
                let g = (batch * n_state + i) * len + t0 + j;
                vb = bm[g];
                vc = cm[g];
            }
            sb[idx] = vb;
            sc[idx] = vc;
            idx += block;
        }
        sync_cube();

        // The recurrence, one channel per thread, state in registers.
        for j in 0..steps {
            let uu = su[me * row + j];
            let mut dt = sdt[me * row + j] + bias;
            if delta_softplus {
                dt = softplus(dt);
            }
            let du = dt * uu;
            let mut acc = 0.0f32;
            #[unroll]
            for i in 0..n_state {
                x[i] = f32::exp(dt * ar[i]) * x[i] + du * sb[i * tile + j];
                acc += x[i] * sc[i * tile + j];
            }
            let mut out = acc + skip * uu;
            if has_z {
                let zz = sz[me * row + j];
                out = out * zz * sigmoid(zz);
            }
            su[me * row + j] = out;
        }
        sync_cube();

        if write_y {
            #[unroll]
            for k in 0..tile {
                let idx = k * block + me;
                let ch = idx / tile;
                let j = idx % tile;
                let gch = first + ch;
                if j < steps && gch < dim {
                    y[(batch * dim + gch) * len + t0 + j] = su[ch * row + j];
                }
            }
        }
        sync_cube();
        t0 += tile;
    }
}
