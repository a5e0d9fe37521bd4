//! Launch glue: burn tensors in, kernel launches, burn tensors out. The kernels are launched for
//! the activations' element type (u's: f32, f16 or bf16); the parameters, checkpoints and every
//! buffer between launches are f32.

use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Shape, Tensor, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use super::backward::{scan_adjoint_kernel, scan_backward_kernel};
use super::backward_lanes::scan_backward_lanes_kernel;
use super::column_sums::row_sums;
use super::combine::scan_combine_kernel;
use super::forward::scan_forward_kernel;
use super::forward_lanes::{LANES, scan_lanes_kernel};
use super::precision::{self, empty_as, with_activation};
use crate::scan::{ScanCheckpoints, ScanOutput};
use crate::{ScanGrads, SelectiveScanInput};

/// Kernel tuning knobs. The defaults are what the backend uses; tests shrink them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelConfig {
    /// Positions per chunk (≥ 1): the backward keeps the state at every chunk start, and when L
    /// is split the chunks are scanned in parallel. Extra memory of a backward, in floats:
    /// b·d·l (delta') + b·d·N·(⌈l/chunk⌉ + segments · (1 + ⌈chunk/tile⌉)), segments = 1 unless
    /// L is split. 128 suits the lanes backward: 64 halves its registers but doubles its
    /// checkpoints and sweeps, which costs more than the occupancy gains; 256 does not fit its
    /// shared memory.
    pub chunk: usize,
    /// Channels per cube (one thread each).
    pub block: usize,
    /// Positions per shared-memory tile in the forward.
    pub forward_tile: usize,
    /// Upper bound on shared memory per cube in the backward, in bytes; the backward picks the
    /// longest tile (8, 4, 2 or 1 positions) that fits.
    pub backward_shared_bytes: usize,
    /// L is split into chunks scanned in parallel when batch rows × channel blocks (the cubes of
    /// an unsplit scan) fall below this, as the GPU would otherwise sit mostly idle. Splitting
    /// costs one more pass over the inputs.
    pub split_below: usize,
    /// When L is split, the backward's main kernel takes segments of whole chunks, the longest
    /// that still give about this many cubes (its scratch memory grows with the cube count).
    pub split_cubes: usize,
    /// The backward sums dB and dC over a cube's channels by a butterfly over the plane where the
    /// cube is exactly one plane and the inputs are channels-last views; off, always in shared
    /// memory (for comparing the two).
    pub plane_sums: bool,
    /// Channels per cube of the kernels that run a plane's 32 lanes along L (`forward_lanes.rs`,
    /// `backward_lanes.rs`), one plane each; 0 runs the one-thread-per-channel kernels
    /// everywhere. 8: a cube of fewer planes has too few warps to hide its load latency.
    pub lane_channels: usize,
    /// Positions per lane and tile in that forward (a tile is 32 such runs); even, so that the
    /// padded runs fall on distinct shared-memory banks. The lanes backward's runs are a chunk's
    /// positions over 32.
    pub lane_items: usize,
    /// Which inputs the backward runs on the lanes kernel (`backward_lanes.rs`) for, where the
    /// lanes forward could run and a chunk is whole runs of the 32 lanes.
    pub lane_backward: LaneBackward,
    /// Where the lanes backward runs, the forward that saves its checkpoints runs on the lanes
    /// kernel too (tiles of one chunk); off, on the one-thread-per-channel kernel.
    pub lane_saving: bool,
}

/// Which inputs the lanes backward takes (see `KernelConfig::lane_backward`). On contiguous
/// [b, d, l] inputs the lanes' loads run along L and it is much the faster where b·d threads do
/// not fill the GPU; on the model's channels-last views at its training shape the
/// one-thread-per-channel kernels are the faster (BENCHMARKS.md), hence the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneBackward {
    /// None: the one-thread-per-channel kernels everywhere.
    Off,
    /// Inputs whose positions are adjacent in memory (contiguous [b, d, l], the lanes' loads run
    /// along them); channels-last views keep the one-thread-per-channel kernels.
    ChannelsFirst,
    /// Channels-last views too.
    Always,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            chunk: 128,
            block: 32,
            forward_tile: 32,
            backward_shared_bytes: 24 * 1024,
            // About one wave on an H100 (132 SMs, ~9–13 cubes each): 256 × 256 channels does not
            // split, 64 × 256 does.
            split_below: 1024,
            // About six waves of ~10 cubes per SM on 132 SMs: a short last wave. Scratch ≤ 512 MiB
            // at d_state 16.
            split_cubes: 8192,
            plane_sums: true,
            lane_channels: 8,
            lane_items: 4,
            lane_backward: LaneBackward::ChannelsFirst,
            lane_saving: true,
        }
    }
}

impl KernelConfig {
    /// Shared memory of the backward kernel, in bytes, for a tile length and state size, with
    /// dB and dC summed over the channels by a butterfly over the plane (`plane`) or in shared
    /// memory.
    fn backward_shared(&self, tile: usize, n_state: usize, plane: bool) -> usize {
        let block = self.block;
        let floats = if plane {
            6 * block * (tile + 1) + 4 * n_state * tile + (tile + 1) * n_state * block
        } else {
            7 * block * (tile + 1) + 2 * n_state * tile + (2 * tile + 1) * n_state * (block + 1)
        };
        4 * floats
    }

