//! What training shows and keeps: a TUI in a terminal, plain lines and a progress bar on stderr
//! otherwise, and always a per-step TSV of the run's metrics (pre-training: loss, accuracy,
//! perplexity, learning rate; fine-tuning: loss, AUROC, AUPRC, learning rate), for the loss
//! curve and tests. A non-finite loss or a failed device stops the run.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};
use burn::train::Interrupter;
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

use indicatif::ProgressBar;

use crate::atomic_output::AtomicOutput;
use crate::progress;
use crate::train::run_health::RunHealth;

/// One TSV column: the metric whose lower-cased name contains `metric`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The column's header.
    pub name: &'static str,
    /// What the metric's name contains.
    pub metric: &'static str,
    /// How a validation pass's row is made of its batches' values.
    pub pass: PassValue,
}

/// How the validation row of a column is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassValue {
    /// The mean of the batches' values (per-batch metrics: loss, accuracy).
    MeanOfBatches,
    /// The value after the last batch (metrics of the whole pass so far: AUROC).
    Last,
}

const fn column(name: &'static str, metric: &'static str, pass: PassValue) -> Column {
    Column { name, metric, pass }
}

/// Pre-training's columns.
pub const PRETRAIN_COLUMNS: &[Column] = &[
    column("loss", "loss", PassValue::MeanOfBatches),
    column("accuracy", "accuracy", PassValue::MeanOfBatches),
    column("perplexity", "perplexity", PassValue::MeanOfBatches),
    column("lr", "learning rate", PassValue::MeanOfBatches),
];

/// Fine-tuning's columns.
pub const FINETUNE_COLUMNS: &[Column] = &[
    column("loss", "loss", PassValue::MeanOfBatches),
    column("auroc", "auroc", PassValue::Last),
    column("auprc", "auprc", PassValue::Last),
    column("lr", "learning rate", PassValue::MeanOfBatches),
];

/// Renders metrics and writes `train.tsv` / `valid.tsv` (step, then one column per metric).
pub struct MetricsLog {
    columns: &'static [Column],
    names: HashMap<MetricId, usize>,
    current: Vec<Option<f64>>,
    train: BufWriter<File>,
    valid: BufWriter<File>,
    tui: Option<TuiMetricsRendererWrapper>,
    /// Steps done, on stderr, when there is no TUI (stdout redirected).
    bar: Option<ProgressBar>,
    interrupter: Interrupter,
    health: RunHealth,
    every: usize,
    batches_per_epoch: usize,
    /// The run's last step, where its shorter last epoch ends.
    last_step: usize,
    /// Devices training data-parallel: each logs its own batches.
    devices: usize,
    /// Sums of the validation metrics over the batches of the current validation pass.
    valid_sums: Vec<f64>,
    /// Validation batches summed so far.
    valid_batches: usize,
}

impl MetricsLog {
    /// Logs `columns` into `dir` (appending, so a resumed run continues the files from its `checkpoint`
    /// epoch: rows past it, of a run killed before its next checkpoint, are dropped, as those
    /// steps are trained again); prints a line every
    /// `every` steps when stdout is not a terminal. burn-train counts iterations per epoch, one
    /// per batch of each of `devices`: `batches_per_epoch` turns them into global steps, up to
    /// `last_step`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dir: &Path,
        columns: &'static [Column],
        interrupter: Interrupter,
        every: usize,
        batches_per_epoch: usize,
        last_step: usize,
        devices: usize,
        checkpoint: Option<usize>,
    ) -> Result<(Self, RunHealth)> {
        let open = |name: &str| -> Result<BufWriter<File>> {
            let path = dir.join(name);
            if let Some(epoch) = checkpoint {
                keep_rows_up_to(&path, epoch * batches_per_epoch)?;
            }
            let fresh = !path.exists();
            let file = File::options()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            let mut file = BufWriter::new(file);
            if fresh {
                let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
                writeln!(file, "step\t{}", names.join("\t"))?;
            }
            Ok(file)
        };
        let health = RunHealth::default();
        let tui = std::io::stdout()
            .is_terminal()
            .then(|| TuiMetricsRendererWrapper::new(interrupter.clone(), checkpoint));
        let bar = tui.is_none().then(|| {
            let bar = progress::bar(last_step as u64, "steps");
            bar.set_position((checkpoint.unwrap_or(0) * batches_per_epoch) as u64);
            bar
        });
        let log = Self {
            columns,
            names: HashMap::new(),
            current: vec![None; columns.len()],
            train: open("train.tsv")?,
            valid: open("valid.tsv")?,
            tui,
            bar,
            interrupter,
            health: health.clone(),
            every: every.max(1),
            batches_per_epoch,
            last_step,
            devices: devices.max(1),
            valid_sums: vec![0.0; columns.len()],
            valid_batches: 0,
        };
        Ok((log, health))
    }

    fn record(&mut self, state: &MetricState) {
        if let MetricState::Numeric(entry, value) = state
            && let Some(&column) = self.names.get(&entry.metric_id)
        {
            self.current[column] = Some(match value {
                NumericEntry::Value(v) => *v,
                NumericEntry::Aggregated { aggregated_value, .. } => *aggregated_value,
            });
        }
    }

    fn flush_row(&mut self, train: bool, step: usize) -> std::io::Result<String> {
        // The file keeps every digit (tests compare the learning rate with its formula).
        let exact: Vec<String> = self
            .current
            .iter()
            .map(|v| v.map_or("nan".into(), |v| v.to_string()))
            .collect();
        let file = if train { &mut self.train } else { &mut self.valid };
        writeln!(file, "{step}\t{}", exact.join("\t"))?;
        file.flush()?;
        let shown = self
            .current
            .iter()
            .map(|v| v.map_or("nan".into(), |v| format!("{v:.4}")));
        let line = self
            .columns
            .iter()
            .zip(shown)
            .map(|(c, v)| format!("{} {v}", c.name))
            .collect::<Vec<_>>()
            .join("  ");
        Ok(line)
    }
}

