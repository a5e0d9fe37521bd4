//! The causal convolution's kernels and their launch glue.
//!
//! One thread per (channel, row, run of consecutive positions), `BLOCK` channels per cube:
//! consecutive threads on consecutive channels, adjacent in memory in the model's channels-last
//! layout, so every load and store is coalesced. No shared memory and no barriers.
//!
//! - Forward: the thread walks its run keeping the last K inputs in registers, so each input is
//!   read once (plus K - 1 before the run).
//! - Backward: the thread walks its run backwards, keeping the K inputs of the current window and
//!   the K - 1 output gradients ahead of it (recomputing the pre-activation from the window), and
//!   sums its weight and bias gradients in registers. Each thread writes them once into partials
//!   [e, K + 1, rows · runs]; runs are made long enough that rows · runs stays near `MAX_RUNS`,
//!   so one tensor reduction along the contiguous axis finishes them (along the other axis,
//!   burn's reduction runs on one or two cubes, nearly serially).
//!
//! x and dy may have any strides (the model's x is a slice of the input projection); the
//! outputs are contiguous [r, l, e]. x, dy, y and dx are f32, f16 or bf16 (one type); the filters,
//! their gradients and all arithmetic f32.

use burn::tensor::{DType, Tensor as BurnTensor};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use super::column_sums::row_sums;
use super::forward::sigmoid;
use super::launch::{Cube, empty_like, flat_grid, prim, tensor};
use super::precision::{activation, empty_as, with_activation};
use crate::{CausalConvGrads, CausalConvInput};

/// Channels per cube.
const BLOCK: usize = 64;
/// The most taps the kernels take (mamba_ssm's causal-conv1d takes 2 to 4).
const MAX_TAPS: usize = 8;
/// Shortest run of positions per thread.
const MIN_RUN: usize = 64;
/// About this many (row, run) pairs: the weight-gradient partials stay a few MiB.
const MAX_RUNS: usize = 4096;

/// The offset of (row, position, channel) in a [r, l, e] tensor of any strides.
#[cube]
fn at<E: Float>(t: &Tensor<E>, row: usize, pos: usize, ch: usize) -> usize {
    row * t.stride(0) + pos * t.stride(1) + ch * t.stride(2)
}

/// x at `pos` - `back` in f32 (zero before the first position).
#[cube]
fn input_before<E: Float>(x: &Tensor<E>, row: usize, pos: usize, back: usize, ch: usize) -> f32 {
    let mut v = 0.0f32;
    if pos >= back {
        v = f32::cast_from(x[at(x, row, pos - back, ch)]);
    }
    v
}

/// This thread's (channel, row, run), from the cube's place in the flattened grid.
#[cube]
fn place(channels: usize, runs: usize) -> (usize, usize, usize) {
    let blocks = channels.div_ceil(BLOCK);
    let cube = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
    let ch = (cube % blocks) * BLOCK + UNIT_POS_X as usize;
    let rest = cube / blocks;
    (ch, rest / runs, rest % runs)
}

/// silu'(pre) when `silu`, else 1.
#[cube]
fn activation_slope(pre: f32, #[comptime] silu: bool) -> f32 {
    let mut slope = 1.0f32;
    if silu {
        let s = sigmoid(pre);
        slope = s * (1.0 + pre * (1.0 - s));
    }
    slope
}

/// y = act(bias + sum_k weight[k] · x[l - (K - 1) + k]); y contiguous [rows, len, channels].
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn causal_conv_forward_kernel<E: Float>(
    x: &Tensor<E>,
    weight: &Tensor<f32>,
    bias: &Tensor<f32>,
    y: &mut Tensor<E>,
    rows: u32,
    len: u32,
    channels: u32,
    run: u32,
    #[comptime] taps: usize,
    #[comptime] silu: bool,
) {
    let (rows, len, channels, run) = (rows as usize, len as usize, channels as usize, run as usize);
    let (ch, row, r) = place(channels, len.div_ceil(run));
    if row < rows && ch < channels {
        let mut w = Array::<f32>::new(taps);
        // window[k] = x[l - (K - 1) + k]
        let mut window = Array::<f32>::new(taps);
        let l0 = r * run;
        #[unroll]
        for k in 0..taps {
            w[k] = weight[ch * taps + k];
            window[k] = 0.0;
        }
        #[unroll]
        for k in 1..taps {
            window[k] = input_before(x, row, l0, taps - k, ch);
        }
        let b = bias[ch];
        let mut l1 = l0 + run;
        if l1 > len {
            l1 = len;
        }
        for l in l0..l1 {
            #[unroll]
            for k in 1..taps {
                window[k - 1] = window[k];
            }
            window[taps - 1] = f32::cast_from(x[at(x, row, l, ch)]);
            let mut acc = b;
            #[unroll]
            for k in 0..taps {
                acc += w[k] * window[k];
            }
            if silu {
                acc *= sigmoid(acc);
            }
            y[(row * len + l) * channels + ch] = E::cast_from(acc);
        }
    }
}