    /// Shared memory of either lanes kernel (forward or backward: both stage three channel rows
    /// and B and C), in bytes, for a state size and runs of `items` positions, with the scans
    /// across lanes by plane shuffles (`plane`) or through shared memory.
    fn lanes_shared(&self, n_state: usize, items: usize, plane: bool) -> usize {
        let row = LANES * (items + 1) + 1;
        let scratch = if plane { 1 } else { 2 * LANES * self.lane_channels };
        4 * ((3 * self.lane_channels + 2 * n_state) * row + scratch)
    }

    /// The backward's tile: the longest that fits the shared-memory budget.
    fn backward_tile(&self, n_state: usize, plane: bool) -> usize {
        [8, 4, 2, 1]
            .into_iter()
            .find(|&tile| self.backward_shared(tile, n_state, plane) <= self.backward_shared_bytes)
            .unwrap_or(1)
    }
}

pub(super) type Cube<R, F, I, BT> = CubeBackend<R, F, I, BT>;

/// Cubes along one launch grid dimension that every backend accepts (CUDA's y and z, WGPU's all).
pub(super) const MAX_GRID: usize = 65535;

/// Planes (b·d) from which the lanes forward fills the GPU without splitting L: about eight per
/// multiprocessor of an H200.
const LANES_FILL: usize = 1024;

/// Channels (b·d) from which the one-thread-per-channel forward fills the GPU by itself, about an
/// H200's resident threads (132 multiprocessors × 2048): there it is the faster, as it needs no
/// composing and replaying of runs across lanes.
const THREADS_FILL: usize = 1 << 18;

/// Shared memory a cube may take without asking CUDA for more (WGPU's default limit too); less
/// where the device says so (the CPU Vulkan driver: 32 KiB).
fn shared_limit<R: CubeRuntime>(client: &ComputeClient<R>) -> usize {
    client.properties().hardware.max_shared_memory_size.min(48 * 1024)
}

/// Whether a cube of `block` units is exactly one plane whose lanes can exchange values
/// (a warp on CUDA; not on CPU Vulkan drivers, whose planes cubecl does not offer).
fn plane_is_cube<R: CubeRuntime>(client: &ComputeClient<R>, block: usize) -> bool {
    let hardware = &client.properties().hardware;
    client.features().plane.contains(cubecl::ir::features::Plane::Ops)
        && hardware.plane_size_min as usize == block
        && hardware.plane_size_max as usize == block
}

/// A new contiguous f32 tensor of `shape` on `like`'s device.
pub(super) fn empty_like<R: CubeRuntime>(like: &CubeTensor<R>, shape: Vec<usize>) -> CubeTensor<R> {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), Shape::from(shape), DType::F32)
}

/// `cubes` cubes laid over the grid's x and, past `MAX_GRID`, y (kernels read their index as
/// `CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X` and skip the overshoot).
pub(super) fn flat_grid(cubes: usize) -> CubeCount {
    let x = cubes.min(MAX_GRID);
    CubeCount::Static(x as u32, cubes.div_ceil(x) as u32, 1)
}

/// A burn tensor as a contiguous cube tensor, for a launch.
pub(super) fn prim<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement, const D: usize>(
    t: Tensor<Cube<R, F, I, BT>, D>,
) -> CubeTensor<R> {
    into_contiguous(t.into_primitive().tensor())
}

/// A launch's output as a burn tensor.
pub(super) fn tensor<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement, const D: usize>(
    t: CubeTensor<R>,
) -> Tensor<Cube<R, F, I, BT>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// A burn tensor as a cube tensor of whatever strides it has: the scan kernels index their
/// [b, d, l] and [b, N, l] tensors through strides, so views need no copy.
fn view<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    t: Tensor<Cube<R, F, I, BT>, 3>,
) -> CubeTensor<R> {
    t.into_primitive().tensor()
}

/// A [b, x, l] view with its x (`channels_last`) or its positions adjacent in memory, as the
/// kernels' coalesced loads take it: the view itself when it is, a copy laid out so otherwise.
/// Why: a tensor's producer picks its layout, and burn-fusion's choice varies from one process
/// to the next, and a gradient dy that came the other way round would leave the backward's loads
/// uncoalesced.
fn laid_out<R: CubeRuntime>(mut t: CubeTensor<R>, channels_last: bool) -> CubeTensor<R> {
    let adjacent = if channels_last { 1 } else { 2 };
    if t.meta.shape()[adjacent] == 1 || t.meta.strides()[adjacent] == 1 {
        return t;
    }
    if !channels_last {
        return into_contiguous(t);
    }
    t.meta.swap(1, 2);
    let mut copy = into_contiguous(t);
    copy.meta.swap(1, 2);
    copy
}

/// The inputs as cube tensors: views for the sequences, contiguous for the per-channel ones.
struct Prepared<R: CubeRuntime> {
    u: CubeTensor<R>,
    delta: CubeTensor<R>,
    z: Option<CubeTensor<R>>,
    a: CubeTensor<R>,
    b: CubeTensor<R>,
    c: CubeTensor<R>,
    d: CubeTensor<R>,
    delta_bias: CubeTensor<R>,
    softplus: bool,
    /// The activations' element type (u's; the kernels' `E`).
    dtype: DType,
    /// Whether u's channels, rather than its positions, are adjacent in memory (the model's
    /// [R, L, E] activations seen as [R, E, L]): the kernels then load along channels, and the
    /// sequence outputs are allocated the same way.
    channels_last: bool,
    /// batch, channels, states, positions
    dims: [usize; 4],
}

