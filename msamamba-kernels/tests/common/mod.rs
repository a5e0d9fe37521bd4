//! Shared helpers of the kernel tests: fresh random inputs with printed seeds, row-attention
//! problems buildable on any backend.
#![allow(dead_code)]

use burn::tensor::{DType, Tensor, TensorData, backend::Backend, bf16, f16};
use msamamba_kernels::{CausalConvInput, ResidualNormInput, RowAttentionInput};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Fresh inputs every run; the seed is printed so a failure can be replayed.
pub fn rng() -> StdRng {
    let seed = std::env::var("MSAMAMBA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("MSAMAMBA_TEST_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// The type a kernel test's activations are in (parameters stay f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activations {
    F32,
    F16,
    Bf16,
}

impl Activations {
    pub fn dtype(self) -> DType {
        match self {
            Activations::F32 => DType::F32,
            Activations::F16 => DType::F16,
            Activations::Bf16 => DType::BF16,
        }
    }

    /// `values` as this type holds them (f32's rounding is left to the tolerance, as before).
    pub fn round(self, values: &[f64]) -> Vec<f64> {
        values.iter().map(|&v| rounded(self.dtype(), v)).collect()
    }

    /// The relative error allowed: `f32` for f32; for a half type, its unit roundoff (the
    /// kernels compute in f32 and round each output once) times 8, room for the inputs of a
    /// backward that are themselves rounded outputs (the attention's saved output).
    pub fn tolerance(self, f32: f64) -> f64 {
        match self {
            Activations::F32 => f32,
            Activations::F16 => 8.0 * 2f64.powi(-11),
            Activations::Bf16 => 8.0 * 2f64.powi(-8),
        }
    }
}

/// `v` as a value of `dtype` holds it: rounded to f16 or bf16, anything else as it is.
pub fn rounded(dtype: DType, v: f64) -> f64 {
    match dtype {
        DType::F16 => f16::from_f64(v).to_f64(),
        DType::BF16 => bf16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// Which rows a row-attention problem masks as keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// Every row attended to.
    None,
    /// About half the rows masked, row 0 (the target) never.
    Random,
    /// Every row but row 0 masked.
    AllButFirst,
    /// Every row masked (the weights fall back to uniform).
    All,
}

/// One row-attention problem as flat float64 buffers: q, k, v, dout [b, m, l, d], keep [b, m].
#[derive(Clone, Debug)]
pub struct AttentionProblem {
    /// b, m, l, d
    pub dims: [usize; 4],
    pub n_heads: usize,
    pub q: Vec<f64>,
    pub k: Vec<f64>,
    pub v: Vec<f64>,
    pub keep: Vec<f64>,
    pub dout: Vec<f64>,
}

impl AttentionProblem {
    pub fn random(rng: &mut StdRng, dims: [usize; 4], n_heads: usize, mask: Mask) -> Self {
        let [b, m, l, d] = dims;
        let mut uniform = |k: usize, lo: f64, hi: f64| (0..k).map(|_| rng.random_range(lo..hi)).collect::<Vec<f64>>();
        let (q, k, v, dout) = (
            uniform(b * m * l * d, -2.0, 2.0),
            uniform(b * m * l * d, -2.0, 2.0),
            uniform(b * m * l * d, -2.0, 2.0),
            uniform(b * m * l * d, -1.0, 1.0),
        );
        let coin = uniform(b * m, 0.0, 1.0);
        let keep = (0..b * m)
            .map(|i| {
                let first = i % m == 0;
                let kept = match mask {
                    Mask::None => true,
                    Mask::Random => first || coin[i] < 0.5,
                    Mask::AllButFirst => first,
                    Mask::All => false,
                };
                if kept { 1.0 } else { 0.0 }
            })
            .collect();
        AttentionProblem {
            dims,
            n_heads,
            q,
            k,
            v,
            keep,
            dout,
        }
    }

    fn t4<B: Backend>(&self, values: &[f64], device: &B::Device) -> Tensor<B, 4> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), self.dims).convert::<B::FloatElem>(),
            device,
        )
    }

    pub fn input<B: Backend>(&self, device: &B::Device) -> RowAttentionInput<B> {
        let [b, m, _, _] = self.dims;
        let parts = [&self.q, &self.k, &self.v].map(|t| self.t4::<B>(t, device));
        RowAttentionInput {
            qkv: Tensor::cat(parts.to_vec(), 3),
            key_keep: Tensor::from_data(
                TensorData::new(self.keep.clone(), [b, m]).convert::<B::FloatElem>(),
                device,
            ),
            n_heads: self.n_heads,
        }
    }

    pub fn dout<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        self.t4(&self.dout, device)
    }

    /// The problem with q, k, v and dout as `a` holds them.
    pub fn rounded(&self, a: Activations) -> Self {
        AttentionProblem {
            q: a.round(&self.q),
            k: a.round(&self.k),
            v: a.round(&self.v),
            dout: a.round(&self.dout),
            ..self.clone()
        }
    }
}

