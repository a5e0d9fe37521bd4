//! Both CPU implementations of the scan, the tensor-op reference and the loop kernel that the
//! ndarray backend runs, against an independent float64 loop written here: values and gradients.

use crate::common::rng;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use msamamba_kernels::cpu::Real;
use msamamba_kernels::{ScanGrads, SelectiveScanBackend, SelectiveScanInput, reference, selective_scan};
use rand::{Rng, rngs::StdRng};

/// One scan problem in float64, flat row-major buffers.
#[derive(Clone, Debug)]
struct Problem {
    dims: [usize; 4], // b, d, n, l
    u: Vec<f64>,
    delta: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    d: Vec<f64>,
    z: Option<Vec<f64>>,
    delta_bias: Vec<f64>,
    softplus: bool,
}

impl Problem {
    fn random(rng: &mut StdRng, [bs, d, n, l]: [usize; 4], gated: bool, softplus: bool) -> Self {
        let mut normal = |k: usize| (0..k).map(|_| rng.random_range(-2.0..2.0)).collect::<Vec<f64>>();
        let (u, b, c, dskip, z) = (
            normal(bs * d * l),
            normal(bs * n * l),
            normal(bs * n * l),
            normal(d),
            normal(bs * d * l),
        );
        let mut uniform = |k: usize, lo: f64, hi: f64| (0..k).map(|_| rng.random_range(lo..hi)).collect::<Vec<f64>>();
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
        }
    }

    /// The scan as a plain sequential loop, in float64.
    fn scan(&self) -> Vec<f64> {
        self.scan_with_magnitude().0
    }

    /// The scan and, per output, the same loop over absolute values of every term. y can cancel
    /// to near zero while float32 rounding stays proportional to the terms, so errors are
    /// measured against their size, not against |y|.
    fn scan_with_magnitude(&self) -> (Vec<f64>, Vec<f64>) {
        let [bs, dd, nn, ll] = self.dims;
        let mut y = vec![0.0; bs * dd * ll];
        let mut magnitude = vec![0.0; bs * dd * ll];
        for b in 0..bs {
            for d in 0..dd {
                let mut x = vec![0.0; nn];
                let mut x_abs = vec![0.0; nn];
                for t in 0..ll {
                    let i = (b * dd + d) * ll + t;
                    let pre = self.delta[i] + self.delta_bias[d];
                    let dt = if self.softplus { pre.exp().ln_1p() } else { pre };
                    let (mut acc, mut acc_abs) = (0.0, 0.0);
                    for n in 0..nn {
                        let bn = self.b[(b * nn + n) * ll + t];
                        let cn = self.c[(b * nn + n) * ll + t];
                        let decay = (dt * self.a[d * nn + n]).exp();
                        x[n] = decay * x[n] + dt * bn * self.u[i];
                        x_abs[n] = decay * x_abs[n] + (dt * bn * self.u[i]).abs();
                        acc += cn * x[n];
                        acc_abs += cn.abs() * x_abs[n];
                    }
                    let out = acc + self.d[d] * self.u[i];
                    let out_abs = acc_abs + (self.d[d] * self.u[i]).abs();
                    let gate = self.z.as_ref().map_or(1.0, |z| z[i] / (1.0 + (-z[i]).exp()));
                    y[i] = out * gate;
                    magnitude[i] = out_abs * gate.abs();
                }
            }
        }
        (y, magnitude)
    }

    fn input<B: Backend>(&self, device: &B::Device) -> SelectiveScanInput<B> {
        let [bs, d, n, l] = self.dims;
        let t3 = |v: &Vec<f64>, s: [usize; 3]| Tensor::<B, 3>::from_data(TensorData::new(v.clone(), s), device);
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

    /// Mutable views of every input, named, in a fixed order.
    fn fields(&mut self) -> Vec<(&'static str, &mut Vec<f64>)> {
        let mut f = vec![
            ("u", &mut self.u),
            ("delta", &mut self.delta),
            ("a", &mut self.a),
            ("b", &mut self.b),
            ("c", &mut self.c),
            ("d", &mut self.d),
            ("delta_bias", &mut self.delta_bias),
        ];
        if let Some(z) = self.z.as_mut() {
            f.push(("z", z));
        }
        f
    }
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().expect("float data")
}

/// max |got - want| / max |want|
fn relative_error(got: &[f64], want: &[f64]) -> f64 {
    relative_to(got, want, want)
}

/// max |got - want| / max |scale|
fn relative_to(got: &[f64], want: &[f64], scale: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = scale.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((g - w).abs())) / scale
}

const SHAPES: [[usize; 4]; 5] = [[1, 1, 1, 1], [2, 3, 1, 5], [1, 4, 16, 1], [2, 5, 4, 17], [3, 7, 16, 33]];