impl<R: CubeRuntime> Prepared<R> {
    fn new<F: FloatElement, I: IntElement, BT: BoolElement>(input: SelectiveScanInput<Cube<R, F, I, BT>>) -> Self {
        let [batch, dim, len] = input.u.dims();
        let [_, n_state] = input.a.dims();
        let dtype = input.u.dtype();
        let u = view(input.u);
        let strides = u.meta.strides();
        let channels_last = strides[1] < strides[2];
        let sequence = |t| laid_out(view(t), channels_last);
        Prepared {
            channels_last,
            u,
            delta: sequence(input.delta),
            z: input.z.map(sequence),
            a: prim(input.a),
            b: sequence(input.b),
            c: sequence(input.c),
            d: prim(input.d),
            delta_bias: prim(input.delta_bias),
            softplus: input.delta_softplus,
            dtype,
            dims: [batch, dim, n_state, len],
        }
    }

    /// A new [b, d, l] sequence tensor of `dtype` laid out as u is: of the activations' type for
    /// y and the gradients, f32 for delta'.
    fn empty_sequence(&self, dtype: DType) -> CubeTensor<R> {
        let [batch, dim, _, len] = self.dims;
        if self.channels_last {
            let mut t = empty_as(&self.u, vec![batch, len, dim], dtype);
            t.meta.swap(1, 2);
            t
        } else {
            empty_as(&self.u, vec![batch, dim, len], dtype)
        }
    }

    /// A new f32 tensor (the kernels' internal buffers).
    fn empty(&self, shape: Vec<usize>) -> CubeTensor<R> {
        empty_like(&self.u, shape)
    }

    /// A one-element tensor of the activations' type, for an activation argument a launch does
    /// not use.
    fn unused_activation(&self) -> CubeTensor<R> {
        empty_as(&self.u, vec![1], self.dtype)
    }

    /// The z argument: the gate, or any tensor when there is none (never read).
    fn z_arg(&self) -> TensorArg<R> {
        self.z.clone().unwrap_or_else(|| self.u.clone()).into_tensor_arg()
    }

    fn chunk(&self, config: &KernelConfig) -> usize {
        chunk_len(self.dims[3], config)
    }

    /// Channel blocks (cubes per batch row) and chunks of L.
    fn grid(&self, config: &KernelConfig) -> (usize, usize) {
        let [_, dim, _, len] = self.dims;
        (dim.div_ceil(config.block), len.div_ceil(self.chunk(config)))
    }

    /// Whether L is split into chunks scanned in parallel (see `KernelConfig::split_below`).
    fn split(&self, config: &KernelConfig) -> bool {
        let (blocks, chunks) = self.grid(config);
        chunks > 1 && self.dims[0] * blocks < config.split_below
    }

    /// Whether the forward that saves nothing (inference) runs on the lanes kernel (see
    /// `KernelConfig::lane_channels`).
    fn lanes(&self, config: &KernelConfig) -> bool {
        self.lanes_fit(config, config.lane_items)
    }

    /// Whether a lanes kernel with runs of `items` positions may take this scan: where one thread
    /// per channel would not fill the GPU, and L is not split or the planes alone fill it; and its
    /// shared memory fits.
    fn lanes_fit(&self, config: &KernelConfig, items: usize) -> bool {
        let [batch, dim, n_state, _] = self.dims;
        config.lane_channels > 0
            && config.lanes_shared(n_state, items, self.plane_lanes()) <= shared_limit(&self.u.client)
            && batch * dim < THREADS_FILL
            && (!self.split(config) || batch * dim >= LANES_FILL)
    }

    /// The lanes backward's positions per lane, where it runs (`KernelConfig::lane_backward`): its
    /// tile is one chunk, of 32 runs of up to 8 positions (its registers grow with them), and the
    /// lanes kernels fit as for the lanes forward.
    fn lane_backward_items(&self, config: &KernelConfig) -> Option<usize> {
        let chunk = self.chunk(config);
        let items = chunk / LANES;
        let takes = match config.lane_backward {
            LaneBackward::Off => false,
            LaneBackward::ChannelsFirst => !self.channels_last,
            LaneBackward::Always => true,
        };
        (takes && chunk.is_multiple_of(LANES) && (1..=8).contains(&items) && self.lanes_fit(config, items))
            .then_some(items)
    }

    /// The saving lanes forward's positions per lane, where it runs: wherever the lanes backward
    /// does (`KernelConfig::lane_saving`; its shared memory is the backward's), its tiles that
    /// backward's chunks.
    fn lane_saving_items(&self, config: &KernelConfig) -> Option<usize> {
        self.lane_backward_items(config).filter(|_| config.lane_saving)
    }

    /// Whether the lanes forward scans across lanes by plane shuffles.
    fn plane_lanes(&self) -> bool {
        plane_is_cube(&self.u.client, LANES)
    }

