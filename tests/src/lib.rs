//! Helpers for the end-to-end tests of the `msamamba` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// Runs `msamamba args...` with `input` on its standard input.
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(msamamba())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run msamamba");
    // Written from a thread: a child that fills its stdout pipe before reading all of stdin
    // would otherwise block both.
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for msamamba");
    // A run that fails before reading all its input closes the pipe: that is its answer.
    let _ = writer.join();
    out
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

/// The bundled 30-species mm9 alignment.
pub const MM9: &str = "maf/ucsc_mm9_chr10_big.maf";

/// The bundled example VCF on [`MM9`]: samples, multi-allelic and skipped records, labels.
pub const MM9_VCF: &str = "vcf/mm9_chr10.vcf";

/// Arguments of a tiny, fast pre-training run into `out`.
pub fn tiny_pretrain<'a>(maf: &'a str, out: &'a str, steps: &'a str, every: &'a str) -> Vec<&'a str> {
    vec![
        "pretrain",
        "--maf",
        maf,
        "--target",
        "mm9",
        "--out",
        out,
        "--steps",
        steps,
        "--checkpoint-every",
        every,
        "--batch-size",
        "4",
        "--window",
        "32",
        "--stride",
        "16",
        "--d-model",
        "16",
        "--n-layers",
        "1",
        "--n-heads",
        "2",
        "--lr",
        "3e-3",
        "--backend",
        "cpu",
    ]
}

/// A fresh scratch directory `name` holding `run`, a two-step tiny pre-training run on [`MM9`]:
/// (the directory, the run).
pub fn tiny_trained_run(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let run_dir = dir.join("run");
    let out = run(&tiny_pretrain(
        &data(MM9),
        run_dir.to_str().expect("UTF-8 path"),
        "2",
        "2",
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, run_dir)
}

/// `score` of `vcf` with the run `checkpoint` on the alignment `source` (`--maf M` or
/// `--store S`), on the CPU.
pub fn score_args<'a>(vcf: &'a str, checkpoint: &'a str, source: [&'a str; 2]) -> Vec<&'a str> {
    let mut args = vec!["score", "--vcf", vcf, "--checkpoint", checkpoint];
    args.extend(source);
    args.extend(["--backend", "cpu"]);
    args
}

/// Imports the bundled mm9 alignment into a store at `store`.
pub fn import_mm9(store: &Path) {
    let out = run(&[
        "import-maf",
        "--maf",
        &data(MM9),
        "--target",
        "mm9",
        "--out",
        store.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The `k`-th embedding of the zarr store `embed` wrote at `store`: its shape [L, D], values
/// and attributes.
pub fn embedding(store: &Path, k: usize) -> (Vec<u64>, Vec<f32>, serde_json::Value) {
    let storage = std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(store).expect("store"));
    let array = zarrs::array::Array::open(storage, &format!("/regions/{k}")).expect("embedding array");
    let values = array
        .retrieve_array_subset::<Vec<f32>>(&array.subset_all())
        .expect("embedding values");
    let attributes = serde_json::Value::Object(array.attributes().clone());
    (array.shape().to_vec(), values, attributes)
}

/// The root attributes of the zarr store `embed` wrote at `store`.
pub fn store_attributes(store: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(store.join("zarr.json")).expect("the store's zarr.json");
    let metadata: serde_json::Value = serde_json::from_str(&text).expect("zarr.json is JSON");
    metadata["attributes"].clone()
}

/// Continues the pre-training run in `out` (`pretrain --resume`).
pub fn resume(out: &Path) -> Output {
    run(&[
        "pretrain",
        "--resume",
        "--out",
        out.to_str().expect("UTF-8 path"),
        "--backend",
        "cpu",
    ])
}
