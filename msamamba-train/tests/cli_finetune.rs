//! `msamamba finetune` and `msamamba evaluate` end to end, running the real binary on the
//! bundled 30-species mm9 alignment, from a tiny `msamamba pretrain` checkpoint.
//!
//! Labels: conserved vs not conserved with rat. Each 32-bp window of the bundled alignment in
//! which mouse (mm9, the target) has at least 28 bases is labelled 1 when at least 90% of those
//! mouse bases are matched by the same base in the rat (rn4) row, and 0 when at most 50% are
//! (a missing rat row counts as 0% identity); windows in between are left out. The labels are
//! computed here from the library's projection of the MAF, the same one the binary reads.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use msamamba_model::tokens::GAP;
use msamamba_train::data::alignment::Alignment;
use msamamba_train::data::import::import_maf;

const WINDOW: usize = 32;

fn msamamba(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_msamamba"))
        .args(args)
        .output()
        .expect("the msamamba binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn maf() -> PathBuf {
    common::fixture("ucsc_mm9_chr10_big.maf")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A tiny pre-training run, made once per test process and shared by every test.
fn pretrained() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = common::scratch_dir("finetune-pretrain").join("run");
        let out = msamamba(&[
            "pretrain",
            "--maf",
            path(&maf()),
            "--target",
            "mm9",
            "--steps",
            "4",
            "--checkpoint-every",
            "2",
            "--batch-size",
            "2",
            "--window",
            "32",
            "--d-model",
            "16",
            "--n-layers",
            "1",
            "--backend",
            "cpu",
            "--out",
            path(&dir),
        ]);
        assert!(out.status.success(), "pretrain failed: {}", text(&out.stderr));
        dir
    })
}

/// The conserved (1) / not conserved (0) table described at the top, `per_class` rows of each
/// class spread over the alignment, strands alternating, as `chrom,start,end,strand,label`.
fn conservation_table(per_class: usize) -> String {
    let alignment = Alignment::from_maf(&maf(), "mm9", None, None).unwrap();
    let rat = alignment
        .species()
        .iter()
        .position(|s| s == "rn4")
        .expect("rn4 is a row");
    let mut classes: [Vec<(String, u64)>; 2] = [Vec::new(), Vec::new()];
    for chrom in &alignment.chromosomes {
        let (mouse, rat) = (&chrom.rows[0], &chrom.rows[rat]);
        for offset in (0..mouse.len().saturating_sub(WINDOW)).step_by(WINDOW) {
            let range = offset..offset + WINDOW;
            let bases = mouse[range.clone()].iter().filter(|&&t| t != GAP).count();
            let same = range.clone().filter(|&i| mouse[i] != GAP && mouse[i] == rat[i]).count();
            if bases < 28 {
                continue;
            }
            let identity = same as f64 / bases as f64;
            let start = chrom.start + offset as u64;
            if identity >= 0.9 {
                classes[1].push((chrom.chrom.clone(), start));
            } else if identity <= 0.5 {
                classes[0].push((chrom.chrom.clone(), start));
            }
        }
    }
    let mut table = String::from("chrom,start,end,strand,label\n");
    for (label, windows) in classes.iter().enumerate() {
        assert!(
            windows.len() >= per_class,
            "only {} windows of class {label}",
            windows.len()
        );
        let every = windows.len() / per_class;
        for (k, (chrom, start)) in windows.iter().step_by(every).take(per_class).enumerate() {
            let strand = if k % 2 == 0 { '+' } else { '-' };
            table += &format!("{chrom},{start},{},{strand},{label}\n", start + WINDOW as u64);
        }
    }
    table
}

/// (step, value) of `name`'s column of a run's TSV log.
fn column(tsv: &Path, name: &str) -> Vec<(usize, f64)> {
    let text = std::fs::read_to_string(tsv).unwrap_or_else(|e| panic!("{}: {e}", tsv.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split('\t').collect();
    let k = header.iter().position(|h| *h == name).expect("the column");
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[0].parse().unwrap(), fields[k].parse().unwrap())
        })
        .collect()
}