    /// Launches the lanes forward with runs of `items` positions: y, and with `saved` the
    /// checkpoints (states [b, chunks, d, N] of chunks of 32·`items`, delta' [b, d, l]).
    fn launch_lanes(
        &self,
        config: &KernelConfig,
        items: usize,
        y: &CubeTensor<R>,
        saved: Option<(&CubeTensor<R>, &CubeTensor<R>)>,
    ) {
        let [batch, dim, n_state, len] = self.dims;
        let unused = self.empty(vec![1]);
        let (state, dtp) = saved.unwrap_or((&unused, &unused));
        let channels = config.lane_channels;
        with_activation!(self.dtype, E => scan_lanes_kernel::launch::<E, R>(
            &self.u.client,
            CubeCount::Static(dim.div_ceil(channels) as u32, batch as u32, 1),
            CubeDim::new_2d(LANES as u32, channels as u32),
            self.u.clone().into_tensor_arg(),
            self.delta.clone().into_tensor_arg(),
            self.z_arg(),
            self.a.clone().into_tensor_arg(),
            self.b.clone().into_tensor_arg(),
            self.c.clone().into_tensor_arg(),
            self.d.clone().into_tensor_arg(),
            self.delta_bias.clone().into_tensor_arg(),
            y.clone().into_tensor_arg(),
            dtp.clone().into_tensor_arg(),
            state.clone().into_tensor_arg(),
            dim as u32,
            len as u32,
            n_state,
            channels,
            items,
            self.z.is_some(),
            self.softplus,
            self.channels_last,
            self.plane_lanes(),
            saved.is_some(),
        ));
    }

    /// Chunks per segment of the backward's main kernel: all of them, or when L is split, as
    /// few as give `KernelConfig::split_cubes` cubes.
    fn chunks_per_segment(&self, config: &KernelConfig) -> usize {
        let (blocks, chunks) = self.grid(config);
        if self.split(config) {
            let segments = config.split_cubes.div_ceil(self.dims[0] * blocks).clamp(1, chunks);
            chunks.div_ceil(segments)
        } else {
            chunks
        }
    }

    /// Launches the forward kernel for `pass`.
    fn launch_forward(&self, config: &KernelConfig, pass: Pass<'_, R>) {
        let [batch, dim, n_state, len] = self.dims;
        let unused = self.empty(vec![1]);
        let no_y = self.unused_activation();
        let (seg, start, y, end, dt_sum, dtp) = match pass {
            Pass::Whole { y } => (len.max(1), &unused, y, &unused, &unused, &unused),
            Pass::Saving { y, state, dtp } => (len.max(1), &unused, y, state, &unused, dtp),
            Pass::Ends { state, dt_sum, dtp } => (self.chunk(config), &unused, &no_y, state, dt_sum, dtp),
            Pass::FromStarts { start, dtp, y } => (self.chunk(config), start, y, &unused, &unused, dtp),
        };
        let has_start = matches!(pass, Pass::FromStarts { .. });
        let to_end = matches!(pass, Pass::Ends { .. });
        let save = matches!(pass, Pass::Saving { .. });
        let (blocks, _) = self.grid(config);
        with_activation!(self.dtype, E => scan_forward_kernel::launch::<E, R>(
            &self.u.client,
            CubeCount::Static(blocks as u32, batch as u32, len.div_ceil(seg) as u32),
            CubeDim::new_1d(config.block as u32),
            self.u.clone().into_tensor_arg(),
            self.delta.clone().into_tensor_arg(),
            self.z_arg(),
            self.a.clone().into_tensor_arg(),
            self.b.clone().into_tensor_arg(),
            self.c.clone().into_tensor_arg(),
            self.d.clone().into_tensor_arg(),
            self.delta_bias.clone().into_tensor_arg(),
            start.clone().into_tensor_arg(),
            y.clone().into_tensor_arg(),
            end.clone().into_tensor_arg(),
            dt_sum.clone().into_tensor_arg(),
            dtp.clone().into_tensor_arg(),
            dim as u32,
            len as u32,
            seg as u32,
            self.chunk(config) as u32,
            n_state,
            config.block,
            config.forward_tile,
            self.z.is_some(),
            self.softplus,
            has_start,
            to_end,
            save,
            self.channels_last,
        ));
    }

    /// Chains per-segment scans in `state` [b, segments, d, N] (sums of delta' in `dt_sum`
    /// [b, segments, d]) into the states entering each segment, from the left or (`reverse`) from
    /// the right.
    fn combine(&self, state: &CubeTensor<R>, dt_sum: &CubeTensor<R>, segments: usize, reverse: bool) {
        let [batch, dim, n_state, _] = self.dims;
        let threads = 256;
        scan_combine_kernel::launch::<R>(
            &self.u.client,
            CubeCount::Static((dim * n_state).div_ceil(threads) as u32, batch as u32, 1),
            CubeDim::new_1d(threads as u32),
            state.clone().into_tensor_arg(),
            dt_sum.clone().into_tensor_arg(),
            self.a.clone().into_tensor_arg(),
            dim as u32,
            segments as u32,
            n_state,
            reverse,
        );
    }

