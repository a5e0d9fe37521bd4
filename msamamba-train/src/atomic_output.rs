//! Output files written whole or not at all: the bytes go to a temporary file beside the
//! destination, which is synced and renamed into place once complete, so a failure (a crash, a
//! full disk, a bad input found late) never leaves a partial file or replaces a good one.
//! `tempfile` makes the temporary file; the rename is atomic within one folder. A directory output
//! (a zarr store) is built the same way in a temporary directory ([`AtomicDir`]).
//!
//! An output gets the permissions the umask gives a new file (`0666 & !umask`; a directory
//! `0777 & !umask`), as every Unix tool's does, not tempfile's private 0600 / 0700: a run shared
//! with other users must be readable by them. The umask is never read: the full mode is passed
//! to open(2) and mkdir(2) when the temporary file or directory is created, and the kernel
//! applies the umask there, which is exact and leaves the process's umask alone for other
//! threads (reading it with umask(2) means setting it, briefly, for every thread).
//!
//! Interrupted work leaves nothing behind: [`remove_on_signals`] removes every output not yet
//! committed when SIGINT or SIGTERM ends the process, and the temporary names carry the process
//! id (`.NAME.partial-PID-...`), so what a SIGKILL left is recognised, named and removed by the
//! next run that writes NAME.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use tempfile::NamedTempFile;

/// The mode a new output file is created with, before the umask.
const FILE_MODE: u32 = 0o666;
/// The mode a new output directory is created with, before the umask.
const DIR_MODE: u32 = 0o777;

/// Temporary outputs of this process that are neither committed nor dropped yet.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a temporary output for [`remove_on_signals`] while it lives.
pub struct PendingOutput(PathBuf);

impl PendingOutput {
    /// Registers `path` (a file or a directory).
    pub fn new(path: &Path) -> Self {
        PENDING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_path_buf());
        Self(path.to_path_buf())
    }
}

impl Drop for PendingOutput {
    fn drop(&mut self) {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = pending.iter().position(|p| *p == self.0) {
            pending.swap_remove(at);
        }
    }
}

/// On SIGINT or SIGTERM, removes every temporary output not yet committed, then ends the process
/// with the signal's conventional status (130, 143). Call once, at start.
pub fn remove_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                for path in PENDING.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
                }
                std::process::exit(128 + signal);
            }
        })
        .context("installing signal handlers")?;
    Ok(())
}

/// The start of every temporary name of `path`'s outputs: `.NAME.partial-`.
pub(crate) fn partial_prefix(path: &Path) -> String {
    let name = path.file_name().map_or("output".into(), |n| n.to_string_lossy());
    format!(".{name}.partial-")
}

/// Removes, with a warning naming each, the temporary outputs for `path` in `folder` of processes
/// that are gone (a SIGKILL, a power cut). Needs Linux's `/proc` to tell; elsewhere none is
/// touched.
pub(crate) fn remove_leftovers(folder: &Path, path: &Path) {
    let prefix = partial_prefix(path);
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc/self").exists() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        tracing::warn!(
            "removing {}, left unfinished by a run that was killed",
            entry.path().display()
        );
        let _ = std::fs::remove_file(entry.path()).or_else(|_| std::fs::remove_dir_all(entry.path()));
    }
}

/// The temporary name's start for `path` in this process: `.NAME.partial-PID-`.
fn our_prefix(path: &Path) -> String {
    format!("{}{}-", partial_prefix(path), std::process::id())
}

/// A tempfile builder whose file or directory gets `mode` less the umask, its name starting
/// with `prefix`.
fn builder(mode: u32, prefix: &str) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder
}

/// An output file being written; [`AtomicOutput::commit`] puts it in place.
pub struct AtomicOutput {
    file: BufWriter<NamedTempFile>,
    path: PathBuf,
    pending: PendingOutput,
}

