//! The selective scan in plain tensor ops: a sequential loop over positions.
//!
//! Slow but obviously right: it is the scan on backends without a kernel and the oracle the
//! kernels are tested against. The backward is written out by hand (a reverse scan) rather than
//! left to autodiff, because differentiating L slices of a [b, d, l, n] tensor costs O(L^2).
//!
//! It computes in the parameters' element type (A's: f32 under mixed precision), the activations
//! cast to it on entry, and hands y and each gradient back in its input's type. Where the types
//! already agree the casts are no-ops.

use burn::tensor::{DType, Tensor, activation, backend::Backend};

use crate::{ScanGrads, SelectiveScanInput};

/// The input with every tensor in A's element type, where the reference computes.
fn in_parameter_type<B: Backend>(input: SelectiveScanInput<B>) -> SelectiveScanInput<B> {
    let dtype = input.a.dtype();
    SelectiveScanInput {
        u: input.u.cast(dtype),
        delta: input.delta.cast(dtype),
        b: input.b.cast(dtype),
        c: input.c.cast(dtype),
        d: input.d.cast(dtype),
        z: input.z.map(|z| z.cast(dtype)),
        delta_bias: input.delta_bias.cast(dtype),
        ..input
    }
}

/// softplus(x) = log(1 + e^x), written to neither overflow nor lose precision for large |x|.
fn softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone().clamp_min(0.0) + x.abs().neg().exp().log1p()
}

/// delta + bias, through softplus when asked: [b, d, l]. Also returns d(delta')/d(delta).
fn effective_delta<B: Backend>(input: &SelectiveScanInput<B>) -> (Tensor<B, 3>, Option<Tensor<B, 3>>) {
    let [_, dim, _] = input.u.dims();
    let pre = input.delta.clone() + input.delta_bias.clone().reshape([1, dim, 1]);
    if input.delta_softplus {
        (softplus(pre.clone()), Some(activation::sigmoid(pre)))
    } else {
        (pre, None)
    }
}

/// Splits [b, x, l] into l tensors [b, x].
fn steps<B: Backend>(t: Tensor<B, 3>) -> Vec<Tensor<B, 2>> {
    t.split(1, 2).into_iter().map(|s| s.squeeze_dim::<2>(2)).collect()
}

/// Per-position tensors of the scan, shared by forward and backward.
struct Unrolled<B: Backend> {
    /// delta' per position: [b, d]
    delta: Vec<Tensor<B, 2>>,
    /// u per position: [b, d]
    u: Vec<Tensor<B, 2>>,
    /// b per position: [b, n]
    b: Vec<Tensor<B, 2>>,
    /// c per position: [b, n]
    c: Vec<Tensor<B, 2>>,
    /// The state after each position: [b, d, n]
    states: Vec<Tensor<B, 3>>,
    /// c_t . x_t per position, before the skip and the gate: [b, d]
    y: Vec<Tensor<B, 2>>,
}

/// Runs the recurrence, keeping every state (the reference may spend O(b d n l) memory).
fn unroll<B: Backend>(input: &SelectiveScanInput<B>, delta: Tensor<B, 3>) -> Unrolled<B> {
    let [batch, dim, _] = input.u.dims();
    let [_, state] = input.a.dims();
    let a = input.a.clone().unsqueeze_dim::<3>(0); // [1, d, n]
    let delta = steps(delta);
    let u = steps(input.u.clone());
    let b = steps(input.b.clone());
    let c = steps(input.c.clone());
    // Of the computing type, which need not be the device's default float.
    let mut x = Tensor::<B, 3>::zeros([batch, dim, state], (&input.u.device(), input.a.dtype()));
    let mut states = Vec::with_capacity(u.len());
    let mut y = Vec::with_capacity(u.len());
    for t in 0..u.len() {
        let dt = delta[t].clone().unsqueeze_dim::<3>(2); // [b, d, 1]
        let decay = (dt.clone() * a.clone()).exp(); // [b, d, n]
        let drive = (dt * u[t].clone().unsqueeze_dim(2)) * b[t].clone().unsqueeze_dim(1); // [b, d, n]
        x = decay * x + drive;
        y.push(
            (x.clone() * c[t].clone().unsqueeze_dim(1))
                .sum_dim(2)
                .squeeze_dim::<2>(2),
        );
        states.push(x.clone());
    }
    Unrolled {
        delta,
        u,
        b,
        c,
        states,
        y,
    }
}

/// The selective scan, forward: y [b, d, l].
pub fn forward<B: Backend>(input: SelectiveScanInput<B>) -> Tensor<B, 3> {
    let dtype = input.u.dtype();
    let input = in_parameter_type(input);
    let [_, dim, _] = input.u.dims();
    let (delta, _) = effective_delta(&input);
    let unrolled = unroll(&input, delta);
    let y = Tensor::stack::<3>(unrolled.y, 2) + input.u.clone() * input.d.clone().reshape([1, dim, 1]);
    let y = match input.z {
        Some(z) => y * activation::silu(z),
        None => y,
    };
    y.cast(dtype)
}

/// The selective scan, backward: gradients of `sum(y * dy)` for every input.
pub fn backward<B: Backend>(input: SelectiveScanInput<B>, dy: Tensor<B, 3>) -> ScanGrads<B> {
    let dtypes = Dtypes::of(&input);
    let dy = dy.cast(input.a.dtype());
    dtypes.restore(gradients(in_parameter_type(input), dy))
}

