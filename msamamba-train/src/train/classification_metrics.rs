//! Binary classification metrics of fine-tuning: AUROC, average precision (AUPRC), accuracy,
//! and the ROC curve.
//!
//! Tied scores are one threshold: AUROC gives a tied positive-negative pair half a point (the
//! Mann-Whitney U with averaged ranks), and average precision takes the precision at the end of
//! a tied group for all the recall it gains, as scikit-learn's `roc_auc_score` and
//! `average_precision_score` do.

use serde::{Deserialize, Serialize};

/// Area under the ROC curve from ranks: `(R+ - P(P+1)/2) / (P N)`, where `R+` is the sum of
/// the positives' ranks among all scores (tied scores share their average rank), P the number
/// of positives and N of negatives. `None` when either class is absent.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let (positives, negatives) = class_counts(scores, labels)?;
    let order = ascending(scores);
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        // order[i..j] holds one tied score: ranks i+1 ..= j, averaged.
        let j = tie_end(scores, &order, i);
        let rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += rank * order[i..j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Average precision: the sum over thresholds (distinct scores, highest first) of the recall
/// gained times the precision there. `None` without positives or negatives.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let (positives, _) = class_counts(scores, labels)?;
    let mut ap = 0.0;
    let (mut tp, mut fp) = (0usize, 0usize);
    for (group_tp, group_fp) in groups_descending(scores, labels) {
        tp += group_tp;
        fp += group_fp;
        if group_tp > 0 {
            ap += group_tp as f64 / positives as f64 * (tp as f64 / (tp + fp) as f64);
        }
    }
    Some(ap)
}

/// Fraction of examples whose prediction `score >= threshold` equals the label; 0 when empty.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn accuracy(scores: &[f64], labels: &[bool], threshold: f64) -> f64 {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    if scores.is_empty() {
        return 0.0;
    }
    let right = scores
        .iter()
        .zip(labels)
        .filter(|&(&s, &l)| (s >= threshold) == l)
        .count();
    right as f64 / scores.len() as f64
}

/// The ROC curve as (false positive rate, true positive rate) points, from (0, 0) through one
/// point per distinct score (highest first) to (1, 1). `None` when either class is absent.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Option<Vec<(f64, f64)>> {
    let (positives, negatives) = class_counts(scores, labels)?;
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (group_tp, group_fp) in groups_descending(scores, labels) {
        tp += group_tp;
        fp += group_fp;
        points.push((fp as f64 / negatives as f64, tp as f64 / positives as f64));
    }
    Some(points)
}

/// The metrics reported by `msamamba finetune` and `msamamba evaluate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Which examples: `test split` or `all rows`.
    pub split: String,
    /// Number of examples.
    pub examples: usize,
    /// Examples labelled 1.
    pub positives: usize,
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Average precision (area under the precision-recall curve).
    pub auprc: f64,
    /// Accuracy of predicting 1 when the probability is at least 0.5.
    pub accuracy: f64,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    /// AUROC and AUPRC need both classes.
    #[error("{split}: only label {label} in {examples} example(s); AUROC and AUPRC need both classes")]
    OneClass {
        /// Which examples.
        split: String,
        /// The one label present.
        label: u8,
        /// Number of examples.
        examples: usize,
    },
    /// There is nothing to evaluate.
    #[error("{split}: no examples")]
    Empty {
        /// Which examples.
        split: String,
    },
}

impl ClassificationReport {
    /// Metrics of predicted probabilities against labels; accuracy at probability 0.5.
    ///
    /// # Panics
    /// When `probabilities` and `labels` differ in length.
    pub fn new(split: &str, probabilities: &[f64], labels: &[bool]) -> Result<Self, ReportError> {
        check_both_classes(split, labels)?;
        let (Some(auroc), Some(auprc)) = (auroc(probabilities, labels), average_precision(probabilities, labels))
        else {
            unreachable!("both classes are present");
        };
        Ok(Self {
            split: split.into(),
            examples: labels.len(),
            positives: labels.iter().filter(|&&l| l).count(),
            auroc,
            auprc,
            accuracy: accuracy(probabilities, labels, 0.5),
        })
    }
}

/// Fails unless `labels` hold both classes: what AUROC and AUPRC need.
pub fn check_both_classes(split: &str, labels: &[bool]) -> Result<(), ReportError> {
    match labels.first() {
        None => Err(ReportError::Empty { split: split.into() }),
        Some(&first) if labels.iter().all(|&l| l == first) => Err(ReportError::OneClass {
            split: split.into(),
            label: u8::from(first),
            examples: labels.len(),
        }),
        Some(_) => Ok(()),
    }
}

/// (positives, negatives), or `None` when either is zero.
fn class_counts(scores: &[f64], labels: &[bool]) -> Option<(usize, usize)> {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    (positives > 0 && negatives > 0).then_some((positives, negatives))
}

/// Indices of `scores` in ascending order (total order: NaN sorts last).
fn ascending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order
}

/// End (exclusive) of the run of scores equal to `scores[order[i]]` starting at `i`.
fn tie_end(scores: &[f64], order: &[usize], i: usize) -> usize {
    let value = scores[order[i]];
    let mut j = i + 1;
    while j < order.len() && scores[order[j]] == value {
        j += 1;
    }
    j
}

/// (positives, negatives) of each distinct score, highest score first.
fn groups_descending(scores: &[f64], labels: &[bool]) -> Vec<(usize, usize)> {
    let mut order = ascending(scores);
    order.reverse();
    let mut groups = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let j = tie_end(scores, &order, i);
        let tp = order[i..j].iter().filter(|&&k| labels[k]).count();
        groups.push((tp, j - i - tp));
        i = j;
    }
    groups
}
