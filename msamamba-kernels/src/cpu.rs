//! The selective scan as plain loops for the CPU backend: one sequence (batch row) per rayon
//! task, the recurrence in float64 whatever the tensor type.
//!
//! The tensor-op reference issues O(L) small tensor ops per call; on ndarray each costs an
//! allocation and a pass over memory, which made CPU training ~10x slower than this loop.
//! The backward recomputes each channel's states (L x N floats, per task) instead of keeping
//! [b, d, n, l] between forward and backward.
//!
//! Inputs are read, and outputs written, position-major ([b, l, d] and [b, l, n]): the model
//! hands the scan channels-last views, whose copy in that order is one contiguous pass, where
//! reading them channel-major walked a transposed view element by element (with the copy of
//! arrays shared with the model, a third of the time of CPU scoring).

use burn::tensor::{FloatDType, Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

use crate::{ScanGrads, SelectiveScanInput};

/// A [b, c, l] input as flat float64 values, position-major: [b, l, c]. The cast makes an array
/// of its own, whose buffer the data takes over; the data of an array still shared with the
/// model is copied element by element.
fn flat<B: Backend>(t: &Tensor<B, 3>) -> Vec<f64> {
    t.clone()
        .swap_dims(1, 2)
        .cast(FloatDType::F64)
        .into_data()
        .into_vec()
        .expect("float tensor")
}

/// Position-major values [b, l, c] as a [b, c, l] tensor (a view of them).
fn tensor<B: Backend>(values: Vec<f64>, [b, c, l]: [usize; 3], device: &B::Device) -> Tensor<B, 3> {
    Tensor::from_data(TensorData::new(values, [b, l, c]).convert::<B::FloatElem>(), device).swap_dims(1, 2)
}

/// Parameters as flat float64 values.
fn params<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f64> {
    t.to_data().convert::<f64>().to_vec().expect("float tensor")
}

fn param<B: Backend, const D: usize>(values: Vec<f64>, shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape).convert::<B::FloatElem>(), device)
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The inputs, flattened once: u, delta, z [b, l, d]; b, c [b, l, n] (position-major).
struct Flat {
    dims: [usize; 4], // b, d, n, l
    u: Vec<f64>,
    delta: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    d: Vec<f64>,
    z: Option<Vec<f64>>,
    bias: Vec<f64>,
    softplus: bool,
}