/// Gradients of `sum(y · dy)`: dx contiguous [rows, len, channels]; the thread's weight and bias
/// gradient sums in `part` [channels, K + 1, rows · runs] (bias last).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn causal_conv_backward_kernel<E: Float>(
    x: &Tensor<E>,
    weight: &Tensor<f32>,
    bias: &Tensor<f32>,
    dy: &Tensor<E>,
    dx: &mut Tensor<E>,
    part: &mut Tensor<f32>,
    rows: u32,
    len: u32,
    channels: u32,
    run: u32,
    #[comptime] taps: usize,
    #[comptime] silu: bool,
) {
    let (rows, len, channels, run) = (rows as usize, len as usize, channels as usize, run as usize);
    let runs = len.div_ceil(run);
    let (ch, row, r) = place(channels, runs);
    if row < rows && ch < channels {
        let mut w = Array::<f32>::new(taps);
        let mut window = Array::<f32>::new(taps);
        // ahead[j] = g[l + 1 + j], the output gradients (after the activation's slope) the
        // current position's input reaches.
        let mut ahead = Array::<f32>::new(taps);
        let mut dw = Array::<f32>::new(taps);
        #[unroll]
        for k in 0..taps {
            w[k] = weight[ch * taps + k];
            ahead[k] = 0.0;
            dw[k] = 0.0;
        }
        let b = bias[ch];
        let l0 = r * run;
        let mut l1 = l0 + run;
        if l1 > len {
            l1 = len;
        }
        // g past the run, each from its own window.
        #[unroll]
        for j in 0..taps - 1 {
            let p = l1 + j;
            if p < len {
                let mut pre = b;
                #[unroll]
                for k in 0..taps {
                    pre += w[k] * input_before(x, row, p, taps - 1 - k, ch);
                }
                ahead[j] = f32::cast_from(dy[at(dy, row, p, ch)]) * activation_slope(pre, silu);
            }
        }
        // The window of the run's last position.
        #[unroll]
        for k in 0..taps {
            window[k] = input_before(x, row, l1 - 1, taps - 1 - k, ch);
        }
        let mut db = 0.0f32;
        let mut l = l1;
        while l > l0 {
            l -= 1;
            let mut pre = b;
            #[unroll]
            for k in 0..taps {
                pre += w[k] * window[k];
            }
            let g = f32::cast_from(dy[at(dy, row, l, ch)]) * activation_slope(pre, silu);
            let mut grad = w[taps - 1] * g;
            #[unroll]
            for j in 0..taps - 1 {
                grad += w[taps - 2 - j] * ahead[j];
            }
            dx[(row * len + l) * channels + ch] = E::cast_from(grad);
            #[unroll]
            for k in 0..taps {
                dw[k] += g * window[k];
            }
            db += g;
            // Step one position back: g joins the gradients ahead, the window takes x[l - K].
            #[unroll]
            for j in 1..taps - 1 {
                ahead[taps - 1 - j] = ahead[taps - 2 - j];
            }
            ahead[0] = g;
            #[unroll]
            for j in 1..taps {
                window[taps - j] = window[taps - 1 - j];
            }
            window[0] = input_before(x, row, l, taps, ch);
        }
        let parts = rows * runs;
        let base = ch * (taps + 1) * parts + row * runs + r;
        #[unroll]
        for k in 0..taps {
            part[base + k * parts] = dw[k];
        }
        part[base + taps * parts] = db;
    }
}