/// Drops the rows of the metrics file at `path` whose step is past `last`, if it has any.
fn keep_rows_up_to(path: &Path, last: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(()); // not written yet
    };
    // The header's first field is not a number: it stays.
    let step = |line: &str| line.split('\t').next().and_then(|s| s.parse::<usize>().ok());
    if text.lines().all(|line| step(line).is_none_or(|s| s <= last)) {
        return Ok(());
    }
    let mut out = AtomicOutput::create(path, &[])?;
    for line in text.lines().filter(|line| step(line).is_none_or(|s| s <= last)) {
        writeln!(out.writer(), "{line}").with_context(|| format!("writing {}", path.display()))?;
    }
    out.commit()
}

impl MetricsRendererTraining for MetricsLog {
    fn update_train(&mut self, state: MetricState) {
        self.record(&state);
        if let Some(tui) = &mut self.tui {
            tui.update_train(state);
        }
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(&state);
        if let Some(tui) = &mut self.tui {
            tui.update_valid(state);
        }
    }

    fn render_train(&mut self, item: TrainingProgress, progress_indicators: Vec<ProgressType>) {
        let epoch = item.global_progress.items_processed.max(1);
        let step = (epoch - 1) * self.batches_per_epoch + item.iteration.unwrap_or(0).div_ceil(self.devices);
        let loss = self.current[0];
        let line = self
            .flush_row(true, step)
            .unwrap_or_else(|e| format!("(metrics log not written: {e})"));
        if let Some(why) = self.health.step_ended(step, loss) {
            self.interrupter.stop(Some(why));
        }
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
        }
        match &mut self.tui {
            Some(tui) => tui.render_train(item, progress_indicators),
            None if step.is_multiple_of(self.every) => println!("train step {step}  {line}"),
            None => {}
        }
    }

    fn render_valid(&mut self, item: TrainingProgress, progress_indicators: Vec<ProgressType>) {
        // One row per validation pass: the mean over its batches, at the epoch's last step.
        for (sum, value) in self.valid_sums.iter_mut().zip(&self.current) {
            *sum += value.unwrap_or(f64::NAN);
        }
        self.valid_batches += 1;
        let done = item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed >= p.items_total);
        if done {
            let step = (item.global_progress.items_processed * self.batches_per_epoch).min(self.last_step);
            if let Some(why) = self.health.step_ended(step, None) {
                self.interrupter.stop(Some(why));
            }
            let batches = self.valid_batches as f64;
            for ((current, sum), column) in self.current.iter_mut().zip(&self.valid_sums).zip(self.columns) {
                if column.pass == PassValue::MeanOfBatches {
                    *current = Some(sum / batches);
                }
            }
            let line = self
                .flush_row(false, step)
                .unwrap_or_else(|e| format!("(metrics log not written: {e})"));
            if self.tui.is_none() {
                println!("valid at step {step}  {line}");
            }
            self.valid_sums.fill(0.0);
            self.valid_batches = 0;
        }
        if let Some(tui) = &mut self.tui {
            tui.render_valid(item, progress_indicators);
        }
    }
}

impl MetricsRendererEvaluation for MetricsLog {
    fn render_test(&mut self, item: EvaluationProgress, progress_indicators: Vec<ProgressType>) {
        if let Some(tui) = &mut self.tui {
            tui.render_test(item, progress_indicators);
        }
    }

    fn update_test(&mut self, name: EvaluationName, state: MetricState) {
        if let Some(tui) = &mut self.tui {
            tui.update_test(name, state);
        }
    }
}

impl MetricsRenderer for MetricsLog {
    fn manual_close(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(tui) = &mut self.tui {
            tui.manual_close();
        }
    }

    fn register_metric(&mut self, definition: MetricDefinition) {
        let name = definition.name.to_lowercase();
        let column = self
            .columns
            .iter()
            .position(|c| name.contains(c.metric) || (c.name == "lr" && name == "lr"));
        if let Some(column) = column {
            self.names.insert(definition.metric_id.clone(), column);
        }
        if let Some(tui) = &mut self.tui {
            tui.register_metric(definition);
        }
    }
}
