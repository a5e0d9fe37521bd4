//! The CubeCL kernels against the tensor-op reference (on NdArray): forward, every gradient, and
//! the scan inside burn's autodiff; on WGPU (the `wgpu` feature) and on CUDA (`cuda`); with f32
//! activations, and with f16 (and on CUDA bf16) activations and f32 parameters.

use crate::common::{rng, rounded};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};
use msamamba_kernels::cube::{self, KernelConfig, LaneBackward};
use msamamba_kernels::{ScanGrads, SelectiveScanInput, reference, selective_scan};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// One scan problem as flat f32 buffers, buildable on any backend.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    dims: [usize; 4], // b, d, n, l
    u: Vec<f32>,
    delta: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    d: Vec<f32>,
    z: Option<Vec<f32>>,
    delta_bias: Vec<f32>,
    softplus: bool,
    dy: Vec<f32>,
    /// The activations' (u, delta, B, C, z) and dy's element type where not the backend's
    /// default float: f16 or bf16, the values above rounded to it.
    half: Option<DType>,
}

impl Problem {
    pub(crate) fn random(rng: &mut StdRng, [bs, d, n, l]: [usize; 4], gated: bool, softplus: bool) -> Self {
        let mut uniform = |k: usize, lo: f32, hi: f32| (0..k).map(|_| rng.random_range(lo..hi)).collect::<Vec<f32>>();
        let u = uniform(bs * d * l, -2.0, 2.0);
        let b = uniform(bs * n * l, -2.0, 2.0);
        let c = uniform(bs * n * l, -2.0, 2.0);
        let dskip = uniform(d, -2.0, 2.0);
        let z = uniform(bs * d * l, -2.0, 2.0);
        let dy = uniform(bs * d * l, -1.0, 1.0);
        // Without softplus, delta must already be a positive step size.
        let (delta, delta_bias) = if softplus {
            (uniform(bs * d * l, -3.0, 1.0), uniform(d, -1.0, 1.0))
        } else {
            (uniform(bs * d * l, 0.01, 0.5), uniform(d, 0.0, 0.1))
        };
        let a = uniform(d * n, -4.0, -0.2);
        Problem {
            dims: [bs, d, n, l],
            u,
            delta,
            a,
            b,
            c,
            d: dskip,
            z: gated.then_some(z),
            delta_bias,
            softplus,
            dy,
            half: None,
        }
    }

    /// The problem with f16 or bf16 activations and dy, their values rounded to `dtype` (so that
    /// the reference sees what the kernels see), the parameters f32.
    fn in_half(&self, dtype: DType) -> Self {
        assert!(
            matches!(dtype, DType::F16 | DType::BF16),
            "not a half-precision type: {dtype:?}"
        );
        let round = |v: &Vec<f32>| -> Vec<f32> { v.iter().map(|&x| rounded(dtype, x.into()) as f32).collect() };
        Problem {
            u: round(&self.u),
            delta: round(&self.delta),
            b: round(&self.b),
            c: round(&self.c),
            z: self.z.as_ref().map(round),
            dy: round(&self.dy),
            half: Some(dtype),
            ..self.clone()
        }
    }

    /// Relative error the rounding of outputs to the activations' type adds: twice its unit
    /// roundoff (each value is rounded once, from f32, after the kernels' f32 arithmetic).
    fn output_rounding(&self) -> f64 {
        match self.half {
            Some(DType::F16) => 2.0 * 2f64.powi(-11),
            Some(DType::BF16) => 2.0 * 2f64.powi(-8),
            _ => 0.0,
        }
    }

    /// [`Problem::output_rounding`] for the gradient `name` (of [`named`]): none for the
    /// parameters', which stay f32.
    fn rounding_of(&self, name: &str) -> f64 {
        if ["dA", "dD", "d delta_bias"].contains(&name) {
            0.0
        } else {
            self.output_rounding()
        }
    }

    /// Every value times (1 + e) with e uniform in ±`relative` (a fixed stream: the problem is
    /// random already).
    fn perturbed(&self, relative: f32) -> Self {
        let mut rng = StdRng::seed_from_u64(0);
        let mut nudge = |v: &Vec<f32>| {
            v.iter()
                .map(|x| x * (1.0 + rng.random_range(-relative..relative)))
                .collect()
        };
        Problem {
            u: nudge(&self.u),
            delta: nudge(&self.delta),
            a: nudge(&self.a),
            b: nudge(&self.b),
            c: nudge(&self.c),
            d: nudge(&self.d),
            z: self.z.as_ref().map(&mut nudge),
            delta_bias: nudge(&self.delta_bias),
            dy: nudge(&self.dy),
            ..self.clone()
        }
    }

