//! A checkpoint is good only when its model's forward pass on a validation batch is finite: a
//! diverging step can leave weights that are finite in the file but overflow in the forward
//! pass, and a run resumed, or variants scored, from them would be NaN.

use std::path::Path;

use anyhow::{Result, bail};
use burn::prelude::*;

/// Fails, naming `weights`, unless `loss` and every value of `outputs`, of one forward pass on a
/// validation batch, are finite.
pub fn check_forward<B: Backend, const D: usize>(
    weights: &Path,
    loss: Tensor<B, 1>,
    outputs: Tensor<B, D>,
) -> Result<()> {
    let loss = loss.into_scalar().elem::<f64>();
    let non_finite = outputs.is_finite().bool_not().int().sum().into_scalar().elem::<i64>();
    if !loss.is_finite() || non_finite > 0 {
        bail!(
            "{}: its weights are finite, but on a validation batch its loss is {loss} and {non_finite} of its outputs are NaN or infinite (the run diverged)",
            weights.display()
        );
    }
    Ok(())
}
