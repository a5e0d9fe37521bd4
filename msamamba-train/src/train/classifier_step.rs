//! The classifier as burn-train sees it in fine-tuning: one train step (BCE on the pooled
//! logit) and one validation step, their outputs, and AUROC / AUPRC over a whole pass as
//! burn-train metrics.
//!
//! burn-train's own AUROC metric averages per-batch AUROCs (a batch of one class counts as 0),
//! which is not the AUROC of the pass; [`RankingMetric`] ranks every example of the pass
//! together with `classification_metrics`.

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::Transaction;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{
    Adaptor, ItemLazy, LossInput, Metric, MetricMetadata, MetricName, Numeric, NumericEntry, SerializedEntry,
};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use msamamba_kernels::KernelBackend;
use msamamba_model::pooler::MsaMambaClassifier;
use std::sync::Arc;

use crate::train::classification_metrics::{auroc, average_precision};
use crate::windows::classifier_batch::ClassifierBatch;

/// The classifier under training (burn-train's traits cannot be implemented on the model
/// crate's type here); checkpoints hold its record, `classifier.mpk` the classifier's.
#[derive(Module, Debug)]
pub struct ClassifierTraining<B: Backend> {
    /// Backbone, pooler and head.
    pub classifier: MsaMambaClassifier<B>,
}

/// What one step gives the metrics.
pub struct ClassifierOutput<B: Backend> {
    /// Mean BCE of the batch: \[1\].
    pub loss: Tensor<B, 1>,
    /// Probability of label 1 per example: \[B\].
    pub probabilities: Tensor<B, 1>,
    /// 0/1 labels: \[B\] Int.
    pub labels: Tensor<B, 1, Int>,
}

impl<B: KernelBackend> ClassifierTraining<B> {
    fn forward(&self, batch: ClassifierBatch<B>) -> ClassifierOutput<B> {
        let logits = self.classifier.forward(batch.tokens, batch.row_keep);
        let loss = self.classifier.loss(logits.clone(), batch.labels.clone());
        ClassifierOutput {
            loss,
            probabilities: sigmoid(logits),
            labels: batch.labels,
        }
    }
}

impl<B: AutodiffBackend + KernelBackend> TrainStep for ClassifierTraining<B> {
    type Input = ClassifierBatch<B>;
    type Output = ClassifierOutput<B>;

    fn step(&self, batch: ClassifierBatch<B>) -> TrainOutput<ClassifierOutput<B>> {
        crate::gpu_memory::release_unused::<B>(&batch.tokens.device());
        let output = self.forward(batch);
        let grads = output.loss.backward();
        TrainOutput::new(self, grads, output)
    }
}

impl<B: KernelBackend> InferenceStep for ClassifierTraining<B> {
    type Input = ClassifierBatch<B>;
    type Output = ClassifierOutput<B>;

    fn step(&self, batch: ClassifierBatch<B>) -> ClassifierOutput<B> {
        self.forward(batch)
    }
}

/// A step's output read back to the host.
#[derive(Debug, Clone)]
pub struct ClassifierScores {
    /// Mean BCE of the batch.
    pub loss: f64,
    /// Probability of label 1 per example.
    pub probabilities: Vec<f64>,
    /// Labels.
    pub labels: Vec<bool>,
}

impl<B: Backend> ItemLazy for ClassifierOutput<B> {
    type ItemSync = ClassifierScores;

    fn sync(self) -> ClassifierScores {
        let [loss, probabilities, labels] = Transaction::default()
            .register(self.loss)
            .register(self.probabilities)
            .register(self.labels)
            .execute()
            .try_into()
            .expect("three tensors registered, three read");
        let floats = |data: TensorData| data.convert::<f64>().to_vec::<f64>().unwrap_or_default();
        ClassifierScores {
            loss: floats(loss).first().copied().unwrap_or(f64::NAN),
            probabilities: floats(probabilities),
            labels: labels
                .convert::<i64>()
                .to_vec::<i64>()
                .unwrap_or_default()
                .into_iter()
                .map(|l| l == 1)
                .collect(),
        }
    }
}

impl Adaptor<LossInput<NdArray>> for ClassifierScores {
    fn adapt(&self) -> LossInput<NdArray> {
        LossInput::new(Tensor::from_floats([self.loss as f32], &Default::default()))
    }
}

impl Adaptor<ClassifierScores> for ClassifierScores {
    fn adapt(&self) -> ClassifierScores {
        self.clone()
    }
}

/// Which ranking measure a [`RankingMetric`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Area under the ROC curve.
    Auroc,
    /// Average precision (area under the precision-recall curve).
    Auprc,
}