    pub(crate) fn input<B: Backend>(&self, device: &B::Device) -> SelectiveScanInput<B> {
        let [bs, d, n, l] = self.dims;
        let t3 = |v: &Vec<f32>, s: [usize; 3]| activation::<B, 3>(TensorData::new(v.clone(), s), self.half, device);
        SelectiveScanInput {
            u: t3(&self.u, [bs, d, l]),
            delta: t3(&self.delta, [bs, d, l]),
            a: Tensor::from_data(TensorData::new(self.a.clone(), [d, n]), device),
            b: t3(&self.b, [bs, n, l]),
            c: t3(&self.c, [bs, n, l]),
            d: Tensor::from_data(TensorData::new(self.d.clone(), [d]), device),
            z: self.z.as_ref().map(|z| t3(z, [bs, d, l])),
            delta_bias: Tensor::from_data(TensorData::new(self.delta_bias.clone(), [d]), device),
            delta_softplus: self.softplus,
        }
    }

    pub(crate) fn dy<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3> {
        let [bs, d, _, l] = self.dims;
        activation(TensorData::new(self.dy.clone(), [bs, d, l]), self.half, device)
    }

    /// The input as the model hands it over: u and delta channels-last ([b, l, d] seen as
    /// [b, d, l]), z the second half of a channels-last [b, l, 2d], B and C slices of one
    /// channels-last [b, l, 3 + 2n + 5] (as of the x projection), at offsets off any alignment.
    pub(crate) fn input_views<B: Backend>(&self, device: &B::Device) -> SelectiveScanInput<B> {
        let [bs, d, n, l] = self.dims;
        let flat = self.input::<B>(device);
        let half = self.half;
        let bc = channels_last_slices(&[&self.b, &self.c], [bs, n, l], 3, 5, half, device);
        SelectiveScanInput {
            u: channels_last_slices(&[&self.u], [bs, d, l], 0, 0, half, device).remove(0),
            delta: channels_last_slices(&[&self.delta], [bs, d, l], 0, 0, half, device).remove(0),
            b: bc[0].clone(),
            c: bc[1].clone(),
            z: self.z.as_ref().map(|z| {
                let junk = vec![7.0; z.len()];
                channels_last_slices(&[&junk, z], [bs, d, l], 0, 0, half, device).remove(1)
            }),
            ..flat
        }
    }

    pub(crate) fn dy_view<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3> {
        let [bs, d, _, l] = self.dims;
        channels_last_slices(&[&self.dy], [bs, d, l], 0, 0, self.half, device).remove(0)
    }
}

/// An activation tensor of `data`: of the element type `half` where given, else of the backend's
/// default float.
fn activation<B: Backend, const D: usize>(data: TensorData, half: Option<DType>, device: &B::Device) -> Tensor<B, D> {
    match half {
        Some(dtype) => Tensor::from_data(data, (device, dtype)),
        None => Tensor::from_data(data, device),
    }
}

/// `parts`, each [b, rows, l] channels-first, stored side by side in one channels-last
/// [b, l, before + parts · rows + after] tensor (the columns around them hold junk) of the
/// activations' type `half`, and returned as [b, rows, l] views of it.
fn channels_last_slices<B: Backend>(
    parts: &[&Vec<f32>],
    [bs, rows, l]: [usize; 3],
    before: usize,
    after: usize,
    half: Option<DType>,
    device: &B::Device,
) -> Vec<Tensor<B, 3>> {
    let width = before + parts.len() * rows + after;
    let mut buffer = vec![1e3f32; bs * l * width];
    for (p, part) in parts.iter().enumerate() {
        for b in 0..bs {
            for r in 0..rows {
                for t in 0..l {
                    buffer[(b * l + t) * width + before + p * rows + r] = part[(b * rows + r) * l + t];
                }
            }
        }
    }
    let whole = activation::<B, 3>(TensorData::new(buffer, [bs, l, width]), half, device);
    (0..parts.len())
        .map(|p| whole.clone().narrow(2, before + p * rows, rows).swap_dims(1, 2))
        .collect()
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().expect("float data")
}

/// ‖got − want‖ / ‖want‖.
fn relative_error(got: &[f64], want: &[f64]) -> f64 {
    let err: f64 = got.iter().zip(want).map(|(g, w)| (g - w).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = want.iter().map(|w| w.powi(2)).sum::<f64>().sqrt();
    err / norm.max(1e-12)
}

/// Asserts ‖got − want‖ / ‖want‖ < 1e-4, and that every value is finite.
fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_within(what, got, want, 1e-4);
}

/// Asserts ‖got − want‖ / ‖want‖ < `tolerance`, and that every value is finite.
fn assert_within(what: &str, got: &[f64], want: &[f64], tolerance: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite value");
    let rel = relative_error(got, want);
    assert!(
        rel < tolerance,
        "{what}: relative error {rel:e} (tolerance {tolerance:e})"
    );
}

