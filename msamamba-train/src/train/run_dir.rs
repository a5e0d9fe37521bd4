//! A training run's directory: its config, its burn-train checkpoints (which are complete and
//! usable, which a resumed run starts from, which are removed after a bad step), its lock, and
//! how a burn-train run ended. Pre-training and fine-tuning share it.
//!
//! A directory holding any run's files is only ever continued (`--resume`) or, with
//! `--overwrite`, emptied of them first: a fresh run writing among an old run's files would
//! append to its metrics and replace its model and config piecemeal.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::record::Recorder;
use burn::tensor::backend::AutodiffBackend;
use burn::train::Interrupter;

use crate::train::checkpoint_recorder::CheckpointRecorder;
use crate::train::run_health::DeviceFailed;
use crate::train::weight_decay::SelectiveAdamW;
use crate::windows::epoch_loader::LoadFailure;
use msamamba_kernels::AdamWBackend;

/// The files of one checkpoint, as burn-train names them.
const CHECKPOINT_KINDS: [&str; 3] = ["model", "optim", "scheduler"];

/// The files and folders a run writes into its directory (burn-train's metric logs in
/// `train/` and `valid/`); `.lock` is not one: a running run holds it.
const RUN_FILES: [&str; 15] = [
    "config.json",
    "train.tsv",
    "valid.tsv",
    "model.mpk",
    "summary.json",
    "loss_curve.png",
    "loss_curve.svg",
    "classifier.mpk",
    "metrics.json",
    "roc.png",
    "roc.svg",
    "experiment.log",
    "checkpoint",
    "train",
    "valid",
];

/// How a run treats its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    /// A new run: the directory must hold no run's files.
    Fresh,
    /// Continue the run in the directory from its newest usable checkpoint (`--resume`).
    Resume,
    /// A new run, removing the run files the directory holds first (`--overwrite`).
    Overwrite,
}

impl RunStart {
    /// From the `--resume` and `--overwrite` flags (which exclude each other).
    pub fn of(resume: bool, overwrite: bool) -> Self {
        match (resume, overwrite) {
            (true, _) => Self::Resume,
            (false, true) => Self::Overwrite,
            (false, false) => Self::Fresh,
        }
    }
}

/// Where a run's files go.
pub struct RunDir {
    /// The output directory.
    pub dir: PathBuf,
}

impl RunDir {
    /// `dir/checkpoint`, where burn-train writes `model-E.mpk`, `optim-E.mpk`, `scheduler-E.mpk`.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// The last epoch with a complete checkpoint (model, optimizer and scheduler).
    pub fn last_checkpoint(&self) -> Option<usize> {
        self.complete_checkpoints().last().copied()
    }