impl AtomicOutput {
    /// Starts `path`, before any work: refuses a path that is one of `inputs`, and creates the
    /// temporary file now, so an unwritable folder is an error at once, not after the work.
    pub fn create(path: &Path, inputs: &[&Path]) -> Result<Self> {
        if let Ok(out) = path.canonicalize()
            && let Some(input) = inputs.iter().find(|input| input.canonicalize().is_ok_and(|i| i == out))
        {
            bail!(
                "--out {} is also an input ({}); write elsewhere",
                path.display(),
                input.display()
            );
        }
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        remove_leftovers(folder, path);
        let file = builder(FILE_MODE, &our_prefix(path))
            .tempfile_in(folder)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self {
            pending: PendingOutput::new(file.path()),
            file: BufWriter::new(file),
            path: path.to_path_buf(),
        })
    }

    /// Writes `bytes` to `path`, whole or not at all.
    pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
        let mut out = Self::create(path, &[])?;
        out.writer()
            .write_all(bytes.as_ref())
            .with_context(|| format!("writing {}", path.display()))?;
        out.commit()
    }

    /// Where the bytes go until [`AtomicOutput::commit`].
    pub fn writer(&mut self) -> &mut impl Write {
        &mut self.file
    }

    /// A second handle on the temporary file, for a writer that must own its file (bgzip on
    /// worker threads). Write through one handle only; [`AtomicOutput::commit`] still syncs and
    /// renames it.
    pub fn reopen(&self) -> Result<std::fs::File> {
        self.file
            .get_ref()
            .reopen()
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Where the bytes are until [`AtomicOutput::commit`] (complete once its writers are done),
    /// to read them back before they are in place.
    pub fn temporary_path(&self) -> &Path {
        self.file.get_ref().path()
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and syncs the bytes, then renames them into place.
    pub fn commit(self) -> Result<()> {
        let context = || format!("writing {}", self.path.display());
        let file = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(context)?;
        file.as_file().sync_all().with_context(context)?;
        file.persist(&self.path).map_err(|e| e.error).with_context(context)?;
        drop(self.pending);
        Ok(())
    }
}

/// A directory output being written; [`AtomicDir::commit`] puts it in place.
pub struct AtomicDir {
    dir: tempfile::TempDir,
    path: PathBuf,
    pending: PendingOutput,
}

impl AtomicDir {
    /// Starts `path`, before any work: refuses a path that exists (a directory is never
    /// replaced, unlike a file) and creates the temporary directory beside it now.
    pub fn create(path: &Path) -> Result<Self> {
        if path.exists() {
            bail!("--out {} exists; remove it or write elsewhere", path.display());
        }
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        remove_leftovers(folder, path);
        let dir = builder(DIR_MODE, &our_prefix(path))
            .tempdir_in(folder)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self {
            pending: PendingOutput::new(dir.path()),
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Where the files go until [`AtomicDir::commit`].
    pub fn temporary_path(&self) -> &Path {
        self.dir.path()
    }

    /// Renames the directory into place.
    pub fn commit(self) -> Result<()> {
        let temporary = self.dir.keep();
        let renamed =
            std::fs::rename(&temporary, &self.path).with_context(|| format!("writing {}", self.path.display()));
        drop(self.pending);
        renamed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's umask, from the kernel's record of it (Linux): reading it so changes
    /// nothing for the tests running beside this one.
    #[cfg(target_os = "linux")]
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn outputs_get_the_permissions_the_umask_gives_a_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        AtomicOutput::write(&file, "{}\n").unwrap();
        assert_eq!(mode(&file), 0o666 & !umask(), "file mode {:o}", mode(&file));
        let store = dir.path().join("emb.zarr");
        AtomicDir::create(&store).unwrap().commit().unwrap();
        assert_eq!(mode(&store), 0o777 & !umask(), "directory mode {:o}", mode(&store));
    }

    #[test]
    fn an_output_not_committed_leaves_the_previous_file_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        AtomicOutput::write(&path, "{\"good\": true}\n").unwrap();
        let mut failed = AtomicOutput::create(&path, &[]).unwrap();
        write!(failed.writer(), "{{\"partial").unwrap();
        drop(failed); // a failure before commit
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"good\": true}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["summary.json"]);
    }

    #[test]
    fn a_killed_runs_leftover_is_removed_by_the_next_output_of_that_name_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scored.vcf");
        // No process has this id (Linux's pid_max is at most 2^22).
        let dead = dir.path().join(".scored.vcf.partial-4294967290-x1y2z3");
        let live = dir
            .path()
            .join(format!(".scored.vcf.partial-{}-a1b2c3", std::process::id()));
        let other = dir.path().join(".other.vcf.partial-4294967290-x1y2z3");
        for file in [&dead, &live, &other] {
            std::fs::write(file, "partial").unwrap();
        }
        AtomicOutput::write(&path, "whole\n").unwrap();
        assert_eq!(
            !dead.exists(),
            Path::new("/proc/self").exists(),
            "the dead run's leftover"
        );
        assert!(live.exists(), "a running process's output is not touched");
        assert!(other.exists(), "another output's leftover is not touched");
    }
}