    /// An empty [b, chunks, d, N] tensor of states.
    fn empty_states(&self, config: &KernelConfig) -> CubeTensor<R> {
        let [batch, dim, n_state, _] = self.dims;
        self.empty(vec![batch, self.grid(config).1, dim, n_state])
    }

    /// The state entering every chunk [b, chunks, d, N] (the chunks scanned from zero in
    /// parallel, then chained) and delta' [b, d, l].
    fn checkpoints(&self, config: &KernelConfig) -> (CubeTensor<R>, CubeTensor<R>) {
        let [batch, dim, _, _] = self.dims;
        let (_, chunks) = self.grid(config);
        let state = self.empty_states(config);
        let dt_sum = self.empty(vec![batch, chunks, dim]);
        let dtp = self.empty_sequence(DType::F32);
        self.launch_forward(
            config,
            Pass::Ends {
                state: &state,
                dt_sum: &dt_sum,
                dtp: &dtp,
            },
        );
        self.combine(&state, &dt_sum, chunks, false);
        (state, dtp)
    }
}

/// Positions per chunk: the configured length, or longer where L would need more chunks than
/// a launch grid dimension holds (chunks run along one); never longer than L, which sizes
/// the backward's scratch.
fn chunk_len(len: usize, config: &KernelConfig) -> usize {
    config.chunk.max(len.div_ceil(MAX_GRID)).min(len.max(1))
}

/// What a forward launch does.
enum Pass<'a, R: CubeRuntime> {
    /// Scans all of L from zero in one segment, writing y [b, d, l].
    Whole { y: &'a CubeTensor<R> },
    /// As `Whole`, and writes the state entering every chunk [b, chunks, d, N] and delta'
    /// [b, d, l] on the way, for the backward.
    Saving {
        y: &'a CubeTensor<R>,
        state: &'a CubeTensor<R>,
        dtp: &'a CubeTensor<R>,
    },
    /// Scans every chunk from zero, writing its end state [b, chunks, d, N], its sum of delta'
    /// [b, chunks, d] and delta' [b, d, l].
    Ends {
        state: &'a CubeTensor<R>,
        dt_sum: &'a CubeTensor<R>,
        dtp: &'a CubeTensor<R>,
    },
    /// Scans every chunk from its `start` state [b, chunks, d, N] with delta' given, writing y.
    FromStarts {
        start: &'a CubeTensor<R>,
        dtp: &'a CubeTensor<R>,
        y: &'a CubeTensor<R>,
    },
}

/// Whether the kernels handle this input: activations of one type the device computes with
/// (f32, f16 or bf16) and f32 parameters (see [`SelectiveScanInput::activation_dtype`]), and
/// [`shape_supported`].
pub fn supported<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: &SelectiveScanInput<Cube<R, F, I, BT>>,
    config: &KernelConfig,
) -> bool {
    let [_, n_state] = input.a.dims();
    let [_, _, len] = input.u.dims();
    let client = input.u.clone().into_primitive().tensor().client;
    input
        .activation_dtype()
        .is_some_and(|dtype| precision::activation_on(&client, dtype))
        && shape_supported(n_state, len, config)
}

/// Whether the kernels handle `n_state` states and `len` positions: a state size the shared
/// memory can hold, and at least one position.
fn shape_supported(n_state: usize, len: usize, config: &KernelConfig) -> bool {
    n_state > 0 && len > 0 && config.backward_shared(1, n_state, false) <= config.backward_shared_bytes
}

/// The batch rows of each launch: batch rows run along the grid's y dimension, which holds
/// `MAX_GRID` (scoring a large batch of many-row alignments passes it).
fn launches(batch: usize) -> impl Iterator<Item = Range<usize>> {
    (0..batch)
        .step_by(MAX_GRID)
        .map(move |start| start..(start + MAX_GRID).min(batch))
}

/// `rows` of the input's batch, as views.
fn batch_rows<B: Backend>(input: &SelectiveScanInput<B>, rows: &Range<usize>) -> SelectiveScanInput<B> {
    let part = |t: &Tensor<B, 3>| t.clone().narrow(0, rows.start, rows.len());
    SelectiveScanInput {
        u: part(&input.u),
        delta: part(&input.delta),
        b: part(&input.b),
        c: part(&input.c),
        z: input.z.as_ref().map(part),
        ..input.clone()
    }
}

/// Which kernels a scan of an input runs under a config (as the benchmarks report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPlan {
    /// L is split into chunks scanned in parallel (see `KernelConfig::split_below`).
    pub split: bool,
    /// The forward that saves nothing ([`forward`], inference) runs on the lanes kernel
    /// (`forward_lanes.rs`).
    pub lanes: bool,
    /// [`forward_saving`] runs on the lanes kernel.
    pub lane_saving: bool,
    /// [`backward`] runs on the lanes kernel (`backward_lanes.rs`).
    pub lane_backward: bool,
}

/// The kernels [`forward`], [`forward_saving`] and [`backward`] run for `input` under `config`
/// (for at most one launch's batch rows).
pub fn plan<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: SelectiveScanInput<Cube<R, F, I, BT>>,
    config: &KernelConfig,
) -> ScanPlan {
    let p = Prepared::new(input);
    ScanPlan {
        split: p.split(config),
        lanes: p.lanes(config),
        lane_saving: p.lane_saving_items(config).is_some(),
        lane_backward: p.lane_backward_items(config).is_some(),
    }
}