    /// Epochs with a complete checkpoint, in order.
    fn complete_checkpoints(&self) -> Vec<usize> {
        let Ok(entries) = std::fs::read_dir(self.checkpoints()) else {
            return Vec::new();
        };
        let complete = |&e: &usize| CHECKPOINT_KINDS.iter().all(|k| self.checkpoint_path(k, e).exists());
        let mut epochs: Vec<usize> = entries
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("model-")?
                    .strip_suffix(".mpk")?
                    .parse()
                    .ok()
            })
            .filter(complete)
            .collect();
        epochs.sort_unstable();
        epochs
    }

    /// The `kind` file (`model`, `optim`, `scheduler`) of checkpoint `epoch`.
    pub fn checkpoint_path(&self, kind: &str, epoch: usize) -> PathBuf {
        self.checkpoints().join(format!("{kind}-{epoch}.mpk"))
    }

    /// Removes every complete checkpoint but those `keep(epoch, last epoch)` accepts.
    pub fn keep_checkpoints(&self, keep: impl Fn(usize, usize) -> bool) -> Result<()> {
        let epochs = self.complete_checkpoints();
        let last = epochs.last().copied().unwrap_or(0);
        for epoch in epochs.into_iter().filter(|&e| !keep(e, last)) {
            self.remove_checkpoint(epoch)?;
        }
        Ok(())
    }

    /// Removes checkpoint `epoch`, whichever of its files exist.
    fn remove_checkpoint(&self, epoch: usize) -> Result<()> {
        for kind in CHECKPOINT_KINDS {
            let path = self.checkpoint_path(kind, epoch);
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Fails unless checkpoint `epoch` reads back whole: its weights through `load_model` (which
    /// checks they fit the run's config and are finite), its optimizer state as AdamW's for a
    /// model `M`, and its scheduler (burn-train panics on a checkpoint it cannot read).
    pub fn check_checkpoint<B, M>(
        &self,
        epoch: usize,
        device: &B::Device,
        load_model: impl Fn(&Path) -> Result<()>,
    ) -> Result<()>
    where
        B: AutodiffBackend,
        B::InnerBackend: AdamWBackend,
        M: AutodiffModule<B>,
    {
        load_model(&self.checkpoint_path("model", epoch))?;
        let recorder = CheckpointRecorder::default();
        let unreadable = |kind: &str| format!("{}: unreadable", self.checkpoint_path(kind, epoch).display());
        Recorder::<B>::load::<<SelectiveAdamW<M, B> as Optimizer<M, B>>::Record>(
            &recorder,
            self.checkpoint_path("optim", epoch),
            device,
        )
        .with_context(|| unreadable("optim"))?;
        Recorder::<B>::load::<usize>(&recorder, self.checkpoint_path("scheduler", epoch), device)
            .with_context(|| unreadable("scheduler"))?;
        Ok(())
    }

    /// The newest checkpoint that `check` accepts. Newer ones it refuses (a file damaged on
    /// disk, weights a diverging step left NaN) are passed over with a warning, and with
    /// `remove`, removed, so that nothing takes them for the last good one.
    pub fn newest_usable_checkpoint(&self, remove: bool, check: impl Fn(usize) -> Result<()>) -> Result<Option<usize>> {
        for epoch in self.complete_checkpoints().into_iter().rev() {
            // burn's record errors span lines; a warning is one.
            let why = |err: anyhow::Error| format!("{err:#}").replace('\n', " ");
            match check(epoch) {
                Ok(()) => return Ok(Some(epoch)),
                Err(err) if remove => {
                    tracing::warn!("checkpoint {epoch} removed: {}", why(err));
                    self.remove_checkpoint(epoch)?;
                }
                Err(err) => tracing::warn!("checkpoint {epoch} passed over: {}", why(err)),
            }
        }
        Ok(None)
    }

    /// The run files (see `RUN_FILES`) the directory holds, by name, folders ending in `/`.
    pub fn run_files(&self) -> Vec<String> {
        RUN_FILES
            .iter()
            .filter_map(|name| {
                let path = self.dir.join(name);
                let meta = std::fs::symlink_metadata(&path).ok()?;
                if !meta.is_dir() {
                    return Some(name.to_string());
                }
                // burn-train's metric logs are `epoch-N` folders: a `train/` of anything else is
                // not the run's to remove.
                let logs = matches!(*name, "train" | "valid");
                let burn_logs = || {
                    std::fs::read_dir(&path).is_ok_and(|entries| {
                        entries
                            .filter_map(|e| e.ok())
                            .all(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
                    })
                };
                (!logs || burn_logs()).then(|| format!("{name}/"))
            })
            .collect()
    }

    /// Refuses a directory holding a run's files, for a run that does not continue it.
    pub fn refuse_existing_run(&self) -> Result<()> {
        let found = self.run_files();
        if !found.is_empty() {
            bail!(
                "{} holds a run ({}): pass --resume to continue it, --overwrite to remove those files and start again, or choose another --out",
                self.dir.display(),
                found.join(", ")
            );
        }
        Ok(())
    }

    /// Removes the run files the directory holds, saying which on one line; leaves every other
    /// file (an input kept beside the run) and `.lock`, which the caller holds.
    pub fn remove_run_files(&self) -> Result<()> {
        let found = self.run_files();
        if found.is_empty() {
            return Ok(());
        }
        tracing::warn!("--overwrite: removing {} from {}", found.join(", "), self.dir.display());
        for name in &found {
            let path = self.dir.join(name.trim_end_matches('/'));
            let removed = if name.ends_with('/') {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("--overwrite: removing {}", path.display()))?;
        }
        Ok(())
    }

    /// Makes the directory ready for a run started as `start`, once it is locked: the checkpoint
    /// a resumed run continues from; none for a fresh run, which refuses a directory holding a
    /// run's files, or for an overwriting run, which removes them.
    pub fn start_epoch(&self, start: RunStart, check: impl Fn(usize) -> Result<()>) -> Result<Option<usize>> {
        match start {
            RunStart::Resume => self.resumed_epoch(check).map(Some),
            RunStart::Fresh => self.refuse_existing_run().map(|()| None),
            RunStart::Overwrite => self.remove_run_files().map(|()| None),
        }
    }

    /// The checkpoint a resumed run continues from: the newest one `check` accepts.
    fn resumed_epoch(&self, check: impl Fn(usize) -> Result<()>) -> Result<usize> {
        self.newest_usable_checkpoint(false, check)?.with_context(|| {
            format!(
                "--resume: no usable checkpoint in {} (to start the run again, pass --overwrite instead)",
                self.checkpoints().display()
            )
        })
    }

    /// For a run resumed from `start_epoch`, the checkpoint to continue from once `good` has
    /// judged it too: a check that needs the run's data (a forward pass), so it comes after the
    /// one [`RunDir::start_epoch`] makes. Checkpoints `good` refuses are passed over with a warning.
    pub fn confirm_start(
        &self,
        start_epoch: Option<usize>,
        good: impl Fn(usize) -> Result<()>,
    ) -> Result<Option<usize>> {
        match start_epoch {
            Some(_) => self.resumed_epoch(good).map(Some),
            None => Ok(None),
        }
    }

    /// After burn-train's `launch`: removes the checkpoints of epochs that ended after a
    /// non-finite loss, a failed device or a failed read (the metrics arrive asynchronously, so a later epoch may
    /// have been checkpointed before training stopped) and any newer one `check` refuses (a step
    /// can leave non-finite weights before any loss shows it); then fails if the run did not
    /// finish for any reason but a non-finite loss, which the caller reports.
    pub fn settle(&self, end: RunEnd, check: impl Fn(usize) -> Result<()>) -> Result<()> {
        // Epochs are 1-based, as burn-train numbers its checkpoints.
        let last_good = [
            end.non_finite_at.map(|step| (step - 1) / end.batches_per_epoch),
            end.device_failed
                .as_ref()
                .map(|failed| (failed.step - 1) / end.batches_per_epoch),
            end.load_failure.as_ref().map(|failure| failure.epoch),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(last_good) = last_good {
            for epoch in last_good + 1..=end.epochs {
                self.remove_checkpoint(epoch)?;
            }
        }
        // Checking a checkpoint loads it onto the device, which may be the one that failed.
        if let Some(failed) = end.device_failed {
            let hint = if failed.reason.starts_with("out of memory") {
                "; to fit, try a smaller --batch-size or --window, --row-keep below 1, --checkpointing balanced, or --precision bf16 (CUDA from compute capability 8.0)"
            } else {
                ""
            };
            let kept = match self.last_checkpoint() {
                Some(epoch) => format!("the last good checkpoint is checkpoint {epoch} (--resume continues from it)"),
                None => "no checkpoint was kept".to_string(),
            };
            bail!(
                "training stopped at step {}: {}{hint}; nothing of that step was saved, {kept}",
                failed.step,
                failed.reason
            );
        }
        self.newest_usable_checkpoint(true, check)?;
        if let Some(failure) = end.load_failure {
            return Err(failure
                .error
                .context("training stopped: a window could not be read; checkpoints before it are kept"));
        }
        // burn-train stops through the interrupter, with its message, when a checkpoint cannot
        // be written (a full disk): the run did not finish, whatever `launch` returned.
        if end.non_finite_at.is_none()
            && let Some(message) = end.interrupter.get_message()
        {
            bail!(
                "training stopped: {}; the checkpoints before it are kept (--resume continues from them)",
                recorder_words(&message)
            );
        }
        Ok(())
    }

    /// The final model weights.
    pub fn final_model(&self) -> PathBuf {
        self.dir.join("model.mpk")
    }

    /// Locks the directory for this run (until the returned file is dropped or the process
    /// ends, however it ends): two runs writing one directory would interleave their files.
    pub fn lock(&self) -> Result<std::fs::File> {
        let path = self.dir.join(".lock");
        let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "{} is in use by another run ({} is locked): wait for it to end, or choose another --out",
                self.dir.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(err)) => Err(err).with_context(|| format!("locking {}", path.display())),
        }
    }

    /// Refuses a directory whose `config.json` belongs to another kind of run than `kind` (a
    /// run's config has `key`: `model` for pre-training, `classifier` for fine-tuning), so that
    /// writing this run's config never overwrites it; `--overwrite` (`start`) removes it.
    pub fn refuse_other_run(&self, kind: &str, key: &str, start: RunStart) -> Result<()> {
        if start == RunStart::Overwrite {
            return Ok(());
        }
        let path = self.dir.join("config.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let ours = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|config| config.get(key).is_some());
        if !ours {
            bail!(
                "{} holds another run (its config.json is not a {kind} config): choose another --out, or pass --overwrite to remove it",
                self.dir.display()
            );
        }
        Ok(())
    }
}

/// How a burn-train run ended, for [`RunDir::settle`].
pub struct RunEnd {
    /// The global step whose loss was not finite, if any.
    pub non_finite_at: Option<usize>,
    /// The first item the loader could not read, if any.
    pub load_failure: Option<LoadFailure>,
    /// The step at which the device failed, if it did.
    pub device_failed: Option<DeviceFailed>,
    /// Batches per burn-train epoch (one checkpoint interval).
    pub batches_per_epoch: usize,
    /// burn-train epochs of the whole run.
    pub epochs: usize,
    /// The run's interrupter, holding burn-train's message when it stopped the run.
    pub interrupter: Interrupter,
}

/// The recorder's own words ("writing FILE: REASON") inside burn-train's message, which wraps
/// them in its error's debug form; the whole message when they are not there.
fn recorder_words(message: &str) -> &str {
    match message.find("writing ") {
        Some(start) => message[start..].split("\")").next().unwrap_or(message),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory as a run killed before its first checkpoint leaves it, and an input beside it.
    fn killed_run() -> (tempfile::TempDir, RunDir) {
        let dir = tempfile::tempdir().unwrap();
        for name in ["config.json", "train.tsv", "valid.tsv", "labels.csv", ".lock"] {
            std::fs::write(dir.path().join(name), "x\n").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("checkpoint")).unwrap();
        let run = RunDir {
            dir: dir.path().to_path_buf(),
        };
        (dir, run)
    }

    #[test]
    fn a_fresh_run_refuses_a_directory_holding_a_run_without_checkpoints() {
        let (_dir, run) = killed_run();
        let err = run.start_epoch(RunStart::Fresh, |_| Ok(())).unwrap_err().to_string();
        assert!(
            err.contains("holds a run (config.json, train.tsv, valid.tsv, checkpoint/)"),
            "{err}"
        );
        assert!(err.contains("--resume") && err.contains("--overwrite"), "{err}");
        assert_eq!(std::fs::read_to_string(run.dir.join("train.tsv")).unwrap(), "x\n");
    }

    #[test]
    fn a_fresh_run_refuses_a_finished_run_without_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["config.json", "model.mpk", "summary.json"] {
            std::fs::write(dir.path().join(name), "x\n").unwrap();
        }
        let run = RunDir {
            dir: dir.path().to_path_buf(),
        };
        let err = run.start_epoch(RunStart::Fresh, |_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("config.json, model.mpk, summary.json"), "{err}");
    }

    #[test]
    fn overwrite_removes_the_run_files_and_nothing_else() {
        let (_dir, run) = killed_run();
        assert_eq!(run.start_epoch(RunStart::Overwrite, |_| Ok(())).unwrap(), None);
        let mut left: Vec<String> = std::fs::read_dir(&run.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".lock", "labels.csv"]);
        assert_eq!(run.start_epoch(RunStart::Fresh, |_| Ok(())).unwrap(), None);
    }
}
