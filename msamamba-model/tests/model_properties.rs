//! Properties the paper states: causality along the sequence, invariance to dropped rows.

mod common;

use common::*;
use msamamba_model::MsaMambaConfig;
use rand::Rng;

#[test]
fn unidirectional_model_is_causal_along_the_sequence() {
    let mut rng = rng();
    let device = Default::default();
    let model = tiny_config().init::<Cpu>(&device);
    let shape = [2, 4, 12];
    let all = vec![true; 8];
    let base = random_tokens(&mut rng, shape);
    let logits = values(model.forward(tokens(&base, shape, &device), keep(&all, [2, 4], &device), false));
    for t in [0, 5, 10] {
        // Change every token after position t in every row.
        let mut changed = base.clone();
        for (i, v) in changed.iter_mut().enumerate() {
            if i % shape[2] > t {
                *v = (*v + 1 + rng.random_range(0..4)) % 5;
            }
        }
        let after = values(model.forward(tokens(&changed, shape, &device), keep(&all, [2, 4], &device), false));
        let (mut prefix_diff, mut suffix_diff) = (0.0f32, 0.0f32);
        for (i, (x, y)) in logits.iter().zip(&after).enumerate() {
            let position = (i / 6) % shape[2]; // logits [B, L, 6]
            if position <= t {
                prefix_diff = prefix_diff.max((x - y).abs());
            } else {
                suffix_diff = suffix_diff.max((x - y).abs());
            }
        }
        assert!(
            prefix_diff < 1e-6,
            "t={t}: logits at positions <= t moved by {prefix_diff}"
        );
        assert!(suffix_diff > 1e-4, "t={t}: the change did not reach later positions");
    }
}

#[test]
fn bidirectional_model_sees_the_future() {
    let mut rng = rng();
    let device = Default::default();
    let model = tiny_config().with_bidirectional(true).init::<Cpu>(&device);
    let shape = [1, 3, 10];
    let all = vec![true; 3];
    let base = random_tokens(&mut rng, shape);
    let mut changed = base.clone();
    for (i, v) in changed.iter_mut().enumerate() {
        if i % shape[2] > 4 {
            *v = (*v + 1) % 5;
        }
    }
    let before = values(model.forward(tokens(&base, shape, &device), keep(&all, [1, 3], &device), false));
    let after = values(model.forward(tokens(&changed, shape, &device), keep(&all, [1, 3], &device), false));
    let prefix = 5 * 6;
    assert!(
        max_abs_diff(&before[..prefix], &after[..prefix]) > 1e-4,
        "no information flowed backwards"
    );
}

#[test]
fn dropped_rows_do_not_change_the_output() {
    let mut rng = rng();
    let device = Default::default();
    let model = tiny_config().init::<Cpu>(&device);
    let shape = [2, 5, 9];
    let row_keep = [true, false, true, true, false, true, true, false, false, true];
    let base = random_tokens(&mut rng, shape);
    let mut changed = base.clone();
    for (i, v) in changed.iter_mut().enumerate() {
        let row = i / shape[2]; // flat row index b * M + m
        if !row_keep[row] {
            *v = rng.random_range(0..5);
        }
    }
    assert_ne!(base, changed);
    for sparse in [true, false] {
        let a = values(model.forward(tokens(&base, shape, &device), keep(&row_keep, [2, 5], &device), sparse));
        let b = values(model.forward(
            tokens(&changed, shape, &device),
            keep(&row_keep, [2, 5], &device),
            sparse,
        ));
        assert!(
            max_abs_diff(&a, &b) < 1e-6,
            "row_sparse={sparse}: a dropped row changed the output"
        );
    }
}

#[test]
fn row_sparse_matches_dense_on_the_same_rows() {
    let mut rng = rng();
    let device = Default::default();
    let model = tiny_config().init::<Cpu>(&device);
    let shape = [2, 4, 11];
    let toks = random_tokens(&mut rng, shape);

    // All rows kept: gather/scatter gives the dense result.
    let all = vec![true; 8];
    let dense = values(model.forward(tokens(&toks, shape, &device), keep(&all, [2, 4], &device), false));
    let sparse = values(model.forward(tokens(&toks, shape, &device), keep(&all, [2, 4], &device), true));
    assert!(max_abs_diff(&dense, &sparse) < 1e-5);

    // Trailing rows dropped: same as running densely on the kept rows alone.
    let row_keep = [true, true, false, false, true, true, false, false];
    let sparse = values(model.forward(tokens(&toks, shape, &device), keep(&row_keep, [2, 4], &device), true));
    let kept: Vec<i64> = toks
        .chunks(shape[2])
        .enumerate()
        .filter(|(r, _)| row_keep[*r])
        .flat_map(|(_, c)| c.to_vec())
        .collect();
    let dense = values(model.forward(
        tokens(&kept, [2, 2, 11], &device),
        keep(&[true; 4], [2, 2], &device),
        false,
    ));
    assert!(
        max_abs_diff(&dense, &sparse) < 1e-5,
        "sparse {:?} vs dense on kept rows",
        max_abs_diff(&dense, &sparse)
    );
}

#[test]
fn paper_size_model_runs_on_a_full_msa() {
    let mut rng = rng();
    let device = Default::default();
    let config = MsaMambaConfig::new();
    assert_eq!(
        (
            config.d_model,
            config.expand,
            config.d_state,
            config.d_conv,
            config.n_layers
        ),
        (128, 2, 16, 4, 3)
    );
    let model = config.init::<Cpu>(&device);
    let shape = [2, 16, 128];
    let toks = random_tokens(&mut rng, shape);
    let logits = model.forward(
        tokens(&toks, shape, &device),
        keep(&[true; 32], [2, 16], &device),
        false,
    );
    assert_eq!(logits.dims(), [2, 128, 6]);
    assert!(values(logits).iter().all(|v| v.is_finite()));
}

#[test]
fn too_many_rows_are_refused_with_the_limit() {
    let device = Default::default();
    let model = tiny_config().init::<Cpu>(&device);
    let shape = [1, 9, 4];
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        model.forward(
            tokens(&vec![1; 36], shape, &device),
            keep(&[true; 9], [1, 9], &device),
            false,
        )
    }));
    let message = *result
        .expect_err("9 rows > max_rows 8")
        .downcast::<String>()
        .expect("message");
    assert!(message.contains("max_rows is 8"), "{message}");
}

#[test]
fn config_round_trips_through_json() {
    let config = MsaMambaConfig::new().with_bidirectional(true).with_n_layers(5);
    let json = serde_json::to_string(&config).expect("serialise");
    let back: MsaMambaConfig = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back.n_layers, 5);
    assert!(back.bidirectional);
    assert_eq!(serde_json::to_string(&back).expect("serialise"), json);
}
