//! The linears' column-sum kernel and products against float64, directly, through burn-fusion and
//! as the gradients of the model's linears inside burn's autodiff; on WGPU (the `wgpu` feature)
//! and on CUDA (`cuda`).

use crate::common::{assert_close_above, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use msamamba_kernels::RecomputedLinearBackend;
use msamamba_kernels::recomputed_linear::{linear, recomputed_linear};
use rand::Rng;
use rand::rngs::StdRng;

/// (rows, cols): one of each, columns off the warp (33), rows off the cube's 8, more rows than
/// the chunks hold, partials that need a third launch, more columns than one grid row of cubes
/// at 2048 cubes in all, the paper's bias gradient shape scaled down and its weight gradient's
/// batch.
pub(crate) const SHAPES: [[usize; 2]; 9] = [
    [1, 1],
    [1, 33],
    [7, 1],
    [9, 33],
    [20_001, 3],
    [1_100_001, 2],
    [3, 70_000],
    [4099, 128],
    [180, 128 * 33],
];

/// f32 sums of O(1) values against float64, relative to the largest sum or 1.
const TOLERANCE: f64 = 1e-4;

/// Matmul products on CUDA: burn's default matmul takes f32 operands through TF32 tensor cores
/// where the GPU has them (10-bit mantissa: about 5e-4 relative per operand), as PyTorch does
/// with TF32 allowed.
#[cfg(feature = "cuda")]
const TF32_TOLERANCE: f64 = 5e-3;

pub(crate) fn random(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// float64 sums of `t`'s rows.
fn loop_sums(t: &[f64], [rows, cols]: [usize; 2]) -> Vec<f64> {
    let mut sums = vec![0.0; cols];
    for r in 0..rows {
        for (c, sum) in sums.iter_mut().enumerate() {
            *sum += t[r * cols + c];
        }
    }
    sums
}

/// B's column sums of `t` [rows, cols], laid out transposed in memory when `transposed`.
pub(crate) fn column_sums<B: RecomputedLinearBackend>(
    t: &[f64],
    [rows, cols]: [usize; 2],
    transposed: bool,
) -> Vec<f64> {
    let tensor = matrices::<B>(t, [1, rows, cols], transposed).squeeze_dim::<2>(0);
    let sums = B::column_sums(tensor.into_primitive().tensor());
    values(Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(sums)))
}

/// (batch, m, k, n) of the products: one element, sizes off every tile and vector, the model's
/// projections (tokens x 128 -> 512, -> 40, 8 -> 256), a batch of weight-gradient products.
pub(crate) const PRODUCTS: [[usize; 4]; 6] = [
    [1, 1, 1, 1],
    [1, 37, 5, 3],
    [1, 130, 33, 65],
    [1, 1000, 128, 512],
    [1, 777, 256, 40],
    [3, 128, 96, 72],
];

/// float64 `a @ b` of a batch of [m, k] and [k, n] matrices.
fn loop_product(a: &[f64], b: &[f64], [batch, m, k, n]: [usize; 4]) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for p in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out[(p * m + i) * n + j] = (0..k).map(|t| a[(p * m + i) * k + t] * b[(p * k + t) * n + j]).sum();
            }
        }
    }
    out
}

/// A [batch, rows, cols] tensor of `t`, laid out transposed in memory when `transposed`.
fn matrices<B: RecomputedLinearBackend>(t: &[f64], [batch, rows, cols]: [usize; 3], transposed: bool) -> Tensor<B, 3> {
    let device = Default::default();
    if !transposed {
        return Tensor::from_data(TensorData::new(t.to_vec(), [batch, rows, cols]), &device);
    }
    let mut flipped = vec![0.0; t.len()];
    for p in 0..batch {
        for r in 0..rows {
            for c in 0..cols {
                flipped[(p * cols + c) * rows + r] = t[(p * rows + r) * cols + c];
            }
        }
    }
    Tensor::<B, 3>::from_data(TensorData::new(flipped, [batch, cols, rows]), &device).swap_dims(1, 2)
}

/// B's product of `a` and `b`, either laid out transposed in memory (as the linears' gradients
/// hand them: the weight transposed, the input transposed).
pub(crate) fn product<B: RecomputedLinearBackend>(
    a: &[f64],
    b: &[f64],
    [batch, m, k, n]: [usize; 4],
    a_t: bool,
    b_t: bool,
) -> Vec<f64> {
    let (a, b) = (
        matrices::<B>(a, [batch, m, k], a_t),
        matrices::<B>(b, [batch, k, n], b_t),
    );
    let out = if batch == 1 {
        let flat = |t: Tensor<B, 3>| t.squeeze_dim::<2>(0).into_primitive().tensor();
        let out = B::projection_matmul(flat(a), flat(b));
        Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(out)).unsqueeze_dim(0)
    } else {
        let out = B::projection_matmul(a.into_primitive().tensor(), b.into_primitive().tensor());
        Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(out))
    };
    values(out)
}