#[test]
fn forward_matches_float64_loop() {
    let mut rng = rng();
    let device = Default::default();
    for dims in SHAPES {
        for (gated, softplus) in [(false, true), (true, true), (true, false), (false, false)] {
            let p = Problem::random(&mut rng, dims, gated, softplus);
            let (want, magnitude) = p.scan_with_magnitude();
            let by_reference = values(reference::forward::<NdArray>(p.input(&device)));
            let by_kernel = values(selective_scan::<NdArray>(p.input(&device)));
            for (name, got) in [("reference", by_reference), ("cpu kernel", by_kernel)] {
                let err = relative_to(&got, &want, &magnitude);
                assert!(
                    err < 1e-5,
                    "{name} {dims:?} gated={gated} softplus={softplus}: relative error {err:e}"
                );
            }
        }
    }
}

/// Gradients in the order of `Problem::fields`.
fn ordered<B: Backend>(grads: ScanGrads<B>) -> Vec<Vec<f64>> {
    let mut all = vec![
        values(grads.u),
        values(grads.delta),
        values(grads.a),
        values(grads.b),
        values(grads.c),
        values(grads.d),
        values(grads.delta_bias),
    ];
    all.extend(grads.z.map(values));
    all
}

#[test]
fn gradients_match_finite_differences() {
    type B = Autodiff<NdArray<f64>>;
    let mut rng = rng();
    let device = Default::default();
    for dims in SHAPES {
        for (gated, softplus) in [(true, true), (false, true), (true, false)] {
            let mut p = Problem::random(&mut rng, dims, gated, softplus);
            let weights: Vec<f64> = (0..p.u.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let loss = |p: &Problem| p.scan().iter().zip(&weights).map(|(y, w)| y * w).sum::<f64>();

            let mut input = p.input::<B>(&device);
            let tracked = [&mut input.u, &mut input.delta, &mut input.b, &mut input.c];
            for t in tracked {
                *t = t.clone().require_grad();
            }
            input.a = input.a.require_grad();
            input.d = input.d.require_grad();
            input.delta_bias = input.delta_bias.require_grad();
            input.z = input.z.map(|z| z.require_grad());
            let keep = input.clone();
            let [bs, d, _, l] = dims;
            let w = Tensor::<B, 3>::from_data(TensorData::new(weights.clone(), [bs, d, l]), &device);
            let grads = (selective_scan(input) * w).sum().backward();
            let mut analytic = vec![
                values(keep.u.grad(&grads).expect("u grad")),
                values(keep.delta.grad(&grads).expect("delta grad")),
                values(keep.a.grad(&grads).expect("a grad")),
                values(keep.b.grad(&grads).expect("b grad")),
                values(keep.c.grad(&grads).expect("c grad")),
                values(keep.d.grad(&grads).expect("d grad")),
                values(keep.delta_bias.grad(&grads).expect("delta_bias grad")),
            ];
            if let Some(z) = &keep.z {
                analytic.push(values(z.grad(&grads).expect("z grad")));
            }
            let w = Tensor::<NdArray<f64>, 3>::from_data(TensorData::new(weights.clone(), [bs, d, l]), &device);
            let by_reference = ordered(reference::backward(p.input::<NdArray<f64>>(&device), w));

            let h = 1e-6;
            let base = p.clone();
            let names: Vec<_> = p.fields().into_iter().map(|(n, v)| (n, v.len())).collect();
            for (k, (name, len)) in names.into_iter().enumerate() {
                let numeric: Vec<f64> = (0..len)
                    .map(|i| {
                        let mut plus = base.clone();
                        plus.fields()[k].1[i] += h;
                        let mut minus = base.clone();
                        minus.fields()[k].1[i] -= h;
                        (loss(&plus) - loss(&minus)) / (2.0 * h)
                    })
                    .collect();
                for (implementation, grads) in [("cpu kernel", &analytic), ("reference", &by_reference)] {
                    let err = relative_error(&grads[k], &numeric);
                    assert!(
                        err < 1e-5,
                        "{implementation} {dims:?} gated={gated} softplus={softplus}: d{name} relative error {err:e}"
                    );
                }
            }
        }
    }
}

/// `t` [b, c, l] as the model hands it to the scan: a transposed view of a position-major
/// [b, l, c] tensor.
fn channels_last<B: Backend>(t: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, c, l] = t.dims();
    let position_major = values(t.swap_dims(1, 2));
    Tensor::<B, 3>::from_data(TensorData::new(position_major, [b, l, c]), &Default::default()).swap_dims(1, 2)
}

