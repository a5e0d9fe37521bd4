//! Plain loops for the CPU backend, where burn's tensor ops would each cost an allocation and a
//! pass over memory: the selective scan ([`scan`]), and the forwards of the row attention
//! ([`row_attention`]) and of the causal convolution ([`causal_conv`]).

use std::iter::Sum;
use std::ops::{AddAssign, MulAssign};

use burn::tensor::{Element, FloatDType, Tensor, backend::Backend};
use num_traits::Float;

pub mod causal_conv;
pub mod row_attention;
pub mod scan;

/// The precision a loop runs in: float64 for float64 tensors (the tests' references), float32
/// for every other type (the precision of the GPU kernels).
pub trait Real: Float + AddAssign + MulAssign + Element + Sum + Send + Sync {
    /// The tensor type that holds this precision.
    const DTYPE: FloatDType;

    /// e^x. In float32 plain arithmetic rather than libm's `expf`: a function call per element
    /// keeps a loop scalar, where the arithmetic lets the compiler vectorise it.
    fn exp(x: Self) -> Self;

    /// softplus(x) = ln(1 + e^x), as max(x, 0) + ln(1 + e^-|x|). In float32 plain arithmetic too:
    /// libm's `log1pf`, a call per element, would stay scalar beside the vectorised decays.
    fn softplus(x: Self) -> Self;
}

impl Real for f64 {
    const DTYPE: FloatDType = FloatDType::F64;

    fn exp(x: f64) -> f64 {
        x.exp()
    }

    fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }
}

impl Real for f32 {
    const DTYPE: FloatDType = FloatDType::F32;

    /// e^x = 2^k e^r with k = round(x / ln 2) and |r| <= ln 2 / 2, e^r by its Taylor series to
    /// r^7 (truncation below 2e-8 relative, under float32's half ulp). x is clamped to
    /// [-87, 88], where 2^k stays a normal float32: below, e^-87 ~ 1.6e-38 stands for zero; above,
    /// float32 would overflow. No float-to-integer cast (Rust's saturates, one element at a time):
    /// adding 1.5 * 2^23 rounds x / ln 2 to an integer k that lands in the mantissa's low bits,
    /// from which 2^k's exponent field is built.
    #[inline(always)]
    fn exp(x: f32) -> f32 {
        const LN2_HI: f32 = 0.693_145_75;
        const LN2_LO: f32 = 1.428_606_8e-6;
        const ROUND: f32 = 12_582_912.0;
        let x = x.clamp(-87.0, 88.0);
        let shifted = x * std::f32::consts::LOG2_E + ROUND;
        let k = shifted - ROUND;
        let r = (x - k * LN2_HI) - k * LN2_LO;
        let p = 1.0
            + r * (1.0
                + r * (1.0 / 2.0
                    + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
        p * f32::from_bits(shifted.to_bits().wrapping_add(127) << 23)
    }

    /// With e = e^-|x| in (0, 1], ln(1 + e) = 2 atanh(s), s = e / (2 + e) in (0, 1/3], by its
    /// series to s^13 (truncation below 1e-8 relative). Nothing cancels: e's own rounding carries
    /// through as is.
    #[inline(always)]
    fn softplus(x: f32) -> f32 {
        let e = Real::exp(-x.abs());
        let s = e / (2.0 + e);
        let s2 = s * s;
        let series = 1.0
            + s2 * (1.0 / 3.0
                + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
        x.max(0.0) + 2.0 * s * series
    }
}

/// The logistic sigmoid, through [`Real::exp`].
fn sigmoid<F: Real>(x: F) -> F {
    F::one() / (F::one() + Real::exp(-x))
}

/// A tensor's values in row-major order of its shape, in precision `F`. The data takes over the
/// buffer of an array that no one else holds; that of an array shared with the model (a slice of
/// a projection, a view) is copied element by element, a third of CPU scoring's time once. A cast
/// makes an array of its own; where there is nothing to cast, multiplying by one does the same in
/// one vectorised pass.
fn values<B: Backend, F: Real, const D: usize>(t: Tensor<B, D>) -> Vec<F> {
    let own = if t.dtype() == F::DTYPE.into() {
        t.mul_scalar(1.0)
    } else {
        t.cast(F::DTYPE)
    };
    own.into_data().into_vec().expect("float tensor")
}