/// Gradients of sum(y · dy) through the kept or the recomputed linear, x [2, 3, 5, k].
pub(crate) fn linear_grads<B: RecomputedLinearBackend>(
    x: &[f64],
    w: &[f64],
    b: &[f64],
    dy: &[f64],
    [k, n]: [usize; 2],
    recomputed: bool,
) -> Vec<Vec<f64>> {
    let device = Default::default();
    let x = Tensor::<Autodiff<B>, 4>::from_data(TensorData::new(x.to_vec(), [2, 3, 5, k]), &device).require_grad();
    let w = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(w.to_vec(), [k, n]), &device).require_grad();
    let b = Tensor::<Autodiff<B>, 1>::from_data(TensorData::new(b.to_vec(), [n]), &device).require_grad();
    let dy = Tensor::<Autodiff<B>, 4>::from_data(TensorData::new(dy.to_vec(), [2, 3, 5, n]), &device);
    let y = if recomputed {
        recomputed_linear(x.clone(), w.clone(), Some(b.clone()))
    } else {
        linear(x.clone(), w.clone(), Some(b.clone()))
    };
    let grads = (y * dy).sum().backward();
    vec![
        values(x.grad(&grads).expect("x gradient")),
        values(w.grad(&grads).expect("weight gradient")),
        values(b.grad(&grads).expect("bias gradient")),
    ]
}

/// The tests, instantiated per GPU backend (`Gpu`: with fusion, `R`: its runtime).
macro_rules! gpu_tests {
    ($name:ident, $gpu:ty, $runtime:ty, $bool:ty, $matmul_tolerance:expr) => {
        mod $name {
            use super::*;
            type Gpu = $gpu;
            type Cube = burn_cubecl::CubeBackend<$runtime, f32, i32, $bool>;

            #[test]
            fn column_sums_match_float64_sums() {
                let mut rng = rng();
                for dims in SHAPES {
                    let t = random(&mut rng, dims[0] * dims[1]);
                    let want = loop_sums(&t, dims);
                    for transposed in [false, true] {
                        let what = format!("{dims:?} transposed={transposed}");
                        let got = column_sums::<Cube>(&t, dims, transposed);
                        assert_close_above(&format!("kernel {what}"), &got, &want, TOLERANCE, 1.0);
                        let got = column_sums::<Gpu>(&t, dims, transposed);
                        assert_close_above(&format!("fusion {what}"), &got, &want, TOLERANCE, 1.0);
                    }
                }
            }

            #[test]
            fn products_match_float64() {
                let mut rng = rng();
                for dims in PRODUCTS {
                    let [batch, m, k, n] = dims;
                    let (a, b) = (random(&mut rng, batch * m * k), random(&mut rng, batch * k * n));
                    let want = loop_product(&a, &b, dims);
                    for (a_t, b_t) in [(false, false), (false, true), (true, false)] {
                        let what = format!("{dims:?} a transposed={a_t} b transposed={b_t}");
                        let got = product::<Cube>(&a, &b, dims, a_t, b_t);
                        assert_close_above(&format!("kernel {what}"), &got, &want, $matmul_tolerance, 1.0);
                        let got = product::<Gpu>(&a, &b, dims, a_t, b_t);
                        assert_close_above(&format!("fusion {what}"), &got, &want, $matmul_tolerance, 1.0);
                    }
                }
            }

            #[test]
            fn linear_gradients_on_gpu_match_ndarray() {
                let mut rng = rng();
                for [k, n] in [[1, 1], [7, 33], [16, 40]] {
                    let (x, w, b, dy) = (
                        random(&mut rng, 30 * k),
                        random(&mut rng, k * n),
                        random(&mut rng, n),
                        random(&mut rng, 30 * n),
                    );
                    for recomputed in [false, true] {
                        let got = linear_grads::<Gpu>(&x, &w, &b, &dy, [k, n], recomputed);
                        let want = linear_grads::<NdArray<f64>>(&x, &w, &b, &dy, [k, n], recomputed);
                        let names = [
                            ("dx", $matmul_tolerance),
                            ("dweight", $matmul_tolerance),
                            ("dbias", TOLERANCE),
                        ];
                        for (((name, tolerance), g), w) in names.iter().zip(&got).zip(&want) {
                            let what = format!("{name} k={k} n={n} recomputed={recomputed}");
                            assert_close_above(&what, g, w, *tolerance, 1.0);
                        }
                    }
                }
            }
        }
    };
}

#[cfg(feature = "wgpu")]
gpu_tests!(wgpu, burn::backend::Wgpu, cubecl::wgpu::WgpuRuntime, u32, TOLERANCE);
#[cfg(feature = "cuda")]
gpu_tests!(cuda, burn::backend::Cuda, cubecl::cuda::CudaRuntime, u8, TF32_TOLERANCE);
