//! The selective scan as plain loops for the CPU backend: one sequence (batch row) per rayon
//! task, in the tensors' own precision (see [`Real`]).
//!
//! The tensor-op reference issues O(L) small tensor ops per call; on ndarray each costs an
//! allocation and a pass over memory, which makes it many times slower than this loop.
//! The backward recomputes each channel's states (L x N floats, per task) instead of keeping
//! [b, d, n, l] between forward and backward.
//!
//! Inputs are read, and outputs written, position-major ([b, l, d] and [b, l, n]): the model
//! hands the scan channels-last views, whose copy in that order is one contiguous pass, where
//! reading them channel-major would walk a transposed view element by element.
//!
//! The decay e^(delta' A) is taken N times per position and channel, by [`Real::exp`]: it is the
//! loop's costliest step, and libm's float64 `exp`, a call per decay, cannot be vectorised.

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

use super::{Real, sigmoid, values};
use crate::{ScanGrads, SelectiveScanInput};

/// A [b, c, l] input as flat values, position-major: [b, l, c].
fn flat<B: Backend, F: Real>(t: Tensor<B, 3>) -> Vec<F> {
    values(t.swap_dims(1, 2))
}

/// Position-major values [b, l, c] as a [b, c, l] tensor (a view of them).
fn tensor<B: Backend, F: Real>(values: Vec<F>, [b, c, l]: [usize; 3], device: &B::Device) -> Tensor<B, 3> {
    Tensor::from_data(TensorData::new(values, [b, l, c]).convert::<B::FloatElem>(), device).swap_dims(1, 2)
}

/// Parameters as flat values.
fn params<B: Backend, F: Real, const D: usize>(t: &Tensor<B, D>) -> Vec<F> {
    t.to_data().convert::<F>().to_vec().expect("float tensor")
}

fn param<B: Backend, F: Real, const D: usize>(values: Vec<F>, shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape).convert::<B::FloatElem>(), device)
}

/// The inputs, flattened once: u, delta, z [b, l, d]; b, c [b, l, n] (position-major).
struct Flat<F> {
    dims: [usize; 4], // b, d, n, l
    u: Vec<F>,
    delta: Vec<F>,
    a: Vec<F>,
    b: Vec<F>,
    c: Vec<F>,
    d: Vec<F>,
    z: Option<Vec<F>>,
    bias: Vec<F>,
    softplus: bool,
}

impl<F: Real> Flat<F> {
    fn new<B: Backend>(input: SelectiveScanInput<B>) -> Self {
        let [batch, dim, len] = input.u.dims();
        let [_, state] = input.a.dims();
        Self {
            dims: [batch, dim, state, len],
            a: params(&input.a),
            d: params(&input.d),
            bias: params(&input.delta_bias),
            u: flat(input.u),
            delta: flat(input.delta),
            b: flat(input.b),
            c: flat(input.c),
            z: input.z.map(flat),
            softplus: input.delta_softplus,
        }
    }

    /// Flat index of (batch row, position, channel) in u, delta and z.
    fn at(&self, bi: usize, t: usize, d: usize) -> usize {
        let [_, dim, _, len] = self.dims;
        (bi * len + t) * dim + d
    }

    /// Flat index of (batch row, position, state) in B and C.
    fn at_state(&self, bi: usize, t: usize, n: usize) -> usize {
        let [_, _, n_state, len] = self.dims;
        (bi * len + t) * n_state + n
    }

    /// delta' at flat index `i` of channel `d`.
    fn step(&self, i: usize, d: usize) -> F {
        self.activate(self.delta[i] + self.bias[d])
    }

    /// delta' from delta + bias.
    fn activate(&self, pre: F) -> F {
        if self.softplus { Real::softplus(pre) } else { pre }
    }

    /// d(delta')/d(delta) at flat index `i` of channel `d`.
    fn step_slope(&self, i: usize, d: usize) -> F {
        if self.softplus {
            sigmoid(self.delta[i] + self.bias[d])
        } else {
            F::one()
        }
    }