/// AUROC or AUPRC of every example seen in the current pass, ranked together.
///
/// burn-train aggregates a metric over an epoch as the count-weighted mean of the entries each
/// update serializes (early stopping and best-checkpoint selection read that mean). Each update
/// here serializes the change of `value x examples` since the last one, spread over its batch,
/// so that the mean over the pass telescopes to the measure of the whole pass, exactly.
#[derive(Debug, Clone)]
pub struct RankingMetric {
    ranking: Ranking,
    name: MetricName,
    probabilities: Vec<f64>,
    labels: Vec<bool>,
    /// Sum of `value x count` serialized so far this pass.
    reported: f64,
    /// The measure of the pass so far; NaN while one class is missing.
    current: f64,
}

impl RankingMetric {
    /// A metric reporting `ranking`.
    pub fn new(ranking: Ranking) -> Self {
        let name = match ranking {
            Ranking::Auroc => "AUROC",
            Ranking::Auprc => "AUPRC",
        };
        Self {
            ranking,
            name: Arc::new(name.to_string()),
            probabilities: Vec::new(),
            labels: Vec::new(),
            reported: 0.0,
            current: f64::NAN,
        }
    }
}

impl Metric for RankingMetric {
    type Input = ClassifierScores;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(&mut self, scores: &ClassifierScores, _metadata: &MetricMetadata) -> SerializedEntry {
        self.probabilities.extend_from_slice(&scores.probabilities);
        self.labels.extend_from_slice(&scores.labels);
        let measure = match self.ranking {
            Ranking::Auroc => auroc(&self.probabilities, &self.labels),
            Ranking::Auprc => average_precision(&self.probabilities, &self.labels),
        };
        let count = scores.labels.len().max(1);
        let mut share = 0.0;
        if let Some(measure) = measure {
            let total = measure * self.labels.len() as f64;
            share = (total - self.reported) / count as f64;
            self.reported = total;
            self.current = measure;
        }
        let serialized = NumericEntry::Aggregated {
            aggregated_value: share,
            count,
        }
        .serialize();
        SerializedEntry::new(format!("epoch {:.4}", self.current), serialized)
    }

    fn clear(&mut self) {
        *self = Self::new(self.ranking);
    }
}

impl Numeric for RankingMetric {
    fn value(&self) -> NumericEntry {
        NumericEntry::Value(self.current)
    }

    fn running_value(&self) -> NumericEntry {
        NumericEntry::Value(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::Progress;

    /// The count-weighted mean burn-train takes of a pass's serialized entries.
    fn pass_mean(entries: &[SerializedEntry]) -> f64 {
        let (sum, count) = entries
            .iter()
            .map(
                |e| match NumericEntry::deserialize(&e.serialized).expect("numeric entry") {
                    NumericEntry::Aggregated {
                        aggregated_value,
                        count,
                    } => (aggregated_value * count as f64, count),
                    NumericEntry::Value(v) => (v, 1),
                },
            )
            .fold((0.0, 0), |(s, n), (v, c)| (s + v, n + c));
        sum / count as f64
    }

    #[test]
    fn the_mean_over_a_pass_is_the_measure_of_the_whole_pass() {
        // Batches of 3, 4, 1 and 2; the first holds one class only.
        let batches: [&[(f64, bool)]; 4] = [
            &[(0.9, true), (0.2, true), (0.6, true)],
            &[(0.1, false), (0.7, false), (0.8, true), (0.3, false)],
            &[(0.65, false)],
            &[(0.4, true), (0.05, false)],
        ];
        let all: Vec<(f64, bool)> = batches.iter().flat_map(|b| b.iter().copied()).collect();
        let (p, l): (Vec<f64>, Vec<bool>) = all.into_iter().unzip();
        for (ranking, want) in [
            (Ranking::Auroc, auroc(&p, &l).unwrap()),
            (Ranking::Auprc, average_precision(&p, &l).unwrap()),
        ] {
            let mut metric = RankingMetric::new(ranking);
            let metadata = MetricMetadata {
                progress: Progress::new(0, 1),
                global_progress: Progress::new(0, 1),
                iteration: None,
                lr: None,
            };
            let entries: Vec<SerializedEntry> = batches
                .iter()
                .map(|batch| {
                    let scores = ClassifierScores {
                        loss: 0.0,
                        probabilities: batch.iter().map(|b| b.0).collect(),
                        labels: batch.iter().map(|b| b.1).collect(),
                    };
                    metric.update(&scores, &metadata)
                })
                .collect();
            assert!((pass_mean(&entries) - want).abs() < 1e-12, "{ranking:?}");
            assert_eq!(metric.value().current(), want, "{ranking:?}");
            // A batch-wise mean would differ: the first batch has no AUROC at all.
            metric.clear();
            assert!(metric.value().current().is_nan());
        }
    }
}