/// Forward scan on the kernel: y [b, d, l].
pub fn forward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: SelectiveScanInput<Cube<R, F, I, BT>>,
    config: &KernelConfig,
) -> Tensor<Cube<R, F, I, BT>, 3> {
    let batch = input.u.dims()[0];
    if batch <= MAX_GRID {
        return forward_launch(input, config, false).y;
    }
    let parts = launches(batch).map(|rows| forward_launch(batch_rows(&input, &rows), config, false).y);
    Tensor::cat(parts.collect(), 0)
}

/// The shapes of the checkpoints [`forward_saving`] returns on `client`'s device for an input of
/// `dims` (b, d, N, l) with activations of `dtype`: the states [b, chunks, d, N] and delta'
/// [b, d, l], both f32; `None` where the kernels do not take the type or the shape, or past one
/// launch's batch rows.
pub fn checkpoint_shapes<R: CubeRuntime>(
    dims: [usize; 4],
    dtype: DType,
    client: &ComputeClient<R>,
    config: &KernelConfig,
) -> Option<[Vec<usize>; 2]> {
    let [batch, dim, n_state, len] = dims;
    let chunks = len.div_ceil(chunk_len(len, config));
    (precision::activation_on(client, dtype) && shape_supported(n_state, len, config) && batch <= MAX_GRID)
        .then(|| [vec![batch, chunks, dim, n_state], vec![batch, dim, len]])
}

/// Forward scan on the kernel, with the backward's checkpoints where [`checkpoint_shapes`] says.
pub fn forward_saving<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: SelectiveScanInput<Cube<R, F, I, BT>>,
    config: &KernelConfig,
) -> ScanOutput<Cube<R, F, I, BT>> {
    if input.u.dims()[0] <= MAX_GRID {
        forward_launch(input, config, true)
    } else {
        ScanOutput {
            y: forward(input, config),
            checkpoints: None,
        }
    }
}

/// Backward scan on the kernel: gradients of `sum(y * dy)` for every input, from the
/// checkpoints [`forward_saving`] returned for the same input and config (computed here when
/// `None`).
pub fn backward<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: SelectiveScanInput<Cube<R, F, I, BT>>,
    checkpoints: Option<ScanCheckpoints<Cube<R, F, I, BT>>>,
    dy: Tensor<Cube<R, F, I, BT>, 3>,
    config: &KernelConfig,
) -> ScanGrads<Cube<R, F, I, BT>> {
    let batch = input.u.dims()[0];
    if batch <= MAX_GRID {
        return backward_launch(input, checkpoints, dy, config);
    }
    let parts: Vec<_> = launches(batch)
        .map(|rows| {
            let dy = dy.clone().narrow(0, rows.start, rows.len());
            backward_launch(batch_rows(&input, &rows), None, dy, config)
        })
        .collect();
    let joined = |pick: fn(&ScanGrads<_>) -> Tensor<_, 3>| Tensor::cat(parts.iter().map(pick).collect(), 0);
    let summed = |parts: Vec<Tensor<Cube<R, F, I, BT>, 1>>| parts.into_iter().reduce(|x, y| x + y);
    ScanGrads {
        u: joined(|g| g.u.clone()),
        delta: joined(|g| g.delta.clone()),
        a: parts
            .iter()
            .map(|g| g.a.clone())
            .reduce(|x, y| x + y)
            .expect("one launch at least"),
        b: joined(|g| g.b.clone()),
        c: joined(|g| g.c.clone()),
        d: summed(parts.iter().map(|g| g.d.clone()).collect()).expect("one launch at least"),
        z: input
            .z
            .is_some()
            .then(|| joined(|g| g.z.clone().expect("z's gradient"))),
        delta_bias: summed(parts.iter().map(|g| g.delta_bias.clone()).collect()).expect("one launch at least"),
    }
}

/// [`forward`] of at most `MAX_GRID` batch rows, with the backward's checkpoints when `save`.
/// On the one-thread-per-channel kernel, when L is split they come for free: the forward makes
/// them first.
fn forward_launch<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: SelectiveScanInput<Cube<R, F, I, BT>>,
    config: &KernelConfig,
    save: bool,
) -> ScanOutput<Cube<R, F, I, BT>> {
    let p = Prepared::new(input);
    let y = p.empty_sequence(p.dtype);
    let lane_saving = p.lane_saving_items(config).filter(|_| save);
    let saved = if let Some(items) = lane_saving {
        let (state, dtp) = (p.empty_states(config), p.empty_sequence(DType::F32));
        p.launch_lanes(config, items, &y, Some((&state, &dtp)));
        Some((state, dtp))
    } else if !save && p.lanes(config) {
        p.launch_lanes(config, config.lane_items, &y, None);
        None
    } else if p.split(config) {
        let (start, dtp) = p.checkpoints(config);
        p.launch_forward(
            config,
            Pass::FromStarts {
                start: &start,
                dtp: &dtp,
                y: &y,
            },
        );
        save.then_some((start, dtp))
    } else if save {
        let (state, dtp) = (p.empty_states(config), p.empty_sequence(DType::F32));
        p.launch_forward(
            config,
            Pass::Saving {
                y: &y,
                state: &state,
                dtp: &dtp,
            },
        );
        Some((state, dtp))
    } else {
        p.launch_forward(config, Pass::Whole { y: &y });
        None
    };
    ScanOutput {
        y: tensor(y),
        checkpoints: saved.map(|(states, dtp)| ScanCheckpoints {
            states: tensor(states),
            delta: tensor(dtp),
        }),
    }
}

