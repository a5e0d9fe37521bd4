//! AUROC, average precision, accuracy and the ROC curve against values worked out by hand, and
//! against a brute-force pairwise AUROC on random scores with ties.

use msamamba_train::train::classification_metrics::{
    ClassificationReport, ReportError, accuracy, auroc, average_precision, roc_curve,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn assert_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12 + 1e-12 * want.abs(),
        "got {got}, want {want}"
    );
}

fn bools(labels: &[u8]) -> Vec<bool> {
    labels.iter().map(|&l| l == 1).collect()
}

#[test]
fn distinct_scores_match_the_hand_computed_values() {
    // Positives 0.35 and 0.8, negatives 0.1 and 0.4.
    // AUROC: pairs (pos, neg) ranked right: (0.35, 0.1), (0.8, 0.1), (0.8, 0.4) -> 3 of 4.
    // AP, highest first: 0.8 (+) precision 1 at recall 1/2; 0.4 (-) no recall;
    // 0.35 (+) precision 2/3 at recall 1 -> 1/2 * 1 + 1/2 * 2/3 = 5/6.
    let scores = [0.1, 0.4, 0.35, 0.8];
    let labels = bools(&[0, 0, 1, 1]);
    assert_close(auroc(&scores, &labels).unwrap(), 0.75);
    assert_close(average_precision(&scores, &labels).unwrap(), 5.0 / 6.0);
    // Predicted 1 at >= 0.5: only 0.8, so 0.1, 0.4 and 0.8 are right, 0.35 wrong.
    assert_close(accuracy(&scores, &labels, 0.5), 0.75);
    let curve = roc_curve(&scores, &labels).unwrap();
    assert_eq!(curve, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
}

#[test]
fn a_tied_positive_negative_pair_counts_half_in_auroc() {
    // Ranks ascending: 0.2 -> 1, the two 0.6 -> 2.5 each, 0.9 -> 4. Positives 0.6 and 0.9:
    // rank sum 6.5, minus 2 * 3 / 2 = 3.5, over 2 * 2 pairs = 0.875 (the tied pair counts 1/2).
    let scores = [0.2, 0.6, 0.6, 0.9];
    let labels = bools(&[0, 1, 0, 1]);
    assert_close(auroc(&scores, &labels).unwrap(), 0.875);
    // AP: 0.9 (+) precision 1 at recall 1/2; the 0.6 group ends at 2 TP, 1 FP: 2/3 at recall 1.
    assert_close(average_precision(&scores, &labels).unwrap(), 0.5 + 0.5 * 2.0 / 3.0);
    // The tied group is one step of the ROC curve, from (0, 1/2) straight to (1/2, 1).
    let curve = roc_curve(&scores, &labels).unwrap();
    assert_eq!(curve, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
}

#[test]
fn a_tied_group_gets_the_precision_at_its_end_in_average_precision() {
    // Every score tied: one threshold with 2 TP, 1 FP, so AP = recall 1 * precision 2/3.
    // Breaking the tie positives-first would give 1, negatives-first 1/2 * 1/2 + 1/2 * 2/3.
    let scores = [0.5, 0.5, 0.5];
    let labels = bools(&[1, 1, 0]);
    assert_close(average_precision(&scores, &labels).unwrap(), 2.0 / 3.0);
    assert_close(auroc(&scores, &labels).unwrap(), 0.5);
    assert_eq!(roc_curve(&scores, &labels).unwrap(), vec![(0.0, 0.0), (1.0, 1.0)]);
    // All predicted 1 at threshold 0.5 (>=): the two positives are right.
    assert_close(accuracy(&scores, &labels, 0.5), 2.0 / 3.0);
}

#[test]
fn perfect_and_inverted_rankings_give_one_and_zero() {
    let labels = bools(&[0, 0, 1, 1, 1]);
    let scores = [0.1, 0.2, 0.7, 0.8, 0.9];
    assert_close(auroc(&scores, &labels).unwrap(), 1.0);
    assert_close(average_precision(&scores, &labels).unwrap(), 1.0);
    let inverted: Vec<f64> = scores.iter().map(|s| 1.0 - s).collect();
    assert_close(auroc(&inverted, &labels).unwrap(), 0.0);
    // Inverted: the positives come 3rd, 4th, 5th: precisions 1/3, 2/4, 3/5, each for recall 1/3.
    assert_close(
        average_precision(&inverted, &labels).unwrap(),
        (1.0 / 3.0 + 2.0 / 4.0 + 3.0 / 5.0) / 3.0,
    );
}

#[test]
fn one_class_has_no_auroc_and_the_report_says_which_label() {
    let scores = [0.1, 0.9, 0.4];
    let labels = bools(&[1, 1, 1]);
    assert_eq!(auroc(&scores, &labels), None);
    assert_eq!(average_precision(&scores, &labels), None);
    assert_eq!(roc_curve(&scores, &labels), None);
    let err = ClassificationReport::new("test split", &scores, &labels).unwrap_err();
    assert_eq!(
        err,
        ReportError::OneClass {
            split: "test split".into(),
            label: 1,
            examples: 3
        }
    );
    assert!(
        err.to_string().contains("test split: only label 1 in 3 example(s)"),
        "{err}"
    );
    assert!(matches!(
        ClassificationReport::new("all rows", &[], &[]),
        Err(ReportError::Empty { .. })
    ));
}

/// Independent reference: the fraction of (positive, negative) pairs ranked right, ties 1/2.
fn pairwise_auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (&si, _) in scores.iter().zip(labels).filter(|&(_, &l)| l) {
        for (&sj, _) in scores.iter().zip(labels).filter(|&(_, &l)| !l) {
            pairs += 1.0;
            wins += if si > sj {
                1.0
            } else if si == sj {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / pairs
}

/// Independent reference: average precision from the definition, one threshold per distinct
/// score, by counting at each threshold.
fn thresholded_average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let mut thresholds: Vec<f64> = scores.to_vec();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    thresholds.dedup();
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let (mut ap, mut last_recall) = (0.0, 0.0);
    for t in thresholds {
        let tp = scores.iter().zip(labels).filter(|&(&s, &l)| s >= t && l).count() as f64;
        let predicted = scores.iter().filter(|&&s| s >= t).count() as f64;
        let recall = tp / positives;
        ap += (recall - last_recall) * (tp / predicted);
        last_recall = recall;
    }
    ap
}

#[test]
fn rank_auroc_and_roc_area_match_the_pairwise_count_on_random_scores_with_ties() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let n = rng.random_range(2..40);
        // One decimal: many ties.
        let scores: Vec<f64> = (0..n).map(|_| (rng.random::<f64>() * 10.0).round() / 10.0).collect();
        let mut labels: Vec<bool> = (0..n).map(|_| rng.random_bool(0.4)).collect();
        labels[0] = true;
        labels[1] = false;
        let want = pairwise_auroc(&scores, &labels);
        let got = auroc(&scores, &labels).unwrap();
        assert!((got - want).abs() < 1e-12, "auroc {got} vs pairwise {want}");
        // The trapezoid area under the ROC curve is the same number.
        let curve = roc_curve(&scores, &labels).unwrap();
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - want).abs() < 1e-12, "trapezoid {area} vs pairwise {want}");
        let ap = average_precision(&scores, &labels).unwrap();
        let ap_want = thresholded_average_precision(&scores, &labels);
        assert!((ap - ap_want).abs() < 1e-12, "AP {ap} vs thresholded {ap_want}");
        assert!((0.0..=1.0).contains(&ap));
    }
}