/// Asserts that the gradients of the activations (u, delta, B, C, z) are of their type
/// `activation` and those of the parameters (A, D, delta_bias) f32.
fn assert_grad_dtypes<B: Backend>(what: &str, grads: &ScanGrads<B>, activation: DType) {
    let mut got = vec![
        ("du", grads.u.dtype(), activation),
        ("ddelta", grads.delta.dtype(), activation),
        ("dA", grads.a.dtype(), DType::F32),
        ("dB", grads.b.dtype(), activation),
        ("dC", grads.c.dtype(), activation),
        ("dD", grads.d.dtype(), DType::F32),
        ("d delta_bias", grads.delta_bias.dtype(), DType::F32),
    ];
    got.extend(grads.z.as_ref().map(|z| ("dz", z.dtype(), activation)));
    for (name, dtype, want) in got {
        assert_eq!(dtype, want, "{what}: {name}'s element type");
    }
}

/// Every gradient of `grads` by name, dz last when there is one.
fn named<B: Backend>(grads: ScanGrads<B>) -> Vec<(&'static str, Vec<f64>)> {
    let mut named = vec![
        ("du", values(grads.u)),
        ("ddelta", values(grads.delta)),
        ("dA", values(grads.a)),
        ("dB", values(grads.b)),
        ("dC", values(grads.c)),
        ("dD", values(grads.d)),
        ("d delta_bias", values(grads.delta_bias)),
    ];
    named.extend(grads.z.map(|z| ("dz", values(z))));
    named
}

/// The reference's output and gradients in float64, each with the tolerance a float32 kernel is
/// held to on it: 1e-4 relative, or ten times how far the float64 result moves when every input
/// moves by one part in a million (float32 rounding of ~16 ulps), where the problem is that ill
/// conditioned. At L = 1 every channel's ddelta is dy·u·(C·B) of one C·B sum over d_state, which
/// can cancel to 1e-4 of its terms; rounding stays proportional to the terms.
struct Oracle {
    y: (Vec<f64>, f64),
    grads: Vec<(&'static str, Vec<f64>, f64)>,
}

impl Oracle {
    fn new(problem: &Problem) -> Self {
        type F64 = NdArray<f64>;
        let cpu = Default::default();
        // In float64 on the values the kernels see: a half-precision problem's are rounded already.
        let problem = &Problem {
            half: None,
            ..problem.clone()
        };
        let nudged = problem.perturbed(1e-6);
        let tolerance = |exact: &[f64], moved: &[f64]| (10.0 * relative_error(moved, exact)).max(1e-4);
        let forward = |p: &Problem| values(reference::forward(in_f64(p.input::<F64>(&cpu))));
        let backward = |p: &Problem| {
            let dy = p.dy::<F64>(&cpu).cast(DType::F64);
            named(reference::backward(in_f64(p.input::<F64>(&cpu)), dy))
        };
        let y = forward(problem);
        let y_tolerance = tolerance(&y, &forward(&nudged));
        let grads = backward(problem)
            .into_iter()
            .zip(backward(&nudged))
            .map(|((name, exact), (_, moved))| {
                let tolerance = tolerance(&exact, &moved);
                (name, exact, tolerance)
            })
            .collect();
        Oracle {
            y: (y, y_tolerance),
            grads,
        }
    }
}

/// `input` with every tensor float64. NdArray's default float type is the device's, whichever
/// NdArray first used it: after an `NdArray<f32>`, an `NdArray<f64>` makes f32 tensors too.
fn in_f64<B: Backend>(input: SelectiveScanInput<B>) -> SelectiveScanInput<B> {
    SelectiveScanInput {
        u: input.u.cast(DType::F64),
        delta: input.delta.cast(DType::F64),
        a: input.a.cast(DType::F64),
        b: input.b.cast(DType::F64),
        c: input.c.cast(DType::F64),
        d: input.d.cast(DType::F64),
        z: input.z.map(|z| z.cast(DType::F64)),
        delta_bias: input.delta_bias.cast(DType::F64),
        ..input
    }
}

/// (b, d, n, l, chunk): L past one chunk and not a multiple of any tile, channels not a multiple of
/// the block, d_state 1 and 16, L = 1.
pub(crate) const SHAPES: [([usize; 4], usize); 5] = [
    ([2, 5, 16, 100], 32),
    ([1, 40, 1, 77], 32),
    ([3, 33, 16, 300], 128),
    ([1, 3, 4, 1], 32),
    ([2, 64, 16, 64], 64),
];

/// (b, d, n, l, chunk): many chunks, L not a multiple of the chunk, and chunk boundaries off the
/// forward (32) and backward (4 or 8) tiles, down to chunks shorter than a tile.
pub(crate) const SPLIT_SHAPES: [([usize; 4], usize); 4] = [
    ([2, 40, 16, 250], 36),
    ([1, 33, 4, 97], 20),
    ([3, 5, 16, 300], 70),
    ([1, 3, 16, 10], 3),
];

/// Kernel settings under test: (`split_below`, `split_cubes`, `lane_channels`, `lane_items`).
pub(crate) type Setting = (usize, usize, usize, usize);

/// L never split, on the lanes kernels (4 channels of runs of 4: the CPU Vulkan driver's 32 KiB of
/// shared memory do not hold the default 8) and on the one-thread-per-channel kernels; L always
/// split (when it spans chunks), into one backward segment per chunk; and into backward segments
/// of several chunks.
pub(crate) const SETTINGS: [Setting; 4] = [
    (0, 4096, 4, 4),
    (0, 4096, 0, 4),
    (usize::MAX, usize::MAX, 4, 4),
    (usize::MAX, 8, 4, 4),
];

/// The kernel config of a chunk length and a setting, the lanes backward on where it can run.
pub(crate) fn setting_config(
    chunk: usize,
    (split_below, split_cubes, lane_channels, lane_items): Setting,
) -> KernelConfig {
    KernelConfig {
        chunk,
        split_below,
        split_cubes,
        lane_channels,
        lane_items,
        lane_backward: LaneBackward::Always,
        ..Default::default()
    }
}

/// How the kernels are handed their sequences.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Contiguous [b, d, l] and [b, n, l] tensors.
    ChannelsFirst,
    /// Views of channels-last tensors, as the model passes them (`Problem::input_views`).
    ModelViews,
    /// The model's views with a contiguous channels-first dy: the launch copies dy into u's
    /// layout.
    ViewsWithDyFirst,
    /// Contiguous channels-first inputs with a channels-last view for dy.
    FirstWithDyView,
}