/// [`backward`] of at most `MAX_GRID` batch rows.
fn backward_launch<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    input: SelectiveScanInput<Cube<R, F, I, BT>>,
    checkpoints: Option<ScanCheckpoints<Cube<R, F, I, BT>>>,
    dy: Tensor<Cube<R, F, I, BT>, 3>,
    config: &KernelConfig,
) -> ScanGrads<Cube<R, F, I, BT>> {
    let p = Prepared::new(input);
    // dy comes as y went out, in the activations' type; any other converts once here.
    let dy = laid_out(view(dy.cast(p.dtype)), p.channels_last);
    let (ckpt, dtp) = match checkpoints {
        Some(saved) => (prim(saved.states), view(saved.delta)),
        None => p.checkpoints(config),
    };
    let grads = match p.lane_backward_items(config) {
        Some(items) => p.launch_backward_lanes(config, items, dy, ckpt, dtp),
        None => p.launch_backward(config, dy, ckpt, dtp),
    };
    grads.summed::<F, I, BT>(&p)
}

/// What a backward launch leaves: the sequence gradients, and partial sums of the others.
struct BackwardParts<R: CubeRuntime> {
    du: CubeTensor<R>,
    ddelta: CubeTensor<R>,
    /// z's gradient, or a placeholder without z.
    dz: CubeTensor<R>,
    /// [b, blocks, N, l], or [b, blocks, l, N] where `parts_channels_last`.
    db_part: CubeTensor<R>,
    dc_part: CubeTensor<R>,
    parts_channels_last: bool,
    /// [d, N, parts], [d, parts] and [d, parts]: summed over their last axis.
    da_part: CubeTensor<R>,
    dd_part: CubeTensor<R>,
    dbias_part: CubeTensor<R>,
}

impl<R: CubeRuntime> BackwardParts<R> {
    /// The gradients: dB and dC summed over channel blocks (in f32, then rounded to the
    /// activations' type), the per-channel ones over their parts.
    fn summed<F: FloatElement, I: IntElement, BT: BoolElement>(self, p: &Prepared<R>) -> ScanGrads<Cube<R, F, I, BT>> {
        let [batch, dim, n_state, len] = p.dims;
        let parts = self.dd_part.meta.shape()[1];
        let summed = row_sums::<R, F, I, BT>;
        let over_blocks = |t: CubeTensor<R>| {
            let sum = tensor::<R, F, I, BT, 4>(t).sum_dim(1);
            let sum = if self.parts_channels_last {
                sum.reshape([batch, len, n_state]).swap_dims(1, 2)
            } else {
                sum.reshape([batch, n_state, len])
            };
            sum.cast(p.dtype)
        };
        ScanGrads {
            u: tensor(self.du),
            delta: tensor(self.ddelta),
            a: summed(tensor::<R, F, I, BT, 3>(self.da_part).reshape([dim * n_state, parts])).reshape([dim, n_state]),
            b: over_blocks(self.db_part),
            c: over_blocks(self.dc_part),
            d: summed(tensor(self.dd_part)),
            z: p.z.is_some().then(|| tensor(self.dz)),
            delta_bias: summed(tensor(self.dbias_part)),
        }
    }
}

impl<R: CubeRuntime> Prepared<R> {
    /// z's gradient tensor, or a placeholder without z.
    fn empty_dz(&self) -> CubeTensor<R> {
        if self.z.is_some() {
            self.empty_sequence(self.dtype)
        } else {
            self.unused_activation()
        }
    }

