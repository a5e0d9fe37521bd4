//! MSAMamba as burn-train sees it in MLM pre-training: one train step and one validation step.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{InferenceStep, SequenceOutput, TrainOutput, TrainStep};
use msamamba_kernels::KernelBackend;
use msamamba_model::MsaMamba;
use msamamba_model::mlm_loss::mlm_loss;
use msamamba_model::tokens::MASK;

use crate::windows::mlm_batch::MsaBatch;

/// The model plus how many micro-batches make one optimizer step.
#[derive(Module, Debug)]
pub struct MlmModel<B: Backend> {
    /// The language model.
    pub model: MsaMamba<B>,
    /// Gradient accumulation (`PretrainConfig::accumulate`): the loss is divided by this, so the
    /// accumulated gradient of N micro-batches is the gradient of their mean. A setting of the
    /// run, not a weight: skipped by the record, so checkpoints hold the model alone.
    #[module(skip)]
    pub accumulate: usize,
}

impl<B: KernelBackend> MlmModel<B> {
    /// Logits and metric inputs; targets in the output use the mask token for "no target"
    /// (burn's metrics skip one pad index, and the mask token is never a target).
    fn forward(&self, batch: MsaBatch<B>, row_sparse: bool) -> (Tensor<B, 1>, SequenceOutput<B>) {
        let logits = self.model.forward(batch.tokens, batch.row_keep, row_sparse);
        let loss = mlm_loss(logits.clone(), batch.targets.clone()).loss;
        let no_target = batch.targets.clone().lower_elem(0);
        let metric_targets = batch.targets.mask_fill(no_target, i64::from(MASK));
        (loss.clone(), SequenceOutput::new(loss, logits, None, metric_targets))
    }
}

impl<B: AutodiffBackend + KernelBackend> TrainStep for MlmModel<B> {
    type Input = MsaBatch<B>;
    type Output = SequenceOutput<B>;

    fn step(&self, batch: MsaBatch<B>) -> TrainOutput<SequenceOutput<B>> {
        crate::gpu_memory::release_unused::<B>(&batch.tokens.device());
        let row_sparse = batch.row_sparse;
        let (loss, output) = self.forward(batch, row_sparse);
        let grads = (loss / self.accumulate.max(1) as f64).backward();
        TrainOutput::new(self, grads, output)
    }
}

impl<B: KernelBackend> InferenceStep for MlmModel<B> {
    type Input = MsaBatch<B>;
    type Output = SequenceOutput<B>;

    fn step(&self, batch: MsaBatch<B>) -> SequenceOutput<B> {
        self.forward(batch, false).1
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
    use msamamba_model::MsaMambaConfig;

    use super::*;

    #[test]
    fn checkpoints_hold_the_weights_not_the_accumulation_setting() {
        let device = Default::default();
        let config = MsaMambaConfig::new()
            .with_d_model(8)
            .with_n_layers(1)
            .with_d_state(2)
            .with_n_heads(1);
        let model = config.init::<NdArray>(&device);
        let encode = |accumulate| {
            let model = MlmModel {
                model: model.clone(),
                accumulate,
            };
            let record = model.into_record();
            // The record's slot for the setting holds nothing (checked by its type).
            let _: burn::module::EmptyRecord = record.accumulate;
            NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
                .record(record, ())
                .expect("encodes")
        };
        // A loaded model takes the setting from the run's config, not from the file.
        let loaded = MlmModel {
            model: config.init::<NdArray>(&device),
            accumulate: 3,
        }
        .load_record(
            NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
                .load(encode(7), &device)
                .expect("decodes"),
        );
        assert_eq!(loaded.accumulate, 3);
    }
}
