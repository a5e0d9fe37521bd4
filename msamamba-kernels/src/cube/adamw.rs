//! The AdamW step as one CubeCL kernel: one thread per element, reading the parameter, its
//! gradient and its moments and writing the three new ones, in the reference's order of
//! operations (`crate::adamw`).

use burn::tensor::DType;
use burn_cubecl::{BoolElement, CubeRuntime, FloatElement, IntElement};
use cubecl::prelude::*;

use super::launch::{Cube, empty_like, flat_grid, prim, tensor};
use crate::adamw::{AdamWStep, AdamWTensors};

/// Threads per cube.
const THREADS: usize = 256;

/// The step's f32 scalars: β1, 1 - β1, β2, 1 - β2, c1, c2, ε, the decay factor, lr.
#[derive(CubeLaunch, CubeType)]
struct Scalars {
    beta_1: f32,
    factor_1: f32,
    beta_2: f32,
    factor_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    decay: f32,
    lr: f32,
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn adamw_kernel(
    param: &Tensor<f32>,
    grad: &Tensor<f32>,
    moment_1: &Tensor<f32>,
    moment_2: &Tensor<f32>,
    new_param: &mut Tensor<f32>,
    new_moment_1: &mut Tensor<f32>,
    new_moment_2: &mut Tensor<f32>,
    s: Scalars,
    n: u32,
) {
    let i = ((CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) * CUBE_DIM_X + UNIT_POS_X) as usize;
    if i < n as usize {
        let g = grad[i];
        let m = moment_1[i] * s.beta_1 + g * s.factor_1;
        let v = moment_2[i] * s.beta_2 + g * g * s.factor_2;
        let update = (m / s.correction_1) / (f32::sqrt(v / s.correction_2) + s.epsilon);
        new_param[i] = param[i] * s.decay - update * s.lr;
        new_moment_1[i] = m;
        new_moment_2[i] = v;
    }
}

/// Whether the kernel takes the step: f32 and something to step.
pub fn supported<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    state: &AdamWTensors<Cube<R, F, I, BT>>,
) -> bool {
    state.param.dtype() == DType::F32 && state.param.dims()[0] > 0
}

/// One AdamW step on the kernel.
pub fn step<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    state: AdamWTensors<Cube<R, F, I, BT>>,
    grad: burn::tensor::Tensor<Cube<R, F, I, BT>, 1>,
    step: &AdamWStep,
) -> AdamWTensors<Cube<R, F, I, BT>> {
    let n = grad.dims()[0];
    let (param, grad) = (prim(state.param), prim(grad));
    let (moment_1, moment_2) = (prim(state.moment_1), prim(state.moment_2));
    let [new_param, new_moment_1, new_moment_2] = [(); 3].map(|_| empty_like(&param, vec![n]));
    let (correction_1, correction_2) = step.corrections();
    adamw_kernel::launch::<R>(
        &param.client,
        flat_grid(n.div_ceil(THREADS)),
        CubeDim::new_1d(THREADS as u32),
        param.clone().into_tensor_arg(),
        grad.into_tensor_arg(),
        moment_1.into_tensor_arg(),
        moment_2.into_tensor_arg(),
        new_param.clone().into_tensor_arg(),
        new_moment_1.clone().into_tensor_arg(),
        new_moment_2.clone().into_tensor_arg(),
        ScalarsLaunch::new(
            step.beta_1,
            1.0 - step.beta_1,
            step.beta_2,
            1.0 - step.beta_2,
            correction_1,
            correction_2,
            step.epsilon,
            step.decay() as f32,
            step.lr as f32,
        ),
        n as u32,
    );
    AdamWTensors {
        param: tensor(new_param),
        moment_1: tensor(new_moment_1),
        moment_2: tensor(new_moment_2),
    }
}
