//! MLM masking statistics and the masked loss.

mod common;

use burn::prelude::*;
use common::*;
use msamamba_model::mlm_loss::mlm_loss;
use msamamba_model::mlm_mask::MlmMaskConfig;
use msamamba_model::tokens::{GAP, IGNORE_TARGET, MASK};
use rand::{Rng, SeedableRng, rngs::StdRng};

#[test]
fn masking_follows_15_percent_and_80_10_10_and_skips_gaps() {
    let mut rng = rng();
    let config = MlmMaskConfig::new();
    let (mut chosen, mut candidates, mut masked, mut random, mut kept) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for _ in 0..2000 {
        // About a quarter gaps, as in real alignments.
        let original: Vec<u8> = (0..128)
            .map(|_| {
                if rng.random_bool(0.25) {
                    GAP
                } else {
                    rng.random_range(1..=4)
                }
            })
            .collect();
        let mut row = original.clone();
        let targets = config.apply(&mut row, &mut rng);
        candidates += original.iter().filter(|&&t| t != GAP).count();
        for i in 0..row.len() {
            if targets[i] == IGNORE_TARGET {
                assert_eq!(row[i], original[i], "an unchosen position changed");
                continue;
            }
            assert_ne!(original[i], GAP, "a gap position was chosen");
            assert_eq!(targets[i], i64::from(original[i]), "target is not the original token");
            chosen += 1;
            match row[i] {
                MASK => masked += 1,
                t if t == original[i] => kept += 1,
                t => {
                    assert!((1..=4).contains(&t), "random replacement {t} is not a base");
                    random += 1
                }
            }
        }
    }
    let rate = chosen as f64 / candidates as f64;
    assert!((rate - 0.15).abs() < 0.005, "chose {rate:.4} of the non-gap positions");
    let share = |k: usize| k as f64 / chosen as f64;
    assert!(
        (share(masked) - 0.8).abs() < 0.01,
        "mask token share {:.4}",
        share(masked)
    );
    // A random base equals the original a quarter of the time: 7.5% visibly random, 12.5% kept.
    assert!(
        (share(random) - 0.075).abs() < 0.01,
        "random share {:.4}",
        share(random)
    );
    assert!((share(kept) - 0.125).abs() < 0.01, "unchanged share {:.4}", share(kept));
}

#[test]
fn masking_is_reproducible_with_a_seed() {
    let row: Vec<u8> = (0..200).map(|i| (i % 5) as u8).collect();
    let draw = |seed| {
        let mut r = row.clone();
        let t = MlmMaskConfig::new().apply(&mut r, &mut StdRng::seed_from_u64(seed));
        (r, t)
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}

#[test]
fn all_gap_row_gets_no_targets_and_short_rows_get_one() {
    let mut rng = rng();
    let mut gaps = vec![GAP; 30];
    assert!(
        MlmMaskConfig::new()
            .apply(&mut gaps, &mut rng)
            .iter()
            .all(|&t| t == IGNORE_TARGET)
    );
    let mut short = vec![GAP, 3, GAP];
    let targets = MlmMaskConfig::new().apply(&mut short, &mut rng);
    assert_eq!(targets, vec![IGNORE_TARGET, 3, IGNORE_TARGET]);
}

#[test]
fn mlm_loss_averages_over_targets_only() {
    let mut rng = rng();
    let device = Default::default();
    let logits: Vec<f32> = (0..2 * 5 * 6).map(|_| rng.random_range(-3.0..3.0)).collect();
    let targets: Vec<i64> = vec![2, -100, 4, -100, -100, 1, 1, -100, 3, 0];
    let out = mlm_loss(
        Tensor::<Cpu, 3>::from_data(TensorData::new(logits.clone(), [2, 5, 6]), &device),
        Tensor::<Cpu, 2, Int>::from_data(TensorData::new(targets.clone(), [2, 5]), &device),
    );
    let (mut total, mut count, mut correct) = (0.0f64, 0, 0);
    for (pos, &t) in targets.iter().enumerate() {
        if t < 0 {
            continue;
        }
        let row: Vec<f64> = logits[pos * 6..pos * 6 + 6].iter().map(|&v| f64::from(v)).collect();
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        total += lse - row[t as usize];
        count += 1;
        let best = (0..6).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        correct += usize::from(best == t as usize);
    }
    let loss = out.loss.into_scalar();
    assert!(
        (f64::from(loss) - total / count as f64).abs() < 1e-5,
        "{loss} vs {}",
        total / count as f64
    );
    assert_eq!(out.count.into_scalar() as usize, count);
    assert_eq!(out.correct.into_scalar() as usize, correct);
}