/// Checks the forward and every gradient under each of `settings`.
fn check_problem<R, BT>(problem: &Problem, chunk: usize, settings: &[Setting])
where
    R: burn_cubecl::CubeRuntime,
    BT: burn_cubecl::BoolElement,
{
    check_problem_in::<R, BT>(problem, chunk, settings, Layout::ChannelsFirst);
}

/// [`check_problem`] with the inputs laid out as `layout` says.
fn check_problem_in<R, BT>(problem: &Problem, chunk: usize, settings: &[Setting], layout: Layout)
where
    R: burn_cubecl::CubeRuntime,
    BT: burn_cubecl::BoolElement,
{
    type G<R, BT> = burn_cubecl::CubeBackend<R, f32, i32, BT>;
    let gpu = Default::default();
    let oracle = Oracle::new(problem);
    let rounding = problem.output_rounding();
    let dtype = problem.half.unwrap_or(DType::F32);
    for (i, &setting) in settings.iter().enumerate() {
        let (split_below, split_cubes, lane_channels, lane_items) = setting;
        let config = setting_config(chunk, setting);
        let label = format!(
            "{:?} {dtype:?} {layout:?} z={} softplus={} chunk={chunk} split_below={split_below} \
             split_cubes={split_cubes} lanes={lane_channels}x{lane_items}",
            problem.dims,
            problem.z.is_some(),
            problem.softplus
        );

        let (input, dy) = match layout {
            Layout::ChannelsFirst => (problem.input::<G<R, BT>>(&gpu), problem.dy::<G<R, BT>>(&gpu)),
            Layout::ModelViews => (problem.input_views::<G<R, BT>>(&gpu), problem.dy_view::<G<R, BT>>(&gpu)),
            Layout::ViewsWithDyFirst => (problem.input_views::<G<R, BT>>(&gpu), problem.dy::<G<R, BT>>(&gpu)),
            Layout::FirstWithDyView => (problem.input::<G<R, BT>>(&gpu), problem.dy_view::<G<R, BT>>(&gpu)),
        };
        // Settings of up to 4 lane channels run the lanes forward (when it saves nothing) wherever
        // L is whole (every device under test has the shared memory for 4), and the lanes
        // backward, with the saving forward on lanes too, where a chunk (at most L) is whole runs
        // of 32 lanes, of up to 8 positions.
        if split_below == 0 && lane_channels > 0 {
            let plan = cube::plan(input.clone(), &config);
            assert!(plan.lanes && !plan.split, "{label}: {plan:?}");
            let chunk = chunk.min(problem.dims[3]);
            assert_eq!(
                plan.lane_backward,
                chunk.is_multiple_of(32) && chunk <= 256,
                "{label}: {plan:?}"
            );
            assert_eq!(plan.lane_saving, plan.lane_backward, "{label}: {plan:?}");
        }
        assert!(cube::supported(&input, &config), "{label}: the kernels take it");
        let saved = cube::forward_saving(input.clone(), &config);
        assert_eq!(saved.y.dtype(), dtype, "{label}: y's element type");
        assert_within(
            &format!("y {label}"),
            &values(saved.y),
            &oracle.y.0,
            oracle.y.1 + rounding,
        );
        let checkpoints = saved.checkpoints.as_ref().expect("one launch saves its checkpoints");
        assert_eq!(
            (checkpoints.states.dtype(), checkpoints.delta.dtype()),
            (DType::F32, DType::F32),
            "{label}: the checkpoints' element types"
        );
        // Where L is not split or the lanes forward may run, also the forward that saves none (a
        // pass of its own).
        if split_below == 0 || lane_channels > 0 {
            let y = cube::forward(input.clone(), &config);
            assert_eq!(y.dtype(), dtype, "{label}: y's element type, not saving");
            assert_within(
                &format!("y, not saving {label}"),
                &values(y),
                &oracle.y.0,
                oracle.y.1 + rounding,
            );
        }
        // The backward from the forward's checkpoints (training); under the first setting also
        // from checkpoints of its own (when L is split, those are the forward's).
        let mut runs = vec![("saved", saved.checkpoints)];
        if i == 0 {
            runs.push(("recomputed", None));
        }
        for (how, checkpoints) in runs {
            let grads = cube::backward(input.clone(), checkpoints, dy.clone(), &config);
            assert_grad_dtypes(&format!("{how} {label}"), &grads, dtype);
            let got = named(grads);
            assert_eq!(got.len(), oracle.grads.len(), "{label}: dz present on one side only");
            for ((name, got), (_, want, tolerance)) in got.iter().zip(&oracle.grads) {
                let tolerance = tolerance + problem.rounding_of(name);
                assert_within(&format!("{name} {how} {label}"), got, want, tolerance);
            }
        }
    }
}

