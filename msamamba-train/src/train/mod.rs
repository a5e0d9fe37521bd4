//! Training through burn-train's Learner: pre-training (MLM) and fine-tuning (classifier), their
//! steps, schedule, optimizer, checkpoints and run directories, metrics and the baseline.

pub mod adamw;
pub mod baseline;
pub mod checkpoint_probe;
pub mod checkpoint_recorder;
pub mod classification_metrics;
pub mod classifier_step;
pub mod config_file;
pub mod finetune;
pub mod memory_estimate;
pub mod metrics_log;
pub mod mlm_step;
pub mod precision;
pub mod pretrain;
pub mod run_dir;
pub mod run_health;
pub mod schedule;
pub mod weight_decay;
pub mod weights;
