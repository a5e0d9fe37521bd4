//! Helpers for the end-to-end tests of the `msamamba` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `msamamba` binary of this build (cargo builds it for msamamba-train's tests).
pub fn msamamba() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/msamamba
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("msamamba");
    assert!(
        bin.exists(),
        "{} not built: run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Runs `msamamba args...`.
pub fn run(args: &[&str]) -> Output {
    Command::new(msamamba()).args(args).output().expect("run msamamba")
}

/// A bundled real-data file (see data/maf/README.md).
pub fn data(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(path)
        .display()
        .to_string()
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("msamamba-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `step` and `column` values of a metrics TSV written by `msamamba pretrain`.
pub fn tsv_column(path: &Path, column: &str) -> Vec<(usize, f64)> {
    let text = std::fs::read_to_string(path).expect("metrics file");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let k = header.iter().position(|h| *h == column).expect("column");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().expect("step"), f[k].parse().expect("value"))
        })
        .collect()
}
