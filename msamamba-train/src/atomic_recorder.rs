//! Checkpoint files written atomically: a run killed mid-write leaves the previous file (or
//! none), never a truncated one that `--resume` would take for the last checkpoint.

use std::fs::File;
use std::path::{Path, PathBuf};

use burn::record::{FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder, Recorder, RecorderError};
use burn::tensor::backend::Backend;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where files are written before being renamed into place: a subfolder, so the temporary file
/// is on the same file system (rename is atomic) and burn's extension handling cannot clash.
const PARTIAL_DIR: &str = ".partial";

/// Wraps a file recorder: each record is written under `.partial/`, synced to disk, then renamed
/// over the final path.
#[derive(Debug, Default, Clone)]
pub struct AtomicFileRecorder<R> {
    inner: R,
}

/// The recorder of every msamamba weight and checkpoint file.
pub type CheckpointRecorder = AtomicFileRecorder<NamedMpkFileRecorder<FullPrecisionSettings>>;

impl<R> AtomicFileRecorder<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner }
    }
}

fn io_error(path: &Path, err: std::io::Error) -> RecorderError {
    RecorderError::Unknown(format!("{}: {err}", path.display()))
}

impl<B: Backend, R: FileRecorder<B>> Recorder<B> for AtomicFileRecorder<R> {
    type Settings = R::Settings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, mut file: PathBuf) -> Result<(), RecorderError> {
        file.set_extension(<R as FileRecorder<B>>::file_extension());
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = file
            .file_name()
            .ok_or_else(|| RecorderError::Unknown(format!("{}: not a file path", file.display())))?;
        let partial = dir.join(PARTIAL_DIR).join(name);
        self.inner.save_item(item, partial.clone())?;
        File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&partial, e))?;
        std::fs::rename(&partial, &file).map_err(|e| io_error(&file, e))?;
        // The rename itself survives a crash only once the directory is synced.
        File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &dir
        })
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(&dir, e))
    }

    fn load_item<I: DeserializeOwned>(&self, file: &mut PathBuf) -> Result<I, RecorderError> {
        self.inner.load_item(file)
    }
}

impl<B: Backend, R: FileRecorder<B>> FileRecorder<B> for AtomicFileRecorder<R> {
    fn file_extension() -> &'static str {
        R::file_extension()
    }
}