impl Flat {
    fn new<B: Backend>(input: &SelectiveScanInput<B>) -> Self {
        let [batch, dim, len] = input.u.dims();
        let [_, state] = input.a.dims();
        Self {
            dims: [batch, dim, state, len],
            u: flat(&input.u),
            delta: flat(&input.delta),
            a: params(&input.a),
            b: flat(&input.b),
            c: flat(&input.c),
            d: params(&input.d),
            z: input.z.as_ref().map(flat),
            bias: params(&input.delta_bias),
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

    /// delta' at flat index `i` of channel `d`, and d(delta')/d(delta).
    fn step(&self, i: usize, d: usize) -> (f64, f64) {
        let pre = self.delta[i] + self.bias[d];
        if self.softplus {
            (softplus(pre), sigmoid(pre))
        } else {
            (pre, 1.0)
        }
    }

    /// Runs channel `d` of batch row `bi`, calling `visit(t, state)` after each position.
    fn run_channel(&self, bi: usize, d: usize, state: &mut [f64], mut visit: impl FnMut(usize, &[f64])) {
        let [_, _, n_state, len] = self.dims;
        state.fill(0.0);
        for t in 0..len {
            let i = self.at(bi, t, d);
            let (dt, _) = self.step(i, d);
            for (n, x) in state.iter_mut().enumerate() {
                let bn = self.b[self.at_state(bi, t, n)];
                *x = (dt * self.a[d * n_state + n]).exp() * *x + dt * bn * self.u[i];
            }
            visit(t, state);
        }
    }
}

/// Forward: y [b, d, l].
pub fn forward<B: Backend>(input: SelectiveScanInput<B>) -> Tensor<B, 3> {
    let f = Flat::new(&input);
    let [batch, dim, n_state, len] = f.dims;
    let y: Vec<f64> = (0..batch)
        .into_par_iter()
        .flat_map_iter(|bi| {
            let mut out = vec![0.0; len * dim];
            let mut state = vec![0.0; n_state];
            for d in 0..dim {
                f.run_channel(bi, d, &mut state, |t, x| {
                    let i = f.at(bi, t, d);
                    let cx: f64 = (0..n_state).map(|n| f.c[f.at_state(bi, t, n)] * x[n]).sum();
                    let y = cx + f.d[d] * f.u[i];
                    out[t * dim + d] = match &f.z {
                        Some(z) => y * z[i] * sigmoid(z[i]),
                        None => y,
                    };
                });
            }
            out
        })
        .collect();
    tensor(y, [batch, dim, len], &input.u.device())
}

/// One batch row's share of the gradients: du, ddelta, dz [l, d] and db, dc [l, n]
/// (position-major), the parameters' sums over the row.
struct RowGrads {
    du: Vec<f64>,
    ddelta: Vec<f64>,
    dz: Vec<f64>,
    db: Vec<f64>,
    dc: Vec<f64>,
    da: Vec<f64>,
    dd: Vec<f64>,
    dbias: Vec<f64>,
}

/// Backward: gradients of `sum(y * dy)`.
pub fn backward<B: Backend>(input: SelectiveScanInput<B>, dy: Tensor<B, 3>) -> ScanGrads<B> {
    let f = Flat::new(&input);
    let dy = flat(&dy);
    let [batch, dim, n_state, len] = f.dims;
    let rows: Vec<RowGrads> = (0..batch)
        .into_par_iter()
        .map(|bi| {
            let mut g = RowGrads {
                du: vec![0.0; len * dim],
                ddelta: vec![0.0; len * dim],
                dz: vec![0.0; len * dim],
                db: vec![0.0; len * n_state],
                dc: vec![0.0; len * n_state],
                da: vec![0.0; dim * n_state],
                dd: vec![0.0; dim],
                dbias: vec![0.0; dim],
            };
            let mut states = vec![0.0; len * n_state];
            let mut state = vec![0.0; n_state];
            let mut h = vec![0.0; n_state];
            for d in 0..dim {
                f.run_channel(bi, d, &mut state, |t, x| {
                    states[t * n_state..(t + 1) * n_state].copy_from_slice(x)
                });
                h.fill(0.0);
                for t in (0..len).rev() {
                    let (i, local) = (f.at(bi, t, d), t * dim + d);
                    let x_t = &states[t * n_state..(t + 1) * n_state];
                    // Through the gate: out = y * silu(z).
                    let dyt = match &f.z {
                        Some(z) => {
                            let s = sigmoid(z[i]);
                            let cx: f64 = (0..n_state).map(|n| f.c[f.at_state(bi, t, n)] * x_t[n]).sum();
                            let y = cx + f.d[d] * f.u[i];
                            g.dz[local] = dy[i] * y * s * (1.0 + z[i] * (1.0 - s));
                            dy[i] * z[i] * s
                        }
                        None => dy[i],
                    };
                    g.dd[d] += dyt * f.u[i];
                    let (dt, dsoft) = f.step(i, d);
                    let (mut ddt, mut du) = (0.0, dyt * f.d[d]);
                    for n in 0..n_state {
                        // Index into the inputs [b, l, n] and into this row's share [l, n].
                        let (bn, row_n) = (f.at_state(bi, t, n), t * n_state + n);
                        g.dc[row_n] += dyt * x_t[n];
                        h[n] += f.c[bn] * dyt;
                        let a = f.a[d * n_state + n];
                        let decay = (dt * a).exp();
                        let previous = if t == 0 { 0.0 } else { states[(t - 1) * n_state + n] };
                        let gexp = h[n] * previous * decay;
                        ddt += gexp * a + h[n] * f.b[bn] * f.u[i];
                        du += h[n] * f.b[bn] * dt;
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
    let device = input.u.device();
    let cat =
        |part: fn(&RowGrads) -> &Vec<f64>| rows.iter().flat_map(|r| part(r).iter().copied()).collect::<Vec<f64>>();
    let sum = |part: fn(&RowGrads) -> &Vec<f64>, size: usize| {
        rows.iter().fold(vec![0.0; size], |mut acc, r| {
            acc.iter_mut().zip(part(r)).for_each(|(a, v)| *a += v);
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