/// One residual RMSNorm problem as float64 buffers, buildable on any backend.
#[derive(Clone, Debug)]
pub struct NormProblem {
    /// rows, width
    pub dims: [usize; 2],
    pub x: Vec<f64>,
    pub residual: Vec<f64>,
    pub gamma: Vec<f64>,
    pub dout: Vec<f64>,
    pub epsilon: f64,
}

impl NormProblem {
    pub fn random(rng: &mut StdRng, [rows, width]: [usize; 2]) -> Self {
        let mut uniform = |k: usize, lo: f64, hi: f64| (0..k).map(|_| rng.random_range(lo..hi)).collect::<Vec<f64>>();
        NormProblem {
            dims: [rows, width],
            x: uniform(rows * width, -2.0, 2.0),
            residual: uniform(rows * width, -2.0, 2.0),
            gamma: uniform(width, -1.5, 1.5),
            dout: uniform(rows * width, -1.0, 1.0),
            // burn's RmsNorm default.
            epsilon: 1e-5,
        }
    }

    fn t2<B: Backend>(&self, values: &[f64], device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), self.dims).convert::<B::FloatElem>(),
            device,
        )
    }

    pub fn input<B: Backend>(&self, device: &B::Device) -> ResidualNormInput<B> {
        ResidualNormInput {
            x: self.t2(&self.x, device),
            residual: self.t2(&self.residual, device),
            gamma: Tensor::from_data(
                TensorData::new(self.gamma.clone(), [self.dims[1]]).convert::<B::FloatElem>(),
                device,
            ),
            epsilon: self.epsilon,
        }
    }

    pub fn dout<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        self.t2(&self.dout, device)
    }

    /// The problem with x, the residual and dout as `a` holds them.
    pub fn rounded(&self, a: Activations) -> Self {
        NormProblem {
            x: a.round(&self.x),
            residual: a.round(&self.residual),
            dout: a.round(&self.dout),
            ..self.clone()
        }
    }
}

/// One causal-convolution problem as float64 buffers, buildable on any backend.
#[derive(Clone, Debug)]
pub struct ConvProblem {
    /// rows, positions, channels, taps
    pub dims: [usize; 4],
    /// [r, l, e]
    pub x: Vec<f64>,
    /// [e, k]
    pub weight: Vec<f64>,
    pub bias: Vec<f64>,
    pub dy: Vec<f64>,
    pub silu: bool,
}

impl ConvProblem {
    pub fn random(rng: &mut StdRng, [rows, len, channels, taps]: [usize; 4], silu: bool) -> Self {
        let mut uniform = |k: usize, lo: f64, hi: f64| (0..k).map(|_| rng.random_range(lo..hi)).collect::<Vec<f64>>();
        ConvProblem {
            dims: [rows, len, channels, taps],
            x: uniform(rows * len * channels, -2.0, 2.0),
            weight: uniform(channels * taps, -1.0, 1.0),
            bias: uniform(channels, -1.0, 1.0),
            dy: uniform(rows * len * channels, -1.0, 1.0),
            silu,
        }
    }

    fn t<B: Backend, const D: usize>(values: &[f64], shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), shape).convert::<B::FloatElem>(),
            device,
        )
    }

    pub fn input<B: Backend>(&self, device: &B::Device) -> CausalConvInput<B> {
        let [rows, len, channels, taps] = self.dims;
        CausalConvInput {
            x: Self::t(&self.x, [rows, len, channels], device),
            weight: Self::t(&self.weight, [channels, taps], device),
            bias: Self::t(&self.bias, [channels], device),
            silu: self.silu,
        }
    }

    pub fn dy<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3> {
        let [rows, len, channels, _] = self.dims;
        Self::t(&self.dy, [rows, len, channels], device)
    }

    /// The problem with x and dy as `a` holds them.
    pub fn rounded(&self, a: Activations) -> Self {
        ConvProblem {
            x: a.round(&self.x),
            dy: a.round(&self.dy),
            ..self.clone()
        }
    }
}

/// A tensor's values as float64.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().expect("float data")
}

/// Largest absolute difference over the largest absolute wanted value, or over `floor` when that
/// is larger (a gradient that cancels to ~0 in float64 is only ~1e-7 in float32); asserts every
/// value is finite.
pub fn relative_error(what: &str, got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite value");
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    got.iter().zip(want).fold(0.0f64, |m, (g, w)| m.max((g - w).abs())) / scale
}

/// Asserts the relative error of `got` against `want` (floor 1e-12) is below `tolerance`.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tolerance: f64) {
    assert_close_above(what, got, want, tolerance, 1e-12);
}

/// Asserts the relative error of `got` against `want`, with a `floor` on the scale, is below
/// `tolerance`.
pub fn assert_close_above(what: &str, got: &[f64], want: &[f64], tolerance: f64, floor: f64) {
    let err = relative_error(what, got, want, floor);
    assert!(
        err < tolerance,
        "{what}: relative error {err:e} (tolerance {tolerance:e})"
    );
}