/// `t`'s gradient in `grads`, once checked to be of `t`'s element type.
fn grad_of<B: AutodiffBackend, const D: usize>(
    name: &'static str,
    t: &Tensor<B, D>,
    grads: &B::Gradients,
) -> (&'static str, Vec<f64>) {
    let grad = t.grad(grads).expect("gradient");
    assert_eq!(grad.dtype(), t.dtype(), "autodiff d{name}: element type");
    (name, values(grad))
}

/// Gradients of a weighted sum of the scan, through burn's autodiff, for every input; each of
/// its input's element type.
pub(crate) fn autodiff_grads<B: msamamba_kernels::SelectiveScanBackend>(
    problem: &Problem,
    device: &B::Device,
) -> Vec<(&'static str, Vec<f64>)> {
    let input = problem.input::<Autodiff<B>>(device);
    let input = SelectiveScanInput {
        u: input.u.require_grad(),
        delta: input.delta.require_grad(),
        a: input.a.require_grad(),
        b: input.b.require_grad(),
        c: input.c.require_grad(),
        d: input.d.require_grad(),
        z: input.z.map(|z| z.require_grad()),
        delta_bias: input.delta_bias.require_grad(),
        delta_softplus: input.delta_softplus,
    };
    let keep = input.clone();
    let loss = (selective_scan(input) * problem.dy::<Autodiff<B>>(device)).sum();
    let grads = loss.backward();
    let mut out = vec![
        grad_of("u", &keep.u, &grads),
        grad_of("delta", &keep.delta, &grads),
        grad_of("a", &keep.a, &grads),
        grad_of("b", &keep.b, &grads),
        grad_of("c", &keep.c, &grads),
        grad_of("d", &keep.d, &grads),
        grad_of("delta_bias", &keep.delta_bias, &grads),
    ];
    if let Some(z) = &keep.z {
        out.push(grad_of("z", z, &grads));
    }
    out
}

