//! The linears' column-sum kernel against float64 sums, directly, through burn-fusion and as the
//! gradients of the model's linears inside burn's autodiff; on WGPU (the `wgpu` feature) and on
//! CUDA (`cuda`).

use crate::common::{assert_close_above, rng, values};
use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use msamamba_kernels::RecomputedLinearBackend;
use msamamba_kernels::recomputed_linear::{linear, recomputed_linear};
use rand::Rng;
use rand::rngs::StdRng;

/// (rows, cols): one of each, columns off the warp (33), rows off the cube's 8, more rows than
/// the chunks hold, more columns than one grid row of cubes at 2048 cubes in all, the paper's bias
/// gradient shape scaled down and its weight gradient's batch.
const SHAPES: [[usize; 2]; 8] = [
    [1, 1],
    [1, 33],
    [7, 1],
    [9, 33],
    [20_001, 3],
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

fn random(rng: &mut StdRng, len: usize) -> Vec<f64> {
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
fn column_sums<B: RecomputedLinearBackend>(t: &[f64], [rows, cols]: [usize; 2], transposed: bool) -> Vec<f64> {
    let device = Default::default();
    let tensor = if transposed {
        let mut flipped = vec![0.0; t.len()];
        for r in 0..rows {
            for c in 0..cols {
                flipped[c * rows + r] = t[r * cols + c];
            }
        }
        Tensor::<B, 2>::from_data(TensorData::new(flipped, [cols, rows]), &device).transpose()
    } else {
        Tensor::<B, 2>::from_data(TensorData::new(t.to_vec(), [rows, cols]), &device)
    };
    let sums = B::column_sums(tensor.into_primitive().tensor());
    values(Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(sums)))
}

/// Gradients of sum(y · dy) through the kept or the recomputed linear, x [2, 3, 5, k].
fn linear_grads<B: RecomputedLinearBackend>(
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