/// `finetune` of the conservation table (24 regions a class) into `out`, with `extra` flags.
fn finetune_args(table: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "finetune",
        "--checkpoint",
        path(pretrained()),
        "--labels",
        path(table),
        "--maf",
        path(&maf()),
        "--window",
        "32",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--backend",
        "cpu",
        "--out",
        path(out),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn run_args(args: &[String]) -> Output {
    msamamba(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The test split's metrics line of a run's output.
fn test_line(out: &Output) -> String {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("test split"))
        .unwrap_or_else(|| panic!("no test line: {stdout}{}", text(&out.stderr)))
        .to_string()
}

#[test]
fn a_killed_finetuning_run_resumes_exactly() {
    let dir = common::scratch_dir("ft-resume");
    let table = dir.join("conserved.csv");
    std::fs::write(&table, conservation_table(24)).unwrap();
    // 17 + 17 training regions: 5 steps a pass, 60 in all, a checkpoint every 2. Dropout is on:
    // exactness needs the same data order and the same dropout masks after the resume.
    let flags = ["--epochs", "12", "--checkpoint-every", "2"];
    let reference = dir.join("reference");
    let out = run_args(&finetune_args(&table, &reference, &flags));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reference_test = test_line(&out);

    let killed = dir.join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_msamamba"))
        .args(finetune_args(&table, &killed, &flags))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start");
    let started = std::time::Instant::now();
    while !killed.join("checkpoint/scheduler-3.mpk").exists() {
        assert!(started.elapsed().as_secs() < 300, "no checkpoint after 300 s");
        assert!(
            child.try_wait().expect("poll").is_none(),
            "run ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(!killed.join("classifier.mpk").exists());

    // A fresh run into it is refused and leaves the killed run's config as it was.
    let config = std::fs::read_to_string(killed.join("config.json")).unwrap();
    let out = run_args(&finetune_args(&table, &killed, &["--epochs", "3"]));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("holds a run (config.json"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(killed.join("config.json")).unwrap(), config);
    // A flag that would change the run is refused; none given, it continues.
    let out = msamamba(&[
        "finetune",
        "--resume",
        "--out",
        path(&killed),
        "--lr",
        "1",
        "--backend",
        "cpu",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--lr 1.0 (the run has 0.001)"),
        "{}",
        text(&out.stderr)
    );
    let out = msamamba(&["finetune", "--resume", "--out", path(&killed), "--backend", "cpu"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(test_line(&out), reference_test);
    let want = column(&reference.join("train.tsv"), "loss");
    let got = column(&killed.join("train.tsv"), "loss");
    assert_eq!(got.len(), want.len(), "one row per step, none repeated");
    for ((step, got), (_, want)) in got.iter().zip(&want) {
        assert!(
            (got - want).abs() < 1e-6,
            "step {step}: resumed {got}, uninterrupted {want}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(killed.join("valid.tsv")).unwrap(),
        std::fs::read_to_string(reference.join("valid.tsv")).unwrap()
    );
}

#[test]
fn a_frozen_backbone_keeps_its_pretrained_weights_and_early_stopping_keeps_the_best() {
    use msamamba_train::train::weights::{load_backbone, load_classifier};
    type Cpu = burn::backend::NdArray;
    let dir = common::scratch_dir("ft-frozen");
    let table = dir.join("conserved.csv");
    std::fs::write(&table, conservation_table(24)).unwrap();
    let out_dir = dir.join("run");
    let args = finetune_args(
        &table,
        &out_dir,
        &[
            "--epochs",
            "8",
            "--freeze-backbone",
            "--early-stopping",
            "2",
            "--valid-fraction",
            "0.2",
        ],
    );
    let out = run_args(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));

    let device = Default::default();
    let (_, pretrained) = load_backbone::<Cpu>(pretrained(), &device).unwrap();
    let (_, classifier) = load_classifier::<Cpu>(&out_dir, &device).unwrap();
    assert_eq!(
        common::float_params(&classifier.backbone),
        common::float_params(&pretrained)
    );

    // The kept weights are those of the best validation AUROC, and the run stopped only after
    // it had not improved for at least 2 intervals (burn-train sees an interval's metrics once
    // they are logged, which can be an interval or two later), or ran out of epochs.
    let auroc = column(&out_dir.join("valid.tsv"), "auroc");
    let best = auroc.iter().map(|r| r.1).fold(f64::MIN, f64::max);
    let n = auroc.len();
    assert!(n <= 8, "{auroc:?}");
    if n < 8 {
        assert!(
            auroc[n - 2..].iter().all(|r| r.1 < best),
            "stopped while improving: {auroc:?}"
        );
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("best validation AUROC"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains(&format!("{best:.4}")), "{line} against {auroc:?}");
    // The best checkpoint and the last two are kept, no other.
    let best_epoch = auroc.iter().position(|r| r.1 == best).unwrap() + 1;
    for epoch in 1..=n {
        let kept = out_dir.join(format!("checkpoint/model-{epoch}.mpk")).exists();
        assert_eq!(kept, epoch == best_epoch || epoch + 2 > n, "checkpoint {epoch} of {n}");
    }
}

fn assert_metrics_file(dir: &Path) -> serde_json::Value {
    let json = std::fs::read_to_string(dir.join("metrics.json")).expect("metrics.json written");
    let metrics: serde_json::Value = serde_json::from_str(&json).expect("metrics.json is JSON");
    for key in ["auroc", "auprc", "accuracy"] {
        let value = metrics[key].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&value), "{key} = {value} in {json}");
    }
    let png = std::fs::read(dir.join("roc.png")).expect("roc.png written");
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(dir.join("roc.svg")).expect("roc.svg written");
    let auroc = format!("AUROC {:.3}", metrics["auroc"].as_f64().unwrap_or(f64::NAN));
    for text in [
        "ROC curve",
        "false positive rate",
        "true positive rate",
        "chance",
        &auroc,
    ] {
        assert!(svg.contains(text), "no {text} in roc.svg");
    }
    metrics
}

#[test]
fn finetune_then_evaluate_report_auroc_auprc_and_accuracy() {
    let dir = common::scratch_dir("finetune-ok");
    let table = dir.join("conserved.csv");
    std::fs::write(&table, conservation_table(24)).unwrap();
    let out_dir = dir.join("classifier");
    let out = msamamba(&[
        "finetune",
        "--checkpoint",
        path(pretrained()),
        "--labels",
        path(&table),
        "--maf",
        path(&maf()),
        "--target",
        "mm9",
        "--window",
        "32",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--test-fraction",
        "0.25",
        "--backend",
        "cpu",
        "--out",
        path(&out_dir),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "finetune failed: {}{stdout}", text(&out.stderr));
    // 16 + 16 training regions in batches of 8: 4 steps a pass, 3 passes, a checkpoint and a
    // validation pass (2 + 2 regions) after each.
    assert_eq!(column(&out_dir.join("train.tsv"), "loss").len(), 12);
    let auroc = column(&out_dir.join("valid.tsv"), "auroc");
    assert_eq!(auroc.iter().map(|r| r.0).collect::<Vec<_>>(), [4, 8, 12]);
    assert!(auroc.iter().all(|r| (0.0..=1.0).contains(&r.1)), "{auroc:?}");
    assert!(stdout.contains("valid at step 12"), "{stdout}");
    assert!(
        stdout.contains("test split (12 regions, 6 positive): AUROC"),
        "{stdout}"
    );
    let metrics = assert_metrics_file(&out_dir);
    assert_eq!(metrics["examples"], 12);
    for file in ["config.json", "classifier.mpk"] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
    let config = std::fs::read_to_string(out_dir.join("config.json")).unwrap();
    assert!(
        config.contains("\"d_model\": 16"),
        "the backbone config is saved: {config}"
    );
    // The paper's fine-tuning optimizer unless asked otherwise: weight decay 1e-3, 10% warmup.
    let saved: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(saved["lr"], 1e-3, "{config}");
    assert_eq!(saved["weight_decay"], 1e-3, "{config}");
    assert_eq!(saved["warmup_fraction"], 0.1, "{config}");

    // Evaluate on every row of the same table, target taken from the fine-tuning config.
    let eval_dir = dir.join("eval");
    let out = msamamba(&[
        "evaluate",
        "--checkpoint",
        path(&out_dir),
        "--labels",
        path(&table),
        "--maf",
        path(&maf()),
        "--backend",
        "cpu",
        "--out",
        path(&eval_dir),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "evaluate failed: {}{stdout}", text(&out.stderr));
    assert!(stdout.contains("all rows (48 regions, 24 positive): AUROC"), "{stdout}");
    assert_eq!(assert_metrics_file(&eval_dir)["examples"], 48);
    let metrics_line = |stdout: &str| stdout.lines().find(|l| l.starts_with("all rows")).map(str::to_string);

    // The same alignment as a store gives the same windows, hence the same metrics.
    let store = dir.join("mm9.zarr");
    import_maf(&[maf()], "mm9", None, None, &store).unwrap();
    let out = msamamba(&[
        "evaluate",
        "--checkpoint",
        path(&out_dir),
        "--labels",
        path(&table),
        "--store",
        path(&store),
        "--backend",
        "cpu",
    ]);
    let from_store = text(&out.stdout);
    assert!(out.status.success(), "evaluate --store failed: {}", text(&out.stderr));
    assert_eq!(metrics_line(&from_store), metrics_line(&stdout), "{from_store}");

    // Fine-tuning again into the same directory is refused rather than overwriting.
    let again = msamamba(&[
        "finetune",
        "--checkpoint",
        path(pretrained()),
        "--labels",
        path(&table),
        "--maf",
        path(&maf()),
        "--out",
        path(&out_dir),
    ]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already holds a fine-tuned classifier"));
}

/// Runs `finetune` on a table with `body` after a header and two good rows; returns stderr
/// after checking the exit status is non-zero, the message one line, and no panic.
fn finetune_fails(test: &str, body: &str, checkpoint: Option<&Path>) -> (PathBuf, String) {
    let dir = common::scratch_dir(test);
    let table = dir.join("t.csv");
    std::fs::write(
        &table,
        format!("chrom,start,end,strand,label\nchr10,3134100,3134132,+,1\nchr10,3134300,3134332,-,0\n{body}"),
    )
    .unwrap();
    let out = msamamba(&[
        "finetune",
        "--checkpoint",
        path(checkpoint.unwrap_or_else(|| pretrained())),
        "--labels",
        path(&table),
        "--maf",
        path(&maf()),
        "--target",
        "mm9",
        "--window",
        "32",
        "--backend",
        "cpu",
        "--out",
        path(&dir.join("out")),
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{test}: should fail");
    assert!(!stderr.contains("panicked"), "{test}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{test}: one line: {stderr}");
    (table, stderr)
}

#[test]
fn a_malformed_table_line_names_the_file_and_line() {
    let (table, stderr) = finetune_fails("ft-bad-line", "chr10,3134500;3134532,+,1\n", None);
    assert!(stderr.contains(&format!("{}:4:", table.display())), "{stderr}");
    let (table, stderr) = finetune_fails("ft-bad-label", "chr10,3134500,3134532,+,2\n", None);
    assert!(
        stderr.contains(&format!("{}:4: label `2` is not 0 or 1", table.display())),
        "{stderr}"
    );
}

#[test]
fn a_region_outside_the_alignment_is_an_error() {
    let (table, stderr) = finetune_fails("ft-outside", "chr10,100,132,+,1\n", None);
    assert!(stderr.contains(&format!("{}:4:", table.display())), "{stderr}");
    assert!(stderr.contains("is outside the alignment"), "{stderr}");
    let (_, stderr) = finetune_fails("ft-unknown-chrom", "chr1,3134100,3134132,+,1\n", None);
    assert!(stderr.contains("is outside the alignment"), "{stderr}");
}

#[test]
fn a_table_of_one_class_says_the_test_split_has_one_class() {
    let dir = common::scratch_dir("ft-one-class");
    let table = dir.join("t.csv");
    let rows: String = (0..6)
        .map(|k| format!("chr10,{},{},+,1\n", 3134100 + 40 * k, 3134132 + 40 * k))
        .collect();
    std::fs::write(&table, rows).unwrap();
    let out = msamamba(&[
        "finetune",
        "--checkpoint",
        path(pretrained()),
        "--labels",
        path(&table),
        "--maf",
        path(&maf()),
        "--window",
        "32",
        "--backend",
        "cpu",
        "--out",
        path(&dir.join("out")),
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("test split: only label 1"), "{stderr}");
    assert!(stderr.contains("every region is labelled 1"), "{stderr}");
}

#[test]
fn checkpoint_dirs_without_files_or_not_matching_their_config_are_errors() {
    let dir = common::scratch_dir("ft-checkpoints");
    let run = pretrained();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (_, stderr) = finetune_fails("ft-empty-ckpt", "", Some(&empty));
    assert!(stderr.contains("not a pre-training run (no config.json)"), "{stderr}");

    let no_model = dir.join("no-model");
    std::fs::create_dir_all(&no_model).unwrap();
    std::fs::copy(run.join("config.json"), no_model.join("config.json")).unwrap();
    let (_, stderr) = finetune_fails("ft-no-model", "", Some(&no_model));
    assert!(stderr.contains("no model.mpk"), "{stderr}");

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    for (field, value, says) in [("d_model", 32, "does not match"), ("n_layers", 2, "1 blocks")] {
        let mismatched = dir.join(format!("mismatched-{field}"));
        std::fs::create_dir_all(&mismatched).unwrap();
        std::fs::copy(run.join("model.mpk"), mismatched.join("model.mpk")).unwrap();
        let mut edited = config.clone();
        edited["model"][field] = value.into();
        std::fs::write(mismatched.join("config.json"), edited.to_string()).unwrap();
        let (_, stderr) = finetune_fails(&format!("ft-mismatch-{field}"), "", Some(&mismatched));
        assert!(stderr.contains(says), "{field}: {stderr}");
    }

    let evaluate_fails = |table: &Path| {
        let out = msamamba(&[
            "evaluate",
            "--checkpoint",
            path(run),
            "--labels",
            path(table),
            "--maf",
            path(&maf()),
        ]);
        assert!(!out.status.success());
        text(&out.stderr)
    };
    // `evaluate` wants a fine-tuned run, not a pre-training run.
    let table = dir.join("t.csv");
    std::fs::write(&table, "chr10,3134100,3134132,+,1\nchr10,3134300,3134332,-,0\n").unwrap();
    let stderr = evaluate_fails(&table);
    assert!(stderr.contains("not a fine-tuning config"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    // ... and a table with both classes.
    std::fs::write(&table, "chr10,3134100,3134132,+,1\nchr10,3134300,3134332,-,1\n").unwrap();
    let stderr = evaluate_fails(&table);
    assert!(stderr.contains("only label 1 in 2 example(s)"), "{stderr}");
}

#[test]
fn weights_holding_nan_are_refused_before_any_work() {
    use burn::module::Module;
    use msamamba_train::train::checkpoint_recorder::CheckpointRecorder;
    use msamamba_train::train::mlm_step::MlmModel;
    use msamamba_train::train::weights::load_backbone;
    type Cpu = burn::backend::NdArray;

    // A copy of the tiny run whose LM head went NaN, as a diverged run's would.
    let dir = common::scratch_dir("nan-weights").join("run");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "model.mpk"] {
        std::fs::copy(pretrained().join(file), dir.join(file)).unwrap();
    }
    let device = Default::default();
    let (config, mut model) = load_backbone::<Cpu>(&dir, &device).expect("the copy loads");
    model.lm_head.weight = model.lm_head.weight.map(|w| w.mul_scalar(f32::NAN));
    MlmModel {
        model,
        accumulate: config.accumulate,
    }
    .save_file(dir.join("model.mpk"), &CheckpointRecorder::default())
    .unwrap();

    let Err(err) = load_backbone::<Cpu>(&dir, &device) else {
        panic!("NaN weights are refused");
    };
    assert!(err.to_string().contains("NaN or infinite"), "{err}");
    let out_file = dir.join("emb.zarr");
    let out = msamamba(&[
        "embed",
        "--checkpoint",
        path(&dir),
        "--maf",
        path(&maf()),
        "--target",
        "mm9",
        "--region",
        "chr10:3134200-3134260",
        "--backend",
        "cpu",
        "--out",
        path(&out_file),
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("model.mpk") && err.contains("NaN or infinite"), "{err}");
    assert!(!out_file.exists(), "nothing written");
}