/// The tests, instantiated per GPU backend.
macro_rules! gpu_tests {
    ($name:ident, $gpu:ty, $runtime:ty, $bool:ty) => {
        mod $name {
            use super::*;
            type Gpu = $gpu;
            type R = $runtime;
            type BT = $bool;

            #[test]
            fn kernel_matches_reference_with_gate_and_softplus() {
                let mut rng = rng();
                for (dims, chunk) in SHAPES {
                    check_problem::<R, BT>(&Problem::random(&mut rng, dims, true, true), chunk, &SETTINGS);
                }
            }

            #[test]
            fn kernel_matches_reference_without_gate() {
                let mut rng = rng();
                for (dims, chunk) in SHAPES {
                    check_problem::<R, BT>(&Problem::random(&mut rng, dims, false, true), chunk, &SETTINGS);
                }
            }

            #[test]
            fn kernel_matches_reference_without_softplus() {
                let mut rng = rng();
                for (dims, chunk) in SHAPES {
                    check_problem::<R, BT>(&Problem::random(&mut rng, dims, true, false), chunk, &SETTINGS);
                    check_problem::<R, BT>(&Problem::random(&mut rng, dims, false, false), chunk, &SETTINGS);
                }
            }

            #[test]
            fn kernel_matches_reference_with_chunks_off_the_tiles() {
                let mut rng = rng();
                for (dims, chunk) in SPLIT_SHAPES {
                    for (gated, softplus) in [(true, true), (false, false)] {
                        let problem = Problem::random(&mut rng, dims, gated, softplus);
                        check_problem::<R, BT>(&problem, chunk, &SETTINGS);
                        // The lanes forward off its defaults: 3 channels, runs of 3 (odd).
                        check_problem::<R, BT>(&problem, chunk, &[(0, 4096, 3, 3)]);
                    }
                }
            }

            #[test]
            fn kernel_matches_reference_on_the_models_channels_last_views() {
                // Channels off the block, L off the tiles, d_state 1 and 16, chunks off the tiles
                // down to shorter than one; with and without the gate and softplus.
                let mut rng = rng();
                let cases = [
                    (SHAPES[0], true),
                    (SHAPES[1], false),
                    (SPLIT_SHAPES[0], true),
                    (SPLIT_SHAPES[3], false),
                ];
                for ((dims, chunk), gated_softplus) in cases {
                    let problem = Problem::random(&mut rng, dims, gated_softplus, gated_softplus);
                    check_problem_in::<R, BT>(&problem, chunk, &SETTINGS, Layout::ModelViews);
                }
            }

            #[test]
            fn kernel_matches_reference_when_dy_is_laid_out_unlike_u() {
                let mut rng = rng();
                for ((dims, chunk), gated) in [(SHAPES[0], true), (SPLIT_SHAPES[3], false)] {
                    let problem = Problem::random(&mut rng, dims, gated, true);
                    for layout in [Layout::ViewsWithDyFirst, Layout::FirstWithDyView] {
                        check_problem_in::<R, BT>(&problem, chunk, &SETTINGS, layout);
                    }
                }
            }

            #[test]
            fn lanes_kernels_take_the_split_shapes_whose_planes_fill_the_gpu() {
                // 1 030 channels of one batch row: L is split for the one-thread-per-channel
                // kernels, the lanes kernels run it whole; chunks of 64 end inside the lanes
                // forward's tiles of 128 and are the lanes backward's tiles (runs of 2). 8
                // channels per cube (the default) fit every device's shared memory at d_state 4.
                let mut rng = rng();
                let problem = Problem::random(&mut rng, [1, 1030, 4, 300], true, true);
                let settings = [
                    (usize::MAX, usize::MAX, 8, 4),
                    (usize::MAX, usize::MAX, 4, 4),
                    (usize::MAX, usize::MAX, 3, 3),
                ];
                type G<R, BT> = burn_cubecl::CubeBackend<R, f32, i32, BT>;
                for setting in settings {
                    let config = setting_config(64, setting);
                    let plan = cube::plan(problem.input::<G<R, BT>>(&Default::default()), &config);
                    assert!(plan.split && plan.lanes && plan.lane_backward, "{plan:?}");
                }
                // By default the lanes backward takes channels-first inputs, not the model's views.
                let gpu = Default::default();
                let default = KernelConfig::default();
                assert!(cube::plan(problem.input::<G<R, BT>>(&gpu), &default).lane_backward);
                let views = cube::plan(problem.input_views::<G<R, BT>>(&gpu), &default);
                assert!(
                    views.lanes && !views.lane_backward && !views.lane_saving,
                    "{views:?}"
                );
                check_problem::<R, BT>(&problem, 64, &settings);
                // The lanes backward from the one-thread-per-channel saving forward's checkpoints.
                let config = KernelConfig {
                    chunk: 64,
                    split_below: usize::MAX,
                    lane_backward: LaneBackward::Always,
                    lane_saving: false,
                    ..Default::default()
                };
                let input = problem.input::<G<R, BT>>(&gpu);
                let plan = cube::plan(input.clone(), &config);
                assert!(plan.lane_backward && !plan.lane_saving, "{plan:?}");
                let saved = cube::forward_saving(input.clone(), &config).checkpoints;
                let got = named(cube::backward(
                    input,
                    saved,
                    problem.dy::<G<R, BT>>(&gpu),
                    &config,
                ));
                for ((name, got), (_, want, tolerance)) in got.iter().zip(&Oracle::new(&problem).grads) {
                    assert_within(
                        &format!("{name} from the thread forward's checkpoints"),
                        got,
                        want,
                        *tolerance,
                    );
                }
            }

            #[test]
            fn kernel_matches_reference_when_l_outgrows_the_launch_grid() {
                // Chunks of one position would need 70 000 cubes along the grid's limit of 65 535.
                // Split only: on lavapipe an unsplit scan this long came back written only up to
                // position 52 425, where its loops had run about 65 535 iterations in all (a loop
                // limiter, it seems).
                let mut rng = rng();
                let problem = Problem::random(&mut rng, [1, 2, 2, 70_000], true, true);
                check_problem::<R, BT>(
                    &problem,
                    1,
                    &[(usize::MAX, usize::MAX, 4, 4), (usize::MAX, 8192, 4, 4)],
                );
            }

            #[test]
            fn kernel_matches_reference_past_the_grids_batch_rows() {
                // Batch rows run along a grid dimension of at most 65 535 cubes: two launches.
                type G = burn_cubecl::CubeBackend<R, f32, i32, BT>;
                let mut rng = rng();
                let problem = Problem::random(&mut rng, [65_600, 2, 2, 3], true, true);
                let (gpu, cpu) = (Default::default(), Default::default());
                let config = KernelConfig::default();
                let y = cube::forward(problem.input::<G>(&gpu), &config);
                assert_close(
                    "y",
                    &values(y),
                    &values(reference::forward(problem.input::<NdArray>(&cpu))),
                );
                let saved = cube::forward_saving(problem.input::<G>(&gpu), &config);
                assert!(saved.checkpoints.is_none(), "two launches keep no checkpoints");
                let got = cube::backward(problem.input::<G>(&gpu), None, problem.dy::<G>(&gpu), &config);
                let want = reference::backward(problem.input::<NdArray>(&cpu), problem.dy::<NdArray>(&cpu));
                for (name, g, w) in [
                    ("du", got.u, want.u),
                    ("ddelta", got.delta, want.delta),
                    ("dB", got.b, want.b),
                    ("dC", got.c, want.c),
                    ("dz", got.z.expect("gated"), want.z.expect("gated")),
                ] {
                    assert_close(name, &values(g), &values(w));
                }
                // The per-channel gradients sum 65 600 rows, too many for an f32 comparison with
                // the reference's order of summing: each launch's part on its own, added.
                let part = |rows: std::ops::Range<usize>| {
                    let input = problem.input::<G>(&gpu);
                    let narrow = |t: Tensor<G, 3>| t.narrow(0, rows.start, rows.len());
                    let input = SelectiveScanInput {
                        u: narrow(input.u),
                        delta: narrow(input.delta),
                        b: narrow(input.b),
                        c: narrow(input.c),
                        z: input.z.map(narrow),
                        ..input
                    };
                    cube::backward(input, None, narrow(problem.dy::<G>(&gpu)), &config)
                };
                let (first, rest) = (part(0..65_535), part(65_535..65_600));
                assert_close("dA", &values(got.a), &values(first.a + rest.a));
                assert_close("dD", &values(got.d), &values(first.d + rest.d));
                assert_close(
                    "d delta_bias",
                    &values(got.delta_bias),
                    &values(first.delta_bias + rest.delta_bias),
                );
            }

            #[test]
            fn autodiff_on_gpu_matches_autodiff_on_ndarray() {
                let mut rng = rng();
                // L = 200 crosses the default chunk (128); so few channels split L.
                let problem = Problem::random(&mut rng, [2, 48, 16, 200], true, true);
                let got = autodiff_grads::<Gpu>(&problem, &Default::default());
                let want = autodiff_grads::<NdArray>(&problem, &Default::default());
                assert_eq!(got.len(), want.len());
                for ((name, g), (_, w)) in got.iter().zip(&want) {
                    assert_close(&format!("autodiff d{name}"), g, w);
                }
            }
        }
    };
}