    /// The N values of B or C at (batch row, position).
    fn states_at<'a>(&self, values: &'a [F], bi: usize, t: usize) -> &'a [F] {
        let start = self.at_state(bi, t, 0);
        &values[start..start + self.dims[2]]
    }

    /// Runs channel `d` of batch row `bi`, calling `visit(t, state)` after each position.
    fn run_channel(&self, bi: usize, d: usize, state: &mut [F], mut visit: impl FnMut(usize, &[F])) {
        let [_, _, n_state, len] = self.dims;
        let a = &self.a[d * n_state..(d + 1) * n_state];
        state.fill(F::zero());
        for t in 0..len {
            let i = self.at(bi, t, d);
            let dt = self.step(i, d);
            let dt_u = dt * self.u[i];
            for ((x, &a), &b) in state.iter_mut().zip(a).zip(self.states_at(&self.b, bi, t)) {
                *x = Real::exp(dt * a) * *x + dt_u * b;
            }
            visit(t, state);
        }
    }
}

/// Forward: y [b, d, l].
pub fn forward<B: Backend>(input: SelectiveScanInput<B>) -> Tensor<B, 3> {
    match input.u.dtype() {
        DType::F64 => forward_in::<B, f64>(input),
        _ => forward_in::<B, f32>(input),
    }
}

/// All channels advance together, position by position, with the state held [N, d]: every
/// update is then a loop over d contiguous channels, which the compiler vectorises, where one
/// channel at a time ended each position in a sum over its N states, a chain of dependent adds.
fn forward_in<B: Backend, F: Real>(input: SelectiveScanInput<B>) -> Tensor<B, 3> {
    let device = input.u.device();
    let f = Flat::<F>::new(input);
    let [batch, dim, n_state, len] = f.dims;
    // A as [N, d].
    let a: Vec<F> = (0..n_state * dim).map(|k| f.a[(k % dim) * n_state + k / dim]).collect();
    let y: Vec<F> = (0..batch)
        .into_par_iter()
        .flat_map_iter(|bi| {
            let mut out = vec![F::zero(); len * dim];
            let mut state = vec![F::zero(); n_state * dim];
            let (mut dt, mut dt_u) = (vec![F::zero(); dim], vec![F::zero(); dim]);
            for (t, y) in out.chunks_exact_mut(dim).enumerate() {
                let at = f.at(bi, t, 0);
                let (u, delta) = (&f.u[at..at + dim], &f.delta[at..at + dim]);
                let channels = dt.iter_mut().zip(dt_u.iter_mut()).zip(y.iter_mut());
                let inputs = u.iter().zip(delta).zip(f.d.iter().zip(&f.bias));
                for (((dt, dt_u), y), ((&u, &delta), (&skip, &bias))) in channels.zip(inputs) {
                    *dt = f.activate(delta + bias);
                    *dt_u = *dt * u;
                    *y = skip * u;
                }
                let (b, c) = (f.states_at(&f.b, bi, t), f.states_at(&f.c, bi, t));
                for ((x, a), (&b, &c)) in state
                    .chunks_exact_mut(dim)
                    .zip(a.chunks_exact(dim))
                    .zip(b.iter().zip(c))
                {
                    let steps = dt.iter().zip(&dt_u).zip(a);
                    for ((x, y), ((&dt, &dt_u), &a)) in x.iter_mut().zip(y.iter_mut()).zip(steps) {
                        *x = Real::exp(dt * a) * *x + dt_u * b;
                        *y += c * *x;
                    }
                }
                if let Some(z) = &f.z {
                    for (y, &z) in y.iter_mut().zip(&z[at..at + dim]) {
                        *y *= z * sigmoid(z);
                    }
                }
            }
            out
        })
        .collect();
    tensor(y, [batch, dim, len], &device)
}

/// One batch row's share of the gradients: du, ddelta, dz [l, d] and db, dc [l, n]
/// (position-major), the parameters' sums over the row.
struct RowGrads<F> {
    du: Vec<F>,
    ddelta: Vec<F>,
    dz: Vec<F>,
    db: Vec<F>,
    dc: Vec<F>,
    da: Vec<F>,
    dd: Vec<F>,
    dbias: Vec<F>,
}

/// Backward: gradients of `sum(y * dy)`.
pub fn backward<B: Backend>(input: SelectiveScanInput<B>, dy: Tensor<B, 3>) -> ScanGrads<B> {
    match input.u.dtype() {
        DType::F64 => backward_in::<B, f64>(input, dy),
        _ => backward_in::<B, f32>(input, dy),
    }
}

