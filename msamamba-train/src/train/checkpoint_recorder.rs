//! Checkpoint files written atomically: a run killed mid-write leaves the previous file (or
//! none), never a truncated one that `--resume` would take for the last checkpoint; a write that
//! fails (a full disk) names the file and the system's reason and leaves nothing behind.
//!
//! Not burn's file recorder wrapped: its errors drop the I/O error (a full disk reads "error
//! while writing multi-byte MessagePack value"). The record is encoded in memory by burn's
//! named-MessagePack bytes recorder (the same bytes its file recorder writes, so files load
//! with either) and written here.

use std::fs::File;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use burn::record::{
    FileRecorder, FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, PrecisionSettings, Recorder,
    RecorderError,
};
use burn::tensor::backend::Backend;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where files are written before being renamed into place: a subfolder, so the temporary file
/// is on the same file system (rename is atomic) and burn's extension handling cannot clash.
const PARTIAL_DIR: &str = ".partial";

/// Named-MessagePack records (`.mpk`): each is written under `.partial/`, synced to disk, then
/// renamed over the final path.
#[derive(Debug, Default, Clone)]
pub struct AtomicFileRecorder<S: PrecisionSettings> {
    settings: PhantomData<S>,
}

/// The recorder of every msamamba weight and checkpoint file.
pub type CheckpointRecorder = AtomicFileRecorder<FullPrecisionSettings>;

fn io_error(path: &Path, err: std::io::Error) -> RecorderError {
    RecorderError::Unknown(format!("writing {}: {err}", path.display()))
}

/// Writes `bytes` to `partial` and syncs them; on failure removes what was written.
fn write_synced(partial: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let written = File::create(partial).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if written.is_err() {
        // A full disk: the partial file would only take more of it.
        let _ = std::fs::remove_file(partial);
    }
    written
}

impl<B: Backend, S: PrecisionSettings> Recorder<B> for AtomicFileRecorder<S> {
    type Settings = S;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn save_item<I: Serialize>(&self, item: I, mut file: PathBuf) -> Result<(), RecorderError> {
        file.set_extension(<Self as FileRecorder<B>>::file_extension());
        let bytes = Recorder::<B>::save_item(&NamedMpkBytesRecorder::<S>::default(), item, ())?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = file
            .file_name()
            .ok_or_else(|| RecorderError::Unknown(format!("{}: not a file path", file.display())))?;
        let partial = dir.join(PARTIAL_DIR).join(name);
        std::fs::create_dir_all(dir.join(PARTIAL_DIR)).map_err(|e| io_error(&file, e))?;
        write_synced(&partial, &bytes).map_err(|e| io_error(&file, e))?;
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
        Recorder::<B>::load_item(&NamedMpkFileRecorder::<S>::default(), file)
    }
}

impl<B: Backend, S: PrecisionSettings> FileRecorder<B> for AtomicFileRecorder<S> {
    fn file_extension() -> &'static str {
        <NamedMpkFileRecorder<S> as FileRecorder<B>>::file_extension()
    }
}