/// The tests on half-precision activations (of `$dtype`) and f32 parameters, instantiated per GPU
/// backend and type: the kernels on the f32 tests' shapes and settings (the lanes kernels, L
/// split or not), the model's views, autodiff through burn-fusion, and the reference where the
/// kernels do not take the shape. The reference runs in float64 on the same rounded values, so
/// the tolerances are the f32 kernels' plus the rounding of each output to `$dtype`. `$every`:
/// every shape with and without gate and softplus, as the f32 tests; otherwise (on lavapipe, where
/// each kernel variant takes seconds to compile) the first and third shapes and the first split
/// shape, gated with softplus, which still run every kernel and setting on the half type.
macro_rules! half_tests {
    ($name:ident, $gpu:ty, $runtime:ty, $bool:ty, $dtype:expr, $every:expr) => {
        mod $name {
            use super::*;
            type Gpu = $gpu;
            type R = $runtime;
            type BT = $bool;
            const DTYPE: DType = $dtype;

            /// The cases of `shapes` under test: all, or those `keep` names.
            fn cases(shapes: &[([usize; 4], usize)], keep: &[usize]) -> Vec<(([usize; 4], usize), (bool, bool))> {
                let flags: &[(bool, bool)] = if $every {
                    &[(true, true), (false, false)]
                } else {
                    &[(true, true)]
                };
                shapes
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| $every || keep.contains(i))
                    .flat_map(|(_, &shape)| flags.iter().map(move |&f| (shape, f)))
                    .collect()
            }

            #[test]
            fn kernel_matches_reference() {
                let mut rng = rng();
                for ((dims, chunk), (gated, softplus)) in cases(&SHAPES, &[0, 2]) {
                    let problem = Problem::random(&mut rng, dims, gated, softplus).in_half(DTYPE);
                    check_problem::<R, BT>(&problem, chunk, &SETTINGS);
                }
            }

            #[test]
            fn kernel_matches_reference_with_chunks_off_the_tiles() {
                let mut rng = rng();
                for ((dims, chunk), (gated, softplus)) in cases(&SPLIT_SHAPES, &[0]) {
                    let problem = Problem::random(&mut rng, dims, gated, softplus).in_half(DTYPE);
                    check_problem::<R, BT>(&problem, chunk, &SETTINGS);
                }
            }

            #[test]
            fn kernel_matches_reference_on_the_models_channels_last_views() {
                let mut rng = rng();
                let cases = [
                    (SHAPES[0], true),
                    (SPLIT_SHAPES[0], true),
                    (SPLIT_SHAPES[3], false),
                ];
                for ((dims, chunk), gated_softplus) in cases {
                    let problem = Problem::random(&mut rng, dims, gated_softplus, gated_softplus).in_half(DTYPE);
                    check_problem_in::<R, BT>(&problem, chunk, &SETTINGS, Layout::ModelViews);
                }
            }

            #[test]
            fn autodiff_through_fusion_matches_reference() {
                let mut rng = rng();
                // As the f32 test: L = 200 crosses the default chunk, so few channels split L.
                let problem = Problem::random(&mut rng, [2, 48, 16, 200], true, true).in_half(DTYPE);
                check_through_fusion::<Gpu, R, BT>(&problem, true);
            }

            #[test]
            fn reference_fallback_matches_reference() {
                // 64 states do not fit the backward's shared memory: the cube backend runs the
                // tensor-op reference, on f32 copies of the activations.
                let mut rng = rng();
                let problem = Problem::random(&mut rng, [2, 3, 64, 9], true, true).in_half(DTYPE);
                check_through_fusion::<Gpu, R, BT>(&problem, false);
            }
        }
    };
}

