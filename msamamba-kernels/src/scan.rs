use burn::tensor::{DType, Tensor, backend::Backend};

use crate::reference;

/// Inputs of the selective scan, named as in mamba_ssm's `selective_scan_fn`.
///
/// # Shapes
/// b batch (rows), d channels (E), n state size (N), l positions (L).
///
/// # Element types
/// Under mixed precision the activations (u, delta, B, C, z) are f16 or bf16 and the parameters
/// (A, D, delta_bias) f32, as PyTorch's autocast keeps them; y and each gradient come back in
/// their input's type (see [`SelectiveScanInput::activation_dtype`]).
#[derive(Debug, Clone)]
pub struct SelectiveScanInput<B: Backend> {
    /// Input sequence: [b, d, l].
    pub u: Tensor<B, 3>,
    /// Step size before bias and softplus: [b, d, l].
    pub delta: Tensor<B, 3>,
    /// State matrix, diagonal per channel (negative for a stable scan): [d, n].
    pub a: Tensor<B, 2>,
    /// Input-dependent input matrix: [b, n, l].
    pub b: Tensor<B, 3>,
    /// Input-dependent output matrix: [b, n, l].
    pub c: Tensor<B, 3>,
    /// Skip connection: \[d\].
    pub d: Tensor<B, 1>,
    /// Optional gate, the output is multiplied by silu(z): [b, d, l].
    pub z: Option<Tensor<B, 3>>,
    /// Added to delta before the softplus: \[d\].
    pub delta_bias: Tensor<B, 1>,
    /// Apply softplus to `delta + delta_bias`.
    pub delta_softplus: bool,
}

/// Gradients of the selective scan with respect to every tensor input.
#[derive(Debug, Clone)]
pub struct ScanGrads<B: Backend> {
    /// [b, d, l]
    pub u: Tensor<B, 3>,
    /// [b, d, l]
    pub delta: Tensor<B, 3>,
    /// [d, n]
    pub a: Tensor<B, 2>,
    /// [b, n, l]
    pub b: Tensor<B, 3>,
    /// [b, n, l]
    pub c: Tensor<B, 3>,
    /// \[d\]
    pub d: Tensor<B, 1>,
    /// [b, d, l], present when `z` was given.
    pub z: Option<Tensor<B, 3>>,
    /// \[d\]
    pub delta_bias: Tensor<B, 1>,
}

/// A scan's output and the checkpoints its backward would otherwise compute again, where the
/// backend's forward made them on the way (the kernels do; the reference does not).
#[derive(Debug, Clone)]
pub struct ScanOutput<B: Backend> {
    /// y: [b, d, l].
    pub y: Tensor<B, 3>,
    /// For the backward of the same input.
    pub checkpoints: Option<ScanCheckpoints<B>>,
}

/// What the kernels' backward starts from: the state entering every chunk of L, and the step
/// sizes after bias and softplus.
#[derive(Debug, Clone)]
pub struct ScanCheckpoints<B: Backend> {
    /// [b, chunks, d, n], the kernels' chunk length.
    pub states: Tensor<B, 4>,
    /// delta' = softplus(delta + delta_bias): [b, d, l].
    pub delta: Tensor<B, 3>,
}

/// A scan input whose shape disagrees with the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selective_scan: `{parameter}` has shape {found:?}, expected {expected:?}")]
pub struct ScanShapeError {
    /// The offending parameter.
    pub parameter: &'static str,
    /// Its shape.
    pub found: Vec<usize>,
    /// The shape implied by `u` and `a`.
    pub expected: Vec<usize>,
}