fn backward_in<B: Backend, F: Real>(input: SelectiveScanInput<B>, dy: Tensor<B, 3>) -> ScanGrads<B> {
    let device = input.u.device();
    let f = Flat::<F>::new(input);
    let dy: Vec<F> = flat(dy);
    let [batch, dim, n_state, len] = f.dims;
    let zero = F::zero();
    let rows: Vec<RowGrads<F>> = (0..batch)
        .into_par_iter()
        .map(|bi| {
            let mut g = RowGrads {
                du: vec![zero; len * dim],
                ddelta: vec![zero; len * dim],
                dz: vec![zero; len * dim],
                db: vec![zero; len * n_state],
                dc: vec![zero; len * n_state],
                da: vec![zero; dim * n_state],
                dd: vec![zero; dim],
                dbias: vec![zero; dim],
            };
            let mut states = vec![zero; len * n_state];
            let mut state = vec![zero; n_state];
            let mut h = vec![zero; n_state];
            for d in 0..dim {
                f.run_channel(bi, d, &mut state, |t, x| {
                    states[t * n_state..(t + 1) * n_state].copy_from_slice(x)
                });
                h.fill(zero);
                for t in (0..len).rev() {
                    let (i, local) = (f.at(bi, t, d), t * dim + d);
                    let x_t = &states[t * n_state..(t + 1) * n_state];
                    let (b_t, c_t) = (f.states_at(&f.b, bi, t), f.states_at(&f.c, bi, t));
                    // Through the gate: out = y * silu(z).
                    let dyt = match &f.z {
                        Some(z) => {
                            let s = sigmoid(z[i]);
                            let cx: F = c_t.iter().zip(x_t).map(|(&c, &x)| c * x).sum();
                            let y = cx + f.d[d] * f.u[i];
                            g.dz[local] = dy[i] * y * s * (F::one() + z[i] * (F::one() - s));
                            dy[i] * z[i] * s
                        }
                        None => dy[i],
                    };
                    g.dd[d] += dyt * f.u[i];
                    let (dt, dsoft) = (f.step(i, d), f.step_slope(i, d));
                    let (mut ddt, mut du) = (zero, dyt * f.d[d]);
                    for n in 0..n_state {
                        let row_n = t * n_state + n;
                        g.dc[row_n] += dyt * x_t[n];
                        h[n] += c_t[n] * dyt;
                        let a = f.a[d * n_state + n];
                        let decay = Real::exp(dt * a);
                        let previous = if t == 0 { zero } else { states[(t - 1) * n_state + n] };
                        let gexp = h[n] * previous * decay;
                        ddt += gexp * a + h[n] * b_t[n] * f.u[i];
                        du += h[n] * b_t[n] * dt;
                        g.db[row_n] += h[n] * dt * f.u[i];
                        g.da[d * n_state + n] += gexp * dt;
                        h[n] *= decay;
                    }
                    g.du[local] = du;
                    g.ddelta[local] = ddt * dsoft;
                    g.dbias[d] += ddt * dsoft;
                }
            }
            g
        })
        .collect();
    let cat = |part: fn(&RowGrads<F>) -> &Vec<F>| rows.iter().flat_map(|r| part(r).iter().copied()).collect::<Vec<F>>();
    let sum = |part: fn(&RowGrads<F>) -> &Vec<F>, size: usize| {
        rows.iter().fold(vec![zero; size], |mut acc, r| {
            acc.iter_mut().zip(part(r)).for_each(|(a, &v)| *a += v);
            acc
        })
    };
    ScanGrads {
        u: tensor(cat(|r| &r.du), [batch, dim, len], &device),
        delta: tensor(cat(|r| &r.ddelta), [batch, dim, len], &device),
        a: param(sum(|r| &r.da, dim * n_state), [dim, n_state], &device),
        b: tensor(cat(|r| &r.db), [batch, n_state, len], &device),
        c: tensor(cat(|r| &r.dc), [batch, n_state, len], &device),
        d: param(sum(|r| &r.dd, dim), [dim], &device),
        z: f.z
            .is_some()
            .then(|| tensor(cat(|r| &r.dz), [batch, dim, len], &device)),
        delta_bias: param(sum(|r| &r.dbias, dim), [dim], &device),
    }
}