/// The scan of `problem` (of half-precision activations) on `Gpu`, burn's fused backend: forward,
/// and every gradient through burn's autodiff, against the float64 reference; on the kernels or,
/// where not `on_kernels`, on the reference.
fn check_through_fusion<Gpu, R, BT>(problem: &Problem, on_kernels: bool)
where
    Gpu: msamamba_kernels::SelectiveScanBackend,
    R: burn_cubecl::CubeRuntime,
    BT: burn_cubecl::BoolElement,
{
    let dtype = problem.half.expect("a half-precision problem");
    let input = problem.input::<burn_cubecl::CubeBackend<R, f32, i32, BT>>(&Default::default());
    assert_eq!(
        cube::supported(&input, &KernelConfig::default()),
        on_kernels,
        "the kernels take it"
    );
    let gpu = Default::default();
    let input = problem.input::<Gpu>(&gpu);
    assert_eq!(
        input.activation_dtype(),
        Some(dtype),
        "half activations, f32 parameters"
    );
    let oracle = Oracle::new(problem);
    let y = selective_scan(input);
    assert_eq!(y.dtype(), dtype, "y's element type");
    assert_within("y", &values(y), &oracle.y.0, oracle.y.1 + problem.output_rounding());
    let got = autodiff_grads::<Gpu>(problem, &gpu);
    assert_eq!(got.len(), oracle.grads.len());
    for ((name, got), (oracle_name, want, tolerance)) in got.iter().zip(&oracle.grads) {
        let tolerance = tolerance + problem.rounding_of(oracle_name);
        assert_within(&format!("autodiff d{name}"), got, want, tolerance);
    }
}

#[cfg(feature = "wgpu")]
gpu_tests!(wgpu, burn::backend::Wgpu, cubecl::wgpu::WgpuRuntime, u32);
#[cfg(feature = "cuda")]
gpu_tests!(cuda, burn::backend::Cuda, cubecl::cuda::CudaRuntime, u8);
// WGPU compiles no bf16 (WGSL has no such type): f16 only there.
#[cfg(feature = "wgpu")]
half_tests!(
    wgpu_f16,
    burn::backend::Wgpu,
    cubecl::wgpu::WgpuRuntime,
    u32,
    DType::F16,
    false
);
#[cfg(feature = "cuda")]
half_tests!(
    cuda_f16,
    burn::backend::Cuda,
    cubecl::cuda::CudaRuntime,
    u8,
    DType::F16,
    true
);
#[cfg(feature = "cuda")]
half_tests!(
    cuda_bf16,
    burn::backend::Cuda,
    cubecl::cuda::CudaRuntime,
    u8,
    DType::BF16,
    true
);