impl<B: Backend> SelectiveScanInput<B> {
    /// Checks every shape against `u` [b, d, l] and `a` [d, n].
    pub fn validate(&self) -> Result<(), ScanShapeError> {
        let [batch, dim, len] = self.u.dims();
        let [_, state] = self.a.dims();
        let expect = |parameter, found: Vec<usize>, expected: Vec<usize>| {
            if found == expected {
                Ok(())
            } else {
                Err(ScanShapeError {
                    parameter,
                    found,
                    expected,
                })
            }
        };
        expect("delta", self.delta.dims().to_vec(), vec![batch, dim, len])?;
        expect("a", self.a.dims().to_vec(), vec![dim, state])?;
        expect("b", self.b.dims().to_vec(), vec![batch, state, len])?;
        expect("c", self.c.dims().to_vec(), vec![batch, state, len])?;
        expect("d", self.d.dims().to_vec(), vec![dim])?;
        expect("delta_bias", self.delta_bias.dims().to_vec(), vec![dim])?;
        if let Some(z) = &self.z {
            expect("z", z.dims().to_vec(), vec![batch, dim, len])?;
        }
        Ok(())
    }

    /// The activations' element type (u's) where delta, B, C and z share it and A, D and
    /// delta_bias are f32: the mix the kernels take. `None` for any other mix.
    pub fn activation_dtype(&self) -> Option<DType> {
        let dtype = self.u.dtype();
        let mut activations = [self.delta.dtype(), self.b.dtype(), self.c.dtype()]
            .into_iter()
            .chain(self.z.as_ref().map(Tensor::dtype));
        let parameters = [self.a.dtype(), self.d.dtype(), self.delta_bias.dtype()];
        (activations.all(|t| t == dtype) && parameters.iter().all(|&t| t == DType::F32)).then_some(dtype)
    }
}

/// A backend that can run the selective scan.
///
/// The defaults are the tensor-op [`reference`](mod@crate::reference): correct on every backend, and the oracle the
/// fused kernels are tested against. Kernel backends override both methods; autodiff calls
/// `selective_scan_backward` of the inner backend, so the two must agree.
pub trait SelectiveScanBackend: Backend {
    /// y = scan(input): [b, d, l].
    fn selective_scan(input: SelectiveScanInput<Self>) -> Tensor<Self, 3> {
        reference::forward(input)
    }

    /// y and, where the forward makes them, the backward's checkpoints (what autodiff runs).
    fn selective_scan_saving(input: SelectiveScanInput<Self>) -> ScanOutput<Self> {
        ScanOutput {
            y: Self::selective_scan(input),
            checkpoints: None,
        }
    }

    /// The shapes of the checkpoints `selective_scan_saving` returns on `device` for an input of
    /// `dims` (b, d, n, l) whose activations are of `dtype` (see
    /// [`SelectiveScanInput::activation_dtype`]), `None` when it returns none: burn-fusion
    /// declares a queued operation's outputs before running it. Checkpoints are f32 whatever the
    /// activations' type.
    fn scan_checkpoint_shapes(_dims: [usize; 4], _dtype: DType, _device: &Self::Device) -> Option<[Vec<usize>; 2]> {
        None
    }

    /// Gradients of `sum(y * dy)` for every input, given the checkpoints `selective_scan_saving`
    /// returned for the same input (the reference has none); `dy`: [b, d, l].
    fn selective_scan_backward(
        input: SelectiveScanInput<Self>,
        _checkpoints: Option<ScanCheckpoints<Self>>,
        dy: Tensor<Self, 3>,
    ) -> ScanGrads<Self> {
        reference::backward(input, dy)
    }
}

/// Runs the selective scan (Mamba's S6, as mamba_ssm's `selective_scan_fn`) on backend `B`:
/// delta' = softplus(delta + delta_bias), x_t = exp(delta'_t a) x_{t-1} + delta'_t b_t u_t,
/// y_t = c_t . x_t + d u_t, then y * silu(z).
///
/// # Shapes
/// u, delta, z: [b, d, l]; a: [d, n]; b, c: [b, n, l]; d, delta_bias: \[d\] -> y: [b, d, l]
///
/// # Panics
/// When the shapes disagree (see [`SelectiveScanInput::validate`]): a programming error inside
/// the model, never user data.
pub fn selective_scan<B: SelectiveScanBackend>(input: SelectiveScanInput<B>) -> Tensor<B, 3> {
    if let Err(err) = input.validate() {
        panic!("{err}");
    }
    B::selective_scan(input)
}
