//! The row attention's forward as plain loops for the CPU backend: one (batch item, position)
//! per rayon task, every head and row of it, in the tensors' own precision (see [`Real`]).
//!
//! The tensor-op reference moves q, k and v into [b, l, heads, m, ·] problems and back around
//! two batched products of m x m; on ndarray those permutes, copies and small products were
//! about a quarter of CPU scoring's time. The output is written [b, l, m, d] and handed back as a
//! [b, m, l, d] view, as the model reads it. The backward stays the reference's.

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

use super::{Real, values};
use crate::row_attention::{MASKED_SCORE, RowAttentionInput, RowAttentionOutput, score_scale};

/// Context vectors and softmax statistics, as [`crate::row_attention::reference_forward`].
pub fn forward<B: Backend>(input: RowAttentionInput<B>) -> RowAttentionOutput<B> {
    match input.qkv.dtype() {
        DType::F64 => forward_in::<B, f64>(input),
        _ => forward_in::<B, f32>(input),
    }
}

fn forward_in<B: Backend, F: Real>(input: RowAttentionInput<B>) -> RowAttentionOutput<B> {
    let [batch, rows, len, width] = input.dims();
    let n_heads = input.n_heads;
    let head = width / n_heads;
    let device = input.qkv.device();
    let scale = F::from(score_scale(width, n_heads)).expect("a float");
    let masked_score = F::from(MASKED_SCORE).expect("a float");
    let half = F::from(0.5).expect("a float");
    let qkv: Vec<F> = values(input.qkv);
    let keep: Vec<F> = values(input.key_keep);
    // Offset of row i's queries at (batch item, position); keys and values follow at +d, +2d.
    let at = |bi: usize, i: usize, t: usize| ((bi * rows + i) * len + t) * 3 * width;

    let mut out = vec![F::zero(); batch * len * rows * width];
    // Per (batch item, position): the largest scores, then the inverse sums, [heads, m] each.
    let mut stats = vec![F::zero(); batch * len * 2 * n_heads * rows];
    out.par_chunks_mut(rows * width)
        .zip(stats.par_chunks_mut(2 * n_heads * rows))
        .enumerate()
        .for_each(|(task, (out, stats))| {
            let (bi, t) = (task / len, task % len);
            let masked: Vec<bool> = (0..rows).map(|j| keep[bi * rows + j] < half).collect();
            let mut weights = vec![F::zero(); rows];
            for h in 0..n_heads {
                let channels = h * head..(h + 1) * head;
                for i in 0..rows {
                    let q = &qkv[at(bi, i, t)..][channels.clone()];
                    for (j, w) in weights.iter_mut().enumerate() {
                        let k = &qkv[at(bi, j, t) + width..][channels.clone()];
                        let dot: F = q.iter().zip(k).map(|(&q, &k)| q * k).sum();
                        *w = if masked[j] { masked_score } else { dot * scale };
                    }
                    let top = weights.iter().fold(F::neg_infinity(), |m, &w| m.max(w));
                    weights.iter_mut().for_each(|w| *w = Real::exp(*w - top));
                    let inverse_sum = F::one() / weights.iter().copied().sum::<F>();
                    let o = &mut out[i * width..][channels.clone()];
                    for (j, &w) in weights.iter().enumerate() {
                        let v = &qkv[at(bi, j, t) + 2 * width..][channels.clone()];
                        let p = w * inverse_sum;
                        o.iter_mut().zip(v).for_each(|(o, &v)| *o += p * v);
                    }
                    stats[h * rows + i] = top;
                    stats[(n_heads + h) * rows + i] = inverse_sum;
                }
            }
        });

    let data = |values: Vec<F>, shape: Vec<usize>| TensorData::new(values, shape).convert::<B::FloatElem>();
    let out = Tensor::<B, 4>::from_data(data(out, vec![batch, len, rows, width]), &device).swap_dims(1, 2);
    // [b, l, 2, heads, m] -> [2, b, l, heads, m]
    let stats =
        Tensor::<B, 5>::from_data(data(stats, vec![batch, len, 2, n_heads, rows]), &device).permute([2, 0, 1, 3, 4]);
    RowAttentionOutput { out, stats }
}