/// Whether the kernels handle this input: x of an activation type, f32 filters, something to
/// convolve, at most `MAX_TAPS` taps.
pub fn supported<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: &CausalConvInput<Cube<R, F, I, BT>>,
) -> bool {
    let [rows, len, channels, taps] = input.dims();
    activation(&input.x)
        && input.weight.dtype() == DType::F32
        && input.bias.dtype() == DType::F32
        && rows * len * channels > 0
        && taps <= MAX_TAPS
}

/// The inputs and the launch shape.
struct Launch<R: CubeRuntime> {
    x: CubeTensor<R>,
    weight: CubeTensor<R>,
    bias: CubeTensor<R>,
    silu: bool,
    /// rows, positions, channels, taps
    dims: [usize; 4],
}

impl<R: CubeRuntime> Launch<R> {
    fn new<F: FloatElement, I: IntElement, BT: BoolElement>(input: CausalConvInput<Cube<R, F, I, BT>>) -> Self {
        Launch {
            dims: input.dims(),
            x: input.x.into_primitive().tensor(),
            weight: prim(input.weight),
            bias: prim(input.bias),
            silu: input.silu,
        }
    }

    /// A new tensor of x's type.
    fn empty(&self, shape: Vec<usize>) -> CubeTensor<R> {
        empty_as(&self.x, shape, self.x.dtype)
    }

    /// Positions per thread.
    fn run(&self) -> usize {
        let [rows, len, _, _] = self.dims;
        MIN_RUN.max((rows * len).div_ceil(MAX_RUNS))
    }

    /// rows · runs.
    fn runs(&self) -> usize {
        self.dims[0] * self.dims[1].div_ceil(self.run())
    }

    /// One cube per (channel block, row, run), laid over x and (past 65 535) y.
    fn cube_count(&self) -> CubeCount {
        flat_grid(self.dims[2].div_ceil(BLOCK) * self.runs())
    }
}

/// Forward on the kernel: [r, l, e].
pub fn forward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: CausalConvInput<Cube<R, F, I, BT>>,
) -> BurnTensor<Cube<R, F, I, BT>, 3> {
    let p = Launch::new(input);
    let [rows, len, channels, taps] = p.dims;
    let y = p.empty(vec![rows, len, channels]);
    with_activation!(p.x.dtype, E => causal_conv_forward_kernel::launch::<E, R>(
        &p.x.client,
        p.cube_count(),
        CubeDim::new_1d(BLOCK as u32),
        p.x.clone().into_tensor_arg(),
        p.weight.clone().into_tensor_arg(),
        p.bias.clone().into_tensor_arg(),
        y.clone().into_tensor_arg(),
        rows as u32,
        len as u32,
        channels as u32,
        p.run() as u32,
        taps,
        p.silu,
    ));
    tensor(y)
}

/// Backward on the kernel: gradients of `sum(y * dy)`.
pub fn backward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: CausalConvInput<Cube<R, F, I, BT>>,
    dy: BurnTensor<Cube<R, F, I, BT>, 3>,
) -> CausalConvGrads<Cube<R, F, I, BT>> {
    let p = Launch::new(input);
    let [rows, len, channels, taps] = p.dims;
    let dx = p.empty(vec![rows, len, channels]);
    let part = empty_like(&p.x, vec![channels, taps + 1, p.runs()]);
    with_activation!(p.x.dtype, E => causal_conv_backward_kernel::launch::<E, R>(
        &p.x.client,
        p.cube_count(),
        CubeDim::new_1d(BLOCK as u32),
        p.x.clone().into_tensor_arg(),
        p.weight.clone().into_tensor_arg(),
        p.bias.clone().into_tensor_arg(),
        dy.into_primitive().tensor().into_tensor_arg(),
        dx.clone().into_tensor_arg(),
        part.clone().into_tensor_arg(),
        rows as u32,
        len as u32,
        channels as u32,
        p.run() as u32,
        taps,
        p.silu,
    ));
    let parts = part.meta.shape()[2];
    let sums =
        row_sums(tensor::<R, F, I, BT, 3>(part).reshape([channels * (taps + 1), parts])).reshape([channels, taps + 1]);
    CausalConvGrads {
        x: tensor(dx),
        weight: sums.clone().narrow(1, 0, taps),
        bias: sums.narrow(1, taps, 1).reshape([channels]),
    }
}