/// The CPU kernel on channels-last views against the same values contiguous, exactly.
fn same_on_channels_last_views<B: SelectiveScanBackend>() {
    let mut rng = rng();
    let device = Default::default();
    for dims in SHAPES {
        let p = Problem::random(&mut rng, dims, true, true);
        let [bs, d, _, l] = dims;
        let dy: Vec<f64> = (0..bs * d * l).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dy = Tensor::<B, 3>::from_data(TensorData::new(dy, [bs, d, l]), &device);
        let contiguous = p.input::<B>(&device);
        let mut viewed = contiguous.clone();
        for t in [&mut viewed.u, &mut viewed.delta, &mut viewed.b, &mut viewed.c] {
            *t = channels_last(t.clone());
        }
        viewed.z = viewed.z.map(channels_last);
        assert_eq!(
            values(B::selective_scan(viewed.clone())),
            values(B::selective_scan(contiguous.clone())),
            "{dims:?}: forward"
        );
        let want = ordered(B::selective_scan_backward(contiguous, None, dy.clone()));
        let got = ordered(B::selective_scan_backward(viewed, None, channels_last(dy)));
        assert_eq!(got, want, "{dims:?}: gradients");
    }
}

#[test]
fn cpu_kernel_gives_the_same_on_channels_last_views() {
    same_on_channels_last_views::<NdArray<f64>>();
    same_on_channels_last_views::<NdArray<f32>>();
}

/// Float32 tensors run the recurrence in float32 with its own e^x: values and gradients against
/// the float64 kernel (itself checked against finite differences above), over long rows too,
/// where rounding accumulates along the scan.
#[test]
fn cpu_kernel_in_float32_matches_float64() {
    let mut rng = rng();
    let device = Default::default();
    for dims in SHAPES.into_iter().chain([[2, 6, 16, 300]]) {
        for (gated, softplus) in [(true, true), (false, false)] {
            let p = Problem::random(&mut rng, dims, gated, softplus);
            let (want, magnitude) = p.scan_with_magnitude();
            let got = values(selective_scan::<NdArray<f32>>(p.input(&device)));
            let err = relative_to(&got, &want, &magnitude);
            assert!(
                err < 1e-5,
                "{dims:?} gated={gated} softplus={softplus}: forward relative error {err:e}"
            );

            let [bs, d, _, l] = dims;
            let dy: Vec<f64> = (0..bs * d * l).map(|_| rng.random_range(-1.0..1.0)).collect();
            let want = ordered(NdArray::<f64>::selective_scan_backward(
                p.input(&device),
                None,
                Tensor::from_data(TensorData::new(dy.clone(), [bs, d, l]), &device),
            ));
            let got = ordered(NdArray::<f32>::selective_scan_backward(
                p.input(&device),
                None,
                Tensor::from_data(TensorData::new(dy, [bs, d, l]), &device),
            ));
            for (k, (got, want)) in got.iter().zip(&want).enumerate() {
                let err = relative_error(got, want);
                assert!(
                    err < 1e-4,
                    "{dims:?} gated={gated} softplus={softplus}: gradient {k} relative error {err:e}"
                );
            }
        }
    }
}

/// Asserts `got` (float32) is within `ulps` ulps of its result of `want` (float64, at the same
/// float32 input) from `lo` to `hi`: every hundredth and 100 000 random points.
fn assert_within_ulps(what: &str, ulps: f64, [lo, hi]: [f64; 2], got: fn(f32) -> f32, want: fn(f64) -> f64) {
    let mut rng = rng();
    let grid = (0..).map(|i| lo + i as f64 * 0.01).take_while(|&x| x <= hi);
    let random: Vec<f64> = (0..100_000).map(|_| rng.random_range(lo..hi)).collect();
    for x in grid.chain(random) {
        let (got, want) = (got(x as f32), want(x as f32 as f64));
        let ulp = f64::from(f32::from_bits(got.to_bits() + 1) - got);
        assert!(
            (f64::from(got) - want).abs() <= ulps * ulp,
            "{what}({x}): {got} against {want}"
        );
    }
}

/// The float32 softplus against float64's (e^x's two ulps and the series' rounding), from where
/// it is e^x (down to e^-87, where e^x stops; see the next test) to where it is x.
#[test]
fn float32_softplus_is_within_four_ulps() {
    let want = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    assert_within_ulps("softplus", 4.0, [-87.0, 90.0], <f32 as Real>::softplus, want);
}

/// The float32 e^x against float64's over the whole range it serves (from zero decay to
/// overflow), and the clamp's ends.
#[test]
fn float32_exp_is_within_two_ulps() {
    assert_within_ulps("exp", 2.0, [-87.0, 88.0], <f32 as Real>::exp, f64::exp);
    let tiny = <f32 as Real>::exp(-1e4);
    assert!(tiny > 0.0 && tiny < 2e-38, "e^-10000 stands for zero: {tiny}");
    assert!(<f32 as Real>::exp(1e4).is_finite(), "e^10000 clamps below overflow");
}

#[test]
fn mismatched_shapes_name_the_parameter() {
    let device = Default::default();
    let mut rng = rng();
    let p = Problem::random(&mut rng, [2, 3, 4, 5], true, true);
    let mut input = p.input::<NdArray>(&device);
    input.c = Tensor::zeros([2, 4, 6], &device);
    let err = input.validate().expect_err("c has the wrong length");
    assert_eq!(err.parameter, "c");
    assert!(err.to_string().contains("[2, 4, 6]"), "{err}");
}
