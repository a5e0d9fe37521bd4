use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Cross-entropy over the masked positions only, and how many of them were predicted right.
#[derive(Debug, Clone)]
pub struct MlmLoss<B: Backend> {
    /// Mean negative log-likelihood over positions with a target: scalar \[1\].
    pub loss: Tensor<B, 1>,
    /// Positions with a target.
    pub count: Tensor<B, 1, Int>,
    /// Of those, positions whose argmax equals the target.
    pub correct: Tensor<B, 1, Int>,
}

/// MLM loss; targets below zero (the -100 convention) carry no loss.
///
/// # Shapes
/// logits: [B, L, V], targets: [B, L] Int
pub fn mlm_loss<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> MlmLoss<B> {
    let has_target = targets.clone().greater_equal_elem(0); // [B, L]
    let safe = targets.clone().clamp_min(0).unsqueeze_dim::<3>(2); // [B, L, 1]
    let nll = log_softmax(logits.clone(), 2).gather(2, safe).squeeze_dim::<2>(2).neg(); // [B, L]
    let weight = has_target.clone().float();
    let count = has_target.clone().int().sum();
    // Mean over targets; a batch with none gives 0 rather than NaN.
    let loss = (nll * weight.clone()).sum() / weight.sum().clamp_min(1.0);
    let predicted = logits.argmax(2).squeeze_dim::<2>(2); // [B, L]
    let correct = predicted.equal(targets).bool_and(has_target).int().sum();
    MlmLoss { loss, count, correct }
}
