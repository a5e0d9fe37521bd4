//! Data, batches and training for MSAMamba; the `msamamba` binary lives in `src/main.rs`.

pub mod alignment;
pub mod atomic_output;
pub mod atomic_recorder;
pub mod baseline;
pub mod batcher;
pub mod chart;
pub mod classification_metrics;
pub mod classifier_batch;
pub mod classifier_step;
pub mod data;
pub mod finetune;
pub mod infer;
pub mod labelled_regions;
pub mod loader;
pub mod loss_curve;
pub mod metrics_log;
pub mod mlm_model;
pub mod pretrain;
pub mod roc_plot;
pub mod row_order;
pub mod schedule;
pub mod source;
pub mod vcf;
pub mod weight_decay;
pub mod windows;