/// The element types of a scan's inputs, to hand each gradient back in its input's type.
struct Dtypes {
    u: DType,
    delta: DType,
    b: DType,
    c: DType,
    d: DType,
    z: Option<DType>,
    delta_bias: DType,
}

impl Dtypes {
    fn of<B: Backend>(input: &SelectiveScanInput<B>) -> Self {
        Dtypes {
            u: input.u.dtype(),
            delta: input.delta.dtype(),
            b: input.b.dtype(),
            c: input.c.dtype(),
            d: input.d.dtype(),
            z: input.z.as_ref().map(Tensor::dtype),
            delta_bias: input.delta_bias.dtype(),
        }
    }

    /// `grads`, each cast to its input's type (A's is A's already).
    fn restore<B: Backend>(&self, grads: ScanGrads<B>) -> ScanGrads<B> {
        ScanGrads {
            u: grads.u.cast(self.u),
            delta: grads.delta.cast(self.delta),
            a: grads.a,
            b: grads.b.cast(self.b),
            c: grads.c.cast(self.c),
            d: grads.d.cast(self.d),
            z: grads.z.zip(self.z).map(|(z, dtype)| z.cast(dtype)),
            delta_bias: grads.delta_bias.cast(self.delta_bias),
        }
    }
}

/// [`backward`] with every tensor of one element type.
fn gradients<B: Backend>(input: SelectiveScanInput<B>, dy: Tensor<B, 3>) -> ScanGrads<B> {
    let [batch, dim, len] = input.u.dims();
    let [_, state] = input.a.dims();
    let device = input.u.device();
    let zeros = (&device, input.a.dtype());
    let (delta_full, softplus_grad) = effective_delta(&input);
    let unrolled = unroll(&input, delta_full);
    let y_scan = Tensor::stack::<3>(unrolled.y.clone(), 2); // [b, d, l]
    let d_skip = input.d.clone().reshape([1, dim, 1]);

    // Through the gate: out = y * silu(z), silu'(z) = s (1 + z (1 - s)).
    let (dy, dz) = match &input.z {
        Some(z) => {
            let y = y_scan.clone() + input.u.clone() * d_skip.clone();
            let s = activation::sigmoid(z.clone());
            let dsilu = s.clone() * (z.clone() * (s.clone().neg() + 1.0) + 1.0);
            (dy.clone() * activation::silu(z.clone()), Some(dy * y * dsilu))
        }
        None => (dy, None),
    };
    let dd = (dy.clone() * input.u.clone()).sum_dims_squeeze::<1, _>(&[0, 2]);
    let du_skip = dy.clone() * d_skip;

    // Reverse scan: h is the adjoint of the state x_t, carried from t+1 through exp(delta' a).
    let a = input.a.clone().unsqueeze_dim::<3>(0); // [1, d, n]
    let dy_steps = steps(dy);
    let mut h = Tensor::<B, 3>::zeros([batch, dim, state], zeros);
    let mut da = Tensor::<B, 3>::zeros([1, dim, state], zeros);
    let (mut ddelta, mut du, mut db, mut dc) = (vec![None; len], vec![None; len], vec![None; len], vec![None; len]);
    for t in (0..len).rev() {
        let dt = unrolled.delta[t].clone().unsqueeze_dim::<3>(2); // [b, d, 1]
        let ut = unrolled.u[t].clone().unsqueeze_dim::<3>(2); // [b, d, 1]
        let bt = unrolled.b[t].clone().unsqueeze_dim::<3>(1); // [b, 1, n]
        let ct = unrolled.c[t].clone().unsqueeze_dim::<3>(1); // [b, 1, n]
        let dyt = dy_steps[t].clone().unsqueeze_dim::<3>(2); // [b, d, 1]
        dc[t] = Some(
            (unrolled.states[t].clone() * dyt.clone())
                .sum_dim(1)
                .squeeze_dim::<2>(1),
        );
        h = h + ct * dyt;
        let decay = (dt.clone() * a.clone()).exp(); // [b, d, n]
        let previous = match t {
            0 => Tensor::zeros([batch, dim, state], zeros),
            _ => unrolled.states[t - 1].clone(),
        };
        // Gradient with respect to delta'_t a, the exponent of the decay.
        let g = h.clone() * previous * decay.clone();
        let hb = (h.clone() * bt).sum_dim(2); // [b, d, 1]
        ddelta[t] = Some(((g.clone() * a.clone()).sum_dim(2) + hb.clone() * ut.clone()).squeeze_dim::<2>(2));
        du[t] = Some((hb * dt.clone()).squeeze_dim::<2>(2));
        db[t] = Some((h.clone() * (dt.clone() * ut)).sum_dim(1).squeeze_dim::<2>(1));
        da = da + (g * dt).sum_dim(0);
        h = h * decay;
    }
    let collect = |v: Vec<Option<Tensor<B, 2>>>| Tensor::stack::<3>(v.into_iter().flatten().collect(), 2);
    let mut ddelta = collect(ddelta);
    if let Some(grad) = softplus_grad {
        ddelta = ddelta * grad;
    }
    ScanGrads {
        u: collect(du) + du_skip,
        delta_bias: ddelta.clone().sum_dims_squeeze::<1, _>(&[0, 2]),
        delta: ddelta,
        a: da.squeeze_dim::<2>(0),
        b: collect(db),
        c: collect(dc),
        d: dd,
        z: dz,
    }
}
