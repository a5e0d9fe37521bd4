use burn::prelude::*;
use msamamba_kernels::KernelBackend;

use crate::msa_mamba::MsaMamba;
use crate::tokens::MASK;

/// Zero-shot variant effect: mask the variant's position in the target row and compare the
/// model's logits for the alternative and the reference base, logit(alt) - logit(ref).
/// Negative scores mean the model finds the alternative less likely (GPN-MSA's convention).
///
/// # Shapes
/// tokens: [B, M, L] Int (unmasked), row_keep: [B, M] Bool, reference and alternative: \[B\] Int
/// (token ids 1-4), `position` < L -> scores: \[B\]
pub fn variant_scores<B: KernelBackend>(
    model: &MsaMamba<B>,
    tokens: Tensor<B, 3, Int>,
    row_keep: Tensor<B, 2, Bool>,
    position: usize,
    reference: Tensor<B, 1, Int>,
    alternative: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let [batch, _, _] = tokens.dims();
    let device = tokens.device();
    let masked = tokens.slice_assign(
        [0..batch, 0..1, position..position + 1],
        Tensor::full([batch, 1, 1], i64::from(MASK), &device),
    );
    let logits = model
        .forward(masked, row_keep, false)
        .narrow(1, position, 1)
        .squeeze_dim::<2>(1); // [B, 6]
    let pick = |t: Tensor<B, 1, Int>| logits.clone().gather(1, t.unsqueeze_dim(1)).squeeze_dim::<1>(1); // [B]
    pick(alternative) - pick(reference)
}