    /// Launches the one-thread-per-channel backward (`backward.rs`), with the adjoint pass first
    /// where L is split.
    fn launch_backward(
        &self,
        config: &KernelConfig,
        dy: CubeTensor<R>,
        ckpt: CubeTensor<R>,
        dtp: CubeTensor<R>,
    ) -> BackwardParts<R> {
        let [batch, dim, n_state, len] = self.dims;
        let block = config.block;
        let (blocks, chunks) = self.grid(config);
        let chunk = self.chunk(config);
        // Warp sums only on channels-last views: there they are the faster, on contiguous inputs
        // the shared-memory sums are.
        let plane = config.plane_sums && self.channels_last && plane_is_cube(&self.u.client, block);
        let tile = config.backward_tile(n_state, plane);
        let per_segment = self.chunks_per_segment(config);
        let segments = chunks.div_ceil(per_segment);
        // Several segments: each starts from the adjoint state its right neighbours hand it.
        let adj = (segments > 1).then(|| {
            let carry = self.empty(vec![batch, segments, dim, n_state]);
            let dt_sum = self.empty(vec![batch, segments, dim]);
            with_activation!(self.dtype, E => scan_adjoint_kernel::launch::<E, R>(
                &self.u.client,
                CubeCount::Static(blocks as u32, batch as u32, segments as u32),
                CubeDim::new_1d(block as u32),
                dtp.clone().into_tensor_arg(),
                self.z_arg(),
                self.a.clone().into_tensor_arg(),
                self.c.clone().into_tensor_arg(),
                dy.clone().into_tensor_arg(),
                carry.clone().into_tensor_arg(),
                dt_sum.clone().into_tensor_arg(),
                dim as u32,
                len as u32,
                (per_segment * chunk) as u32,
                n_state,
                block,
                config.forward_tile,
                self.z.is_some(),
                self.channels_last,
            ));
            self.combine(&carry, &dt_sum, segments, true);
            carry
        });

        let scratch = self.empty(vec![batch * segments * blocks * chunk.div_ceil(tile) * n_state * block]);
        let part_shape = if self.channels_last {
            vec![batch, blocks, len, n_state]
        } else {
            vec![batch, blocks, n_state, len]
        };
        let parts = batch * segments;
        let out = BackwardParts {
            du: self.empty_sequence(self.dtype),
            ddelta: self.empty_sequence(self.dtype),
            dz: self.empty_dz(),
            db_part: self.empty(part_shape.clone()),
            dc_part: self.empty(part_shape),
            parts_channels_last: self.channels_last,
            da_part: self.empty(vec![dim, n_state, parts]),
            dd_part: self.empty(vec![dim, parts]),
            dbias_part: self.empty(vec![dim, parts]),
        };
        let no_adj = self.empty(vec![1]);
        with_activation!(self.dtype, E => scan_backward_kernel::launch::<E, R>(
            &self.u.client,
            CubeCount::Static(blocks as u32, batch as u32, segments as u32),
            CubeDim::new_1d(block as u32),
            self.u.clone().into_tensor_arg(),
            self.delta.clone().into_tensor_arg(),
            self.z_arg(),
            self.a.clone().into_tensor_arg(),
            self.b.clone().into_tensor_arg(),
            self.c.clone().into_tensor_arg(),
            self.d.clone().into_tensor_arg(),
            self.delta_bias.clone().into_tensor_arg(),
            dy.into_tensor_arg(),
            dtp.into_tensor_arg(),
            ckpt.into_tensor_arg(),
            adj.as_ref().unwrap_or(&no_adj).clone().into_tensor_arg(),
            scratch.into_tensor_arg(),
            out.du.clone().into_tensor_arg(),
            out.ddelta.clone().into_tensor_arg(),
            out.dz.clone().into_tensor_arg(),
            out.db_part.clone().into_tensor_arg(),
            out.dc_part.clone().into_tensor_arg(),
            out.da_part.clone().into_tensor_arg(),
            out.dd_part.clone().into_tensor_arg(),
            out.dbias_part.clone().into_tensor_arg(),
            dim as u32,
            len as u32,
            chunk as u32,
            per_segment as u32,
            n_state,
            block,
            tile,
            self.z.is_some(),
            self.softplus,
            adj.is_some(),
            self.channels_last,
            plane,
        ));
        out
    }

    /// Launches the lanes backward (`backward_lanes.rs`) with runs of `items` positions.
    fn launch_backward_lanes(
        &self,
        config: &KernelConfig,
        items: usize,
        dy: CubeTensor<R>,
        ckpt: CubeTensor<R>,
        dtp: CubeTensor<R>,
    ) -> BackwardParts<R> {
        let [batch, dim, n_state, len] = self.dims;
        let channels = config.lane_channels;
        let blocks = dim.div_ceil(channels);
        let out = BackwardParts {
            du: self.empty_sequence(self.dtype),
            ddelta: self.empty_sequence(self.dtype),
            dz: self.empty_dz(),
            db_part: self.empty(vec![batch, blocks, n_state, len]),
            dc_part: self.empty(vec![batch, blocks, n_state, len]),
            parts_channels_last: false,
            da_part: self.empty(vec![dim, n_state, batch]),
            dd_part: self.empty(vec![dim, batch]),
            dbias_part: self.empty(vec![dim, batch]),
        };
        with_activation!(self.dtype, E => scan_backward_lanes_kernel::launch::<E, R>(
            &self.u.client,
            CubeCount::Static(blocks as u32, batch as u32, 1),
            CubeDim::new_2d(LANES as u32, channels as u32),
            self.u.clone().into_tensor_arg(),
            self.delta.clone().into_tensor_arg(),
            self.z_arg(),
            self.a.clone().into_tensor_arg(),
            self.b.clone().into_tensor_arg(),
            self.c.clone().into_tensor_arg(),
            self.d.clone().into_tensor_arg(),
            self.delta_bias.clone().into_tensor_arg(),
            dy.into_tensor_arg(),
            dtp.into_tensor_arg(),
            ckpt.into_tensor_arg(),
            out.du.clone().into_tensor_arg(),
            out.ddelta.clone().into_tensor_arg(),
            out.dz.clone().into_tensor_arg(),
            out.db_part.clone().into_tensor_arg(),
            out.dc_part.clone().into_tensor_arg(),
            out.da_part.clone().into_tensor_arg(),
            out.dd_part.clone().into_tensor_arg(),
            out.dbias_part.clone().into_tensor_arg(),
            dim as u32,
            len as u32,
            n_state,
            channels,
            items,
            self.z.is_some(),
            self.softplus,
            self.channels_last,
            self.plane_lanes(),
        ));
        out
    }
}
