//! Bad values on the command line: a non-zero exit, an error naming the flag, and no panic.

use std::path::Path;
use std::process::Output;

use msamamba_tests::*;

/// Runs `pretrain` on the bundled alignment with `extra` flags, into a fresh directory.
fn pretrain_with(name: &str, extra: &[&str]) -> std::process::Output {
    let dir = scratch(name);
    let maf = data(MM9);
    let base = [
        "pretrain",
        "--maf",
        &maf,
        "--target",
        "mm9",
        "--out",
        dir.to_str().unwrap(),
        "--backend",
        "cpu",
    ];
    run(&[&base[..], extra].concat())
}

/// The run failed with an error (first stderr line) containing `expected`, and did not panic.
fn assert_refused(out: &std::process::Output, expected: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "accepted; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains(expected),
        "expected `{expected}` in the first line of: {err}"
    );
}

#[test]
fn model_sizes_that_cannot_be_built_are_refused_before_training() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--d-model", "16", "--n-heads", "3"],
            "--n-heads (3) must divide d_model (16)",
        ),
        (&["--n-heads", "0"], "--n-heads must be at least 1"),
        (&["--d-model", "0"], "--d-model must be at least 1"),
        (&["--d-state", "0"], "--d-state must be at least 1"),
        (&["--n-layers", "0"], "--n-layers must be at least 1"),
        (
            &["--d-model", "30", "--n-heads", "4"],
            "--n-heads (4) must divide d_model (30)",
        ),
    ];
    for (i, (flags, expected)) in cases.into_iter().enumerate() {
        assert_refused(&pretrain_with(&format!("model-size-{i}"), flags), expected);
    }
}

#[test]
fn training_values_out_of_range_are_refused() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--warmup-fraction", "1.5"],
            "--warmup-fraction must be between 0 and 1",
        ),
        (
            &["--warmup-fraction", "-0.1"],
            "--warmup-fraction must be between 0 and 1",
        ),
        (&["--weight-decay", "-1"], "--weight-decay must be 0 or more"),
        (&["--weight-decay", "NaN"], "--weight-decay must be 0 or more"),
    ];
    for (i, (flags, expected)) in cases.into_iter().enumerate() {
        assert_refused(&pretrain_with(&format!("train-value-{i}"), flags), expected);
    }
}

#[test]
fn a_zero_batch_size_is_refused_by_score_and_evaluate() {
    for command in ["score", "evaluate"] {
        let out = run(&[command, "--batch-size", "0"]);
        assert_refused(&out, "--batch-size");
        assert!(
            stderr(&out).contains("must be at least 1"),
            "{command}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn species_the_alignment_lacks_are_refused_with_the_ones_it_has() {
    // A typo after a comma and a space: the space is not part of the name, the typo is named,
    // and the species the file does have are listed.
    let out = pretrain_with("species-typo", &["--species", "rn4, hg81"]);
    assert_refused(&out, "species `hg81` is not in the alignment");
    let first = stderr(&out).lines().next().unwrap_or_default().to_string();
    assert!(first.contains(MM9), "names the file: {first}");
    assert!(
        first.contains("hg18") && first.contains("rn4"),
        "lists the species present: {first}"
    );

    // An empty name between two commas is a flag error.
    let out = pretrain_with("species-empty", &["--species", "rn4,,hg18"]);
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("--species") && err.contains("empty species name"), "{err}");
}

#[test]
fn embed_refuses_a_region_given_twice_before_any_work() {
    let dir = scratch("embed-twice");
    let out_file = dir.join("emb.zarr");
    let region = "chr10:3134200-3134260";
    let out = run(&[
        "embed",
        "--checkpoint",
        dir.join("no-run").to_str().unwrap(),
        "--region",
        region,
        "--region",
        region,
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_refused(&out, &format!("region {region} is given twice"));
    assert!(!out_file.exists());
}

/// A one-variant VCF in `dir`.
fn small_vcf(dir: &std::path::Path) -> std::path::PathBuf {
    let vcf = dir.join("v.vcf");
    std::fs::write(
        &vcf,
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr10\t3134250\trs1\tA\tG\t.\t.\t.\n",
    )
    .unwrap();
    vcf
}

#[test]
fn score_checks_its_flags_and_output_before_any_work() {
    let dir = scratch("score-early");
    let vcf = small_vcf(&dir);
    let before = std::fs::read(&vcf).unwrap();
    let score = |extra: &[&str]| {
        // The checkpoint does not exist: these errors must come before it is even opened.
        let base = [
            "score",
            "--vcf",
            vcf.to_str().unwrap(),
            "--checkpoint",
            "no-such-run",
            "--backend",
            "cpu",
        ];
        run(&[&base[..], extra].concat())
    };
    let out = score(&["--out", vcf.to_str().unwrap()]);
    assert_refused(&out, "is also an input");
    assert_eq!(std::fs::read(&vcf).unwrap(), before, "the input VCF is untouched");

    let missing = dir.join("no-such-folder").join("scores.tsv");
    let out = score(&["--out", missing.to_str().unwrap()]);
    assert_refused(&out, &format!("writing {}", missing.display()));

    let out = score(&["--labels", "clinvar"]);
    assert_refused(&out, "--labels clinvar: expected info:KEY or id:PREFIX");

    let out = score(&["--window", "1"]);
    assert_refused(&out, "--window must be at least 2, got 1");

    let out = run(&[
        "score",
        "--vcf",
        "/nonexistent.vcf",
        "--checkpoint",
        "no-such-run",
        "--backend",
        "cpu",
    ]);
    assert_refused(&out, "/nonexistent.vcf:0: cannot read");

    // Files that are no VCF are named and told apart (noodles says "empty input" of each).
    let not_vcfs: [(&str, &[u8], &str); 3] = [
        (
            "empty.vcf",
            b"",
            ":1: the file is empty; a VCF starts with a header line `##fileformat=VCFv4.x`",
        ),
        (
            "headless.vcf",
            b"chr10\t3134250\trs1\tA\tG\t.\t.\t.\n",
            ":1: not a VCF: no header (a VCF starts with a header line `##fileformat=VCFv4.x`; the first line is `chr10",
        ),
        (
            "binary.vcf",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            ":1: not a VCF: binary data, not text",
        ),
    ];
    for (name, bytes, expected) in not_vcfs {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = run(&[
            "score",
            "--vcf",
            path.to_str().unwrap(),
            "--checkpoint",
            "no-such-run",
            "--backend",
            "cpu",
        ]);
        assert_refused(&out, &format!("{}{expected}", path.display()));
    }
}

/// The error line of a failed run (after its warnings), which must not have panicked.
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "accepted; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    error_line_of(&err)
}

/// The one `msamamba: error:` line of `stderr`.
fn error_line_of(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("msamamba: error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_string()
}

#[test]
fn score_refuses_vcfs_it_can_score_nothing_of_and_writes_no_output() {
    let dir = scratch("score-nothing");
    let run_dir = dir.join("run");
    let out = tiny_run(&run_dir, "2", "2", None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
    let scored = dir.join("scored.vcf");
    let maf = data(MM9);
    // Scores `records`: refused with `expected` right after the VCF's name; the stderr.
    let refused = |name: &str, records: &str, expected: &str| {
        let vcf = dir.join(name);
        std::fs::write(&vcf, format!("{header}{records}")).unwrap();
        let mut args = score_args(vcf.to_str().unwrap(), run_dir.to_str().unwrap(), ["--maf", &maf]);
        args.extend(["--out", scored.to_str().unwrap()]);
        let out = run(&args);
        let error = error_line(&out);
        assert!(
            error.contains(&format!("{}{expected}", vcf.display())),
            "{}",
            stderr(&out)
        );
        assert!(!scored.exists(), "an output was left behind");
        stderr(&out)
    };
    // Chromosomes the alignment lacks, with or without `chr`; the alignment is named.
    let records = "chr11\t3134200\ta\tC\tG\t.\t.\t.\nX\t5\tb\tA\tG\t.\t.\t.\n";
    let err = refused(
        "other.vcf",
        records,
        ": none of its chromosomes (X, chr11) is in the alignment",
    );
    assert!(error_line_of(&err).contains(MM9), "{err}");
    // On the alignment's chromosome, but nothing scorable: a REF mismatch and a deletion.
    let records = "chr10\t3134202\ta\tA\tT\t.\t.\t.\nchr10\t3134203\tb\tGT\tG\t.\t.\t.\n";
    let err = refused("none.vcf", records, ": no variant could be scored");
    assert!(err.contains("1 not_snv, 1 ref_mismatch"), "{err}");
    // A record noodles cannot parse, after one that scores: its line is named.
    let records = "chr10\t3134200\ta\tC\tG\t.\t.\t.\nchr10\tx\tb\tG\tA\t.\t.\t.\n";
    refused("bad.vcf", records, ":4: bad record");
}

#[test]
fn an_out_holding_another_kind_of_run_is_refused_and_kept() {
    // A pre-training run's config, and a fine-tuning run's, as their commands write them.
    let pretrain_dir = scratch("out-pretrain-run");
    std::fs::create_dir_all(&pretrain_dir).unwrap();
    let pretrain_config = "{\"model\": {\"d_model\": 16}, \"steps\": 4}";
    std::fs::write(pretrain_dir.join("config.json"), pretrain_config).unwrap();
    let finetune_dir = scratch("out-finetune-run");
    std::fs::create_dir_all(&finetune_dir).unwrap();
    let finetune_config = "{\"classifier\": {\"dropout\": 0.25}, \"epochs\": 5}";
    std::fs::write(finetune_dir.join("config.json"), finetune_config).unwrap();

    let labels = finetune_dir.join("labels.csv");
    std::fs::write(&labels, "chr10,3134100,3134200,+,1\n").unwrap();
    let out = run(&[
        "finetune",
        "--checkpoint",
        pretrain_dir.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        pretrain_dir.to_str().unwrap(),
    ]);
    assert_refused(&out, "holds another run (its config.json is not a fine-tuning config)");
    let kept = std::fs::read_to_string(pretrain_dir.join("config.json")).unwrap();
    assert_eq!(kept, pretrain_config, "the pre-training config is untouched");

    let maf = data(MM9);
    let out = run(&[
        "pretrain",
        "--maf",
        &maf,
        "--target",
        "mm9",
        "--backend",
        "cpu",
        "--out",
        finetune_dir.to_str().unwrap(),
    ]);
    assert_refused(&out, "holds another run (its config.json is not a pre-training config)");
    let kept = std::fs::read_to_string(finetune_dir.join("config.json")).unwrap();
    assert_eq!(kept, finetune_config, "the fine-tuning config is untouched");
}

/// A tiny pre-training run into `out` of `steps` steps, a checkpoint every `every`, on the bundled
/// MAF or on `source` (`--store S`, or `--maf M --target T`), with `extra` flags.
fn tiny_run(out: &Path, steps: &str, every: &str, source: Option<&[&str]>, extra: &[&str]) -> Output {
    let maf = data(MM9);
    let mut args = tiny_pretrain(&maf, out.to_str().unwrap(), steps, every);
    if let Some(source) = source {
        args.splice(1..5, source.iter().copied());
    }
    args.extend(extra);
    run(&args)
}

/// The steps of the rows of a metrics file.
fn steps_in(path: &Path) -> Vec<usize> {
    tsv_column(path, "loss").iter().map(|p| p.0).collect()
}

#[test]
fn windows_without_target_bases_are_never_trained_on() {
    // The store covers all of chr10 (130 Mb), the alignment about 1 Mb of it.
    let dir = scratch("store-gaps");
    let store = dir.join("mm9.zarr");
    import_mm9(&store);
    let run_dir = dir.join("run");
    let out = tiny_run(&run_dir, "4", "4", Some(&["--store", store.to_str().unwrap()]), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for file in ["train.tsv", "valid.tsv"] {
        for column in ["loss", "accuracy"] {
            for (step, value) in tsv_column(&run_dir.join(file), column) {
                assert!(value.is_finite() && value > 0.0, "{file} step {step}: {column} {value}");
            }
        }
    }

    // Regions where the target is not aligned at all: an error, not a run that learns nothing.
    let bed = dir.join("unaligned.bed");
    std::fs::write(&bed, "chr10\t1000\t20000\n").unwrap();
    let run_dir = dir.join("unaligned");
    let out = tiny_run(
        &run_dir,
        "4",
        "4",
        Some(&["--store", store.to_str().unwrap()]),
        &["--regions", bed.to_str().unwrap()],
    );
    assert_refused(&out, "validation windows has a target base");
}

#[test]
fn steps_not_a_multiple_of_the_checkpoint_interval_are_trained_exactly() {
    let run_dir = scratch("steps-exact");
    let out = tiny_run(&run_dir, "5", "2", None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(steps_in(&run_dir.join("train.tsv")), [1, 2, 3, 4, 5]);
    assert_eq!(steps_in(&run_dir.join("valid.tsv")), [2, 4, 5]);

    // A changed flag on --resume is named, not ignored.
    let out = run(&[
        "pretrain",
        "--resume",
        "--out",
        run_dir.to_str().unwrap(),
        "--steps",
        "8",
        "--backend",
        "cpu",
    ]);
    assert_refused(&out, "--steps 8 (the run has 5)");

    // The run's own config, given again, changes nothing: the finished run resumes as it was.
    let config = run_dir.join("config.json");
    let args = [
        "pretrain",
        "--resume",
        "--config",
        config.to_str().unwrap(),
        "--steps",
        "5",
    ];
    let out = run(&[&args[..], &["--out", run_dir.to_str().unwrap(), "--backend", "cpu"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(steps_in(&run_dir.join("train.tsv")), [1, 2, 3, 4, 5]);
}

/// Multiplies the output head's weights of checkpoint `epoch` of `run_dir` by `factor`: NaN, as
/// a diverging step leaves them, or a finite factor large enough for the logits to overflow.
fn scale_checkpoint(run_dir: &std::path::Path, epoch: usize, factor: f32) {
    use burn::config::Config;
    use burn::module::Module;
    use msamamba_train::train::checkpoint_recorder::CheckpointRecorder;
    use msamamba_train::train::pretrain::PretrainConfig;
    type Cpu = burn::backend::NdArray;

    let config_path = run_dir.join("config.json");
    let config = PretrainConfig::load(&config_path).unwrap();
    let weights = run_dir.join(format!("checkpoint/model-{epoch}.mpk"));
    let mut model =
        msamamba_train::train::weights::load_mlm::<Cpu>(&config, &weights, &config_path, &Default::default()).unwrap();
    model.model.lm_head.weight = model.model.lm_head.weight.map(|w| w.mul_scalar(factor));
    model.save_file(weights, &CheckpointRecorder::default()).unwrap();
}

#[test]
fn resume_passes_over_damaged_and_non_finite_checkpoints_with_a_warning() {
    let run_dir = scratch("resume-damaged");
    let out = tiny_run(&run_dir, "6", "2", None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The newest checkpoint holds NaN weights, the one before it was cut short on disk.
    scale_checkpoint(&run_dir, 3, f32::NAN);
    let damaged = run_dir.join("checkpoint/model-2.mpk");
    let bytes = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();

    let out = resume(&run_dir);
    let err = stderr(&out);
    assert!(out.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("checkpoint 3 passed over") && err.contains("NaN or infinite"),
        "{err}"
    );
    assert!(
        err.contains("checkpoint 2 passed over") && err.contains("model-2.mpk"),
        "{err}"
    );
    assert!(
        !err.contains("record-backward-compat"),
        "no advice about burn's old record format: {err}"
    );
    assert_eq!(
        steps_in(&run_dir.join("train.tsv")).last(),
        Some(&6),
        "trained from checkpoint 1 to the end"
    );

    // No usable checkpoint at all: a clear error.
    for epoch in 1..=3 {
        let model = run_dir.join(format!("checkpoint/model-{epoch}.mpk"));
        std::fs::write(&model, b"not a checkpoint").unwrap();
    }
    let out = resume(&run_dir);
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("--resume: no usable checkpoint"), "{err}");
    assert!(
        run_dir.join("checkpoint/model-1.mpk").exists(),
        "damaged checkpoints are kept"
    );
}

#[test]
fn a_resumed_run_logs_each_step_once() {
    // A run killed after logging steps 5 and 6 but before checkpointing them: its last
    // checkpoint is 2 (step 4).
    let run_dir = scratch("resume-log");
    let out = tiny_run(&run_dir, "6", "2", None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for kind in ["model", "optim", "scheduler"] {
        std::fs::remove_file(run_dir.join(format!("checkpoint/{kind}-3.mpk"))).unwrap();
    }
    let out = resume(&run_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(steps_in(&run_dir.join("train.tsv")), [1, 2, 3, 4, 5, 6]);
    assert_eq!(steps_in(&run_dir.join("valid.tsv")), [2, 4, 6]);
}

#[test]
fn a_second_run_on_the_same_out_is_refused_while_the_first_runs() {
    let run_dir = scratch("locked");
    let (maf, out) = (data(MM9), run_dir.to_str().unwrap());
    let mut first = std::process::Command::new(msamamba())
        .args(tiny_pretrain(&maf, out, "100000", "100000"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !run_dir.join("train.tsv").exists() {
        assert!(started.elapsed().as_secs() < 120, "the first run never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = run(&tiny_pretrain(&maf, out, "4", "2"));
    first.kill().unwrap();
    first.wait().unwrap();
    assert_refused(&second, "is in use by another run");
}

#[test]
fn a_model_finds_its_rows_by_species_name_in_any_source() {
    let dir = scratch("row-names");
    let maf = data(MM9);
    let run_dir = dir.join("run");
    let out = tiny_run(&run_dir, "2", "2", None, &["--species", "rn4,hg18"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["rows"], serde_json::json!(["mm9", "rn4", "hg18"]));

    let embed = |source: &[&str], name: &str| {
        let out_file = dir.join(format!("{name}.zarr"));
        let base = [
            "embed",
            "--checkpoint",
            run_dir.to_str().unwrap(),
            "--region",
            "chr10:3134200-3134231",
        ];
        let out = run(&[
            &base[..],
            source,
            &["--backend", "cpu", "--out", out_file.to_str().unwrap()],
        ]
        .concat());
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let (_, values, _) = embedding(&out_file, 0);
        (values, store_attributes(&out_file), stderr(&out))
    };
    // A store holds every species, in its own order: the model takes its three by name.
    let store = dir.join("mm9.zarr");
    import_mm9(&store);
    let (from_maf, attributes, _) = embed(&["--maf", &maf], "maf");
    let (from_store, _, _) = embed(&["--store", store.to_str().unwrap()], "store");
    assert!(from_maf == from_store, "the store's rows differ from the MAF's");
    assert_eq!(attributes["species"], serde_json::json!(["mm9", "rn4", "hg18"]));

    // A MAF without hg18: its row is gaps, with a warning.
    let text = std::fs::read_to_string(&maf).unwrap();
    let without: String = text
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .nth(1)
                .is_none_or(|src| !src.starts_with("hg18."))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let no_human = dir.join("no-hg18.maf");
    std::fs::write(&no_human, without).unwrap();
    let (_, _, err) = embed(&["--maf", no_human.to_str().unwrap(), "--target", "mm9"], "no-hg18");
    assert!(err.contains("warning") && err.contains("hg18"), "{err}");

    // Fine-tuning on it keeps the model's rows, hg18's as gaps.
    let labels = dir.join("labels.csv");
    let table: String = (0..10)
        .map(|k| format!("chr10,{},{},+,{}\n", 3134100 + 200 * k, 3134132 + 200 * k, k % 2))
        .collect();
    std::fs::write(&labels, table).unwrap();
    let ft = dir.join("ft");
    let out = run(&[
        "finetune",
        "--checkpoint",
        run_dir.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--maf",
        no_human.to_str().unwrap(),
        "--window",
        "32",
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--out",
        ft.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning") && err.contains("hg18"), "{err}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ft.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["source"]["species"], serde_json::json!(["rn4", "hg18"]));
}

/// Rows dropped as a species' second row in a block, as `import-maf` warns (0 without warning).
fn duplicate_rows(out: &std::process::Output) -> usize {
    stderr(out)
        .lines()
        .find_map(|line| {
            line.strip_prefix("msamamba: warning: ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn import_maf_names_a_species_it_lacks_and_counts_duplicate_rows() {
    let dir = scratch("import-species");
    let maf = data(MM9);
    let import = |maf: &str, name: &str, extra: &[&str]| {
        let out_dir = dir.join(name);
        let base = [
            "import-maf",
            "--maf",
            maf,
            "--target",
            "mm9",
            "--out",
            out_dir.to_str().unwrap(),
        ];
        run(&[&base[..], extra].concat())
    };
    let out = import(&maf, "typo", &["--species", "rn4,hg81"]);
    assert_refused(&out, "--species `hg81` is in no block; the alignment has");
    let first = stderr(&out).lines().next().unwrap_or_default().to_string();
    assert!(
        first.contains(MM9) && first.contains("hg18") && first.contains("rn4"),
        "{first}"
    );

    // A second rn4 row in the first block: the first row wins, and the drop is counted.
    let text = std::fs::read_to_string(&maf).unwrap();
    let rn4 = text.lines().find(|line| line.starts_with("s rn4.")).unwrap();
    let doubled = text.replacen(&format!("{rn4}\n"), &format!("{rn4}\n{rn4}\n"), 1);
    let doubled_maf = dir.join("doubled.maf");
    std::fs::write(&doubled_maf, doubled).unwrap();
    let once = import(&maf, "once", &[]);
    let twice = import(doubled_maf.to_str().unwrap(), "twice", &[]);
    assert!(once.status.success() && twice.status.success(), "{}", stderr(&twice));
    assert_eq!(duplicate_rows(&twice), duplicate_rows(&once) + 1, "{}", stderr(&twice));
}

#[test]
fn a_bed_strand_other_than_plus_minus_or_dot_is_an_error_naming_the_line() {
    let dir = scratch("bed-strand");
    let bed = dir.join("regions.bed");
    std::fs::write(
        &bed,
        "chr10\t3134100\t3140100\tr1\t0\t+\nchr10\t3141000\t3143000\tr2\t0\tx\n",
    )
    .unwrap();
    let out = pretrain_with("bed-strand-run", &["--regions", bed.to_str().unwrap()]);
    assert_refused(&out, &format!("{}:2: strand `x` is not +, - or .", bed.display()));
}

/// A write that fails during training (the file-size limit stands in for a full disk: the same
/// failed write, without a small file system to fill): one error naming the checkpoint file and
/// the system's reason, no panic, no partial file, no final model.
#[test]
fn a_checkpoint_that_cannot_be_written_stops_training_with_the_file_named() {
    let dir = scratch("full-disk");
    let out_dir = dir.join("run");
    let maf = data(MM9);
    let args = tiny_pretrain(&maf, out_dir.to_str().unwrap(), "6", "2");
    // The model file (~37 KB) is over the 20 KiB limit, config.json and the logs are under it;
    // SIGXFSZ is ignored so that the write fails instead of killing the process.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 20; exec \"$0\" \"$@\"")
        .arg(msamamba())
        .args(&args)
        .output()
        .expect("run msamamba under a file-size limit");
    assert_refused(&out, "writing ");
    let first = stderr(&out).lines().next().unwrap_or_default().to_string();
    // The model or the optimizer state, whichever burn-train writes first.
    assert!(
        first.contains("/checkpoint/") && first.contains("-1.mpk: File too large"),
        "{first}"
    );
    let partial: Vec<_> = std::fs::read_dir(out_dir.join("checkpoint/.partial"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(partial.is_empty(), "partial files left behind: {partial:?}");
    assert!(!out_dir.join("model.mpk").exists(), "a final model was written");
}

/// The process's umask (inherited by the runs it starts), as the kernel records it.
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).unwrap();
    u32::from_str_radix(line.trim(), 8).unwrap()
}

#[test]
fn a_finished_run_is_refused_as_out_unless_overwritten_and_outputs_get_the_umask_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, run_dir) = tiny_trained_run("run-dir-reuse");
    let mode = |name: &str| std::fs::metadata(run_dir.join(name)).unwrap().permissions().mode() & 0o777;
    for name in ["config.json", "summary.json", "loss_curve.png"] {
        assert_eq!(mode(name), 0o666 & !umask(), "{name}: mode {:o}", mode(name));
    }
    // A finished run without its checkpoints: nothing but its files says it is a run.
    std::fs::remove_dir_all(run_dir.join("checkpoint")).unwrap();
    let model = std::fs::read(run_dir.join("model.mpk")).unwrap();
    let maf = data(MM9);
    let again = tiny_pretrain(&maf, run_dir.to_str().unwrap(), "2", "2");
    let out = run(&again);
    assert_refused(
        &out,
        "holds a run (config.json, train.tsv, valid.tsv, model.mpk, summary.json",
    );
    assert!(stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(run_dir.join("model.mpk")).unwrap(),
        model,
        "the model is kept"
    );

    let out = run(&[&again[..], &["--overwrite"]].concat());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains("--overwrite: removing")).collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains("model.mpk") && said[0].contains("train.tsv"), "{err}");
    assert_eq!(
        steps_in(&run_dir.join("train.tsv")),
        [1, 2],
        "the old run's rows are gone"
    );
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_naming_the_key_and_the_file() {
    let dir = scratch("config-unknown-key");
    let config = dir.join("config.json");
    std::fs::write(&config, "{\"version\": 1, \"lr\": 0.001, \"stepz\": 10}").unwrap();
    let out = pretrain_with("config-unknown-key-out", &["--config", config.to_str().unwrap()]);
    assert_refused(&out, &format!("{}: unknown key `stepz`", config.display()));
}

#[test]
fn an_interrupted_score_removes_its_unfinished_output() {
    let (dir, run_dir) = tiny_trained_run("sigint");
    // The bundled VCF's records many times over: long enough to interrupt while it scores.
    let text = std::fs::read_to_string(data(MM9_VCF)).unwrap();
    let (header, body): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('#'));
    let mut big = header.join("\n") + "\n";
    for _ in 0..400 {
        big += &(body.join("\n") + "\n");
    }
    let vcf = dir.join("big.vcf");
    std::fs::write(&vcf, big).unwrap();
    let scored = dir.join("scored.vcf");
    let maf = data(MM9);
    let mut args = score_args(vcf.to_str().unwrap(), run_dir.to_str().unwrap(), ["--maf", &maf]);
    args.extend(["--out", scored.to_str().unwrap()]);
    let mut child = std::process::Command::new(msamamba())
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".scored.vcf.partial-"))
    };
    let start = std::time::Instant::now();
    while !partial() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "score ended before its output was started"
        );
        assert!(start.elapsed().as_secs() < 120, "no unfinished output after 120 s");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    let mut left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["big.vcf", "run"], "nothing of the interrupted output is left");
}

#[test]
fn a_cpu_run_too_big_for_memory_is_refused_with_the_estimate_not_aborted() {
    for (flag, value) in [("--batch-size", "100000000"), ("--d-model", "1000000")] {
        let dir = scratch(&format!("too-big{flag}"));
        let (maf, out_dir) = (data(MM9), dir.join("run"));
        let mut args = tiny_pretrain(&maf, out_dir.to_str().unwrap(), "2", "2");
        let at = args.iter().position(|a| *a == flag).unwrap();
        args[at + 1] = value;
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {err}");
        assert!(
            err.contains("need at least") && err.contains("GiB of memory is available"),
            "{err}"
        );
        assert!(!dir.join("run/model.mpk").exists());
    }
}

/// The files of the store directory `store` as a zip with stored (uncompressed) entries.
fn zip_store(store: &Path, zip: &Path) {
    use std::io::Write;
    let mut writer = ::zip::ZipWriter::new(std::fs::File::create(zip).unwrap());
    let options = ::zip::write::SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Stored);
    let mut folders = vec![store.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let name = path.strip_prefix(store).unwrap().to_str().unwrap().to_string();
            writer.start_file(name, options).unwrap();
            writer.write_all(&std::fs::read(&path).unwrap()).unwrap();
        }
    }
    writer.finish().unwrap();
}

/// A store import-maf wrote records what it wrote: a damaged chunk, a deleted one or one added
/// later is an error naming the store and the chunk, never other bases or gaps; a store without
/// the record still reads, with a note that it is unchecked, and in a zip its entries' CRC32s
/// are checked.
#[test]
fn a_damaged_deleted_or_added_store_chunk_is_an_error_naming_the_store_and_chunk() {
    let dir = scratch("store-damage");
    let store = dir.join("mm9.zarr");
    import_mm9(&store);
    let window = |store: &Path, region: &str| run(&["window", "--store", store.to_str().unwrap(), "--region", region]);
    let inside = "chr10:3134101-3140100";
    let intact = window(&store, inside);
    assert!(intact.status.success(), "{}", stderr(&intact));
    assert!(!stderr(&intact).contains("no record"), "{}", stderr(&intact));

    // One bit of the chunk's last byte, an LZ4 literal: blosc decodes it to another base.
    let chunk = store.join("chr10/6125.0");
    let bytes = std::fs::read(&chunk).unwrap();
    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 1;
    std::fs::write(&chunk, &damaged).unwrap();
    let prefix = format!("{}: chromosome `chr10`: chunk `chr10/6125.0`", store.display());
    assert_refused(&window(&store, inside), &format!("{prefix} is damaged"));

    // Without the record (a store of an older import, or GPN-MSA's), the same store reads.
    let attributes = store.join("chr10/.zattrs");
    let record = std::fs::read(&attributes).unwrap();
    std::fs::write(&attributes, "{}").unwrap();
    let unchecked = window(&store, inside);
    assert!(unchecked.status.success(), "{}", stderr(&unchecked));
    assert!(
        stderr(&unchecked).contains("no record of the chunks written"),
        "{}",
        stderr(&unchecked)
    );
    std::fs::write(&attributes, &record).unwrap();

    std::fs::remove_file(&chunk).unwrap();
    assert_refused(&window(&store, inside), &format!("{prefix} is missing"));
    std::fs::write(&chunk, &bytes).unwrap();

    // A chunk where the import wrote none (it would read as bases from elsewhere).
    std::fs::write(store.join("chr10/0.0"), &bytes).unwrap();
    assert_refused(
        &window(&store, "chr10:1-100"),
        "chunk `chr10/0.0` was not written by the import",
    );
    std::fs::remove_file(store.join("chr10/0.0")).unwrap();

    // The same bit flipped inside a zip of the store without its record (as GPN-MSA's zips are):
    // the zip's own CRC32 of the entry catches it.
    std::fs::write(&attributes, "{}").unwrap();
    let zip = dir.join("mm9.zarr.zip");
    zip_store(&store, &zip);
    let intact = window(&zip, inside);
    assert!(intact.status.success(), "{}", stderr(&intact));
    let mut archive = std::fs::read(&zip).unwrap();
    let at = archive.windows(bytes.len()).position(|w| w == bytes).unwrap() + bytes.len() - 1;
    archive[at] ^= 1;
    std::fs::write(&zip, &archive).unwrap();
    let error = error_line(&window(&zip, inside));
    let expected = format!(
        "{}: chromosome `chr10`: `chr10/6125.0` is damaged: its CRC32 is",
        zip.display()
    );
    assert!(error.contains(&expected), "{error}");
}

#[test]
fn embed_names_the_part_of_a_region_the_alignment_lacks() {
    let (dir, run_dir) = tiny_trained_run("embed-partly");
    let maf = data(MM9);
    let embed = |region: &str| {
        let out = dir.join(format!("e{}", region.replace([':', '-'], "_")));
        run(&[
            "embed",
            "--checkpoint",
            run_dir.to_str().unwrap(),
            "--maf",
            &maf,
            "--region",
            region,
            "--out",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
        ])
    };
    // The alignment starts at 3134058 (1-based).
    assert_refused(
        &embed("chr10:3134001-3134100"),
        "region chr10:3134001-3134100 is only partly in the alignment: chr10:3134058-3134100 is, chr10:3134001-3134057 is not",
    );
    assert_refused(
        &embed("chr10:1-100"),
        "region chr10:1-100 is outside the alignment, which covers chr10:3134058-",
    );
    assert_refused(
        &embed("chr11:1-100"),
        "region chr11:1-100: chromosome `chr11` is not in the alignment (it has chr10)",
    );
}

/// A learning rate of 1e30 leaves weights after the first step that are finite in the file but
/// overflow in the forward pass: that checkpoint is removed, never called the last good one.
#[test]
fn a_checkpoint_whose_forward_pass_is_not_finite_is_not_kept_as_last_good() {
    let run_dir = scratch("exploding");
    let maf = data(MM9);
    let mut args = tiny_pretrain(&maf, run_dir.to_str().unwrap(), "4", "1");
    let lr = args.iter().position(|&arg| arg == "--lr").unwrap() + 1;
    args[lr] = "1e30";
    let out = run(&args);
    let err = stderr(&out);
    assert!(
        err.contains("checkpoint 1 removed")
            && err.contains("model-1.mpk: its weights are finite, but on a validation batch its loss is NaN"),
        "{err}"
    );
    assert!(error_line(&out).contains("last good checkpoint: none"), "{err}");
    assert!(!run_dir.join("checkpoint/model-1.mpk").exists());
}

/// A BED file with no region is named by every command that takes one (score would otherwise
/// score the whole VCF), and a pre-training run refused for it leaves no run in its --out.
#[test]
fn an_empty_bed_file_is_named_by_every_command_and_leaves_no_run() {
    let (dir, run_dir) = tiny_trained_run("empty-bed");
    let bed = dir.join("empty.bed");
    std::fs::write(&bed, "# no regions\ntrack name=x\n\n").unwrap();
    let (bed_arg, maf, vcf) = (bed.to_str().unwrap(), data(MM9), data(MM9_VCF));
    let expected = format!("{bed_arg}: no regions");
    let checkpoint = run_dir.to_str().unwrap();
    let embed_out = dir.join("embedded");
    let out = run(&[
        "embed",
        "--checkpoint",
        checkpoint,
        "--maf",
        &maf,
        "--bed",
        bed_arg,
        "--out",
        embed_out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_refused(&out, &expected);
    let scored = dir.join("scored.vcf.gz");
    let mut args = score_args(&vcf, checkpoint, ["--maf", &maf]);
    args.extend(["--regions-file", bed_arg, "--out", scored.to_str().unwrap()]);
    assert_refused(&run(&args), &expected);
    assert!(!scored.exists());

    let fresh = dir.join("fresh");
    let out = tiny_run(&fresh, "2", "2", None, &["--regions", bed_arg]);
    assert_refused(&out, &expected);
    // The same --out, with the input fixed, is a fresh run, not one to --resume.
    let out = tiny_run(&fresh, "2", "2", None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Weights finite in the file whose forward pass overflows (a checkpoint an older version kept as
/// the last good one): --resume passes over it to the one before, with the reason.
#[test]
fn resume_passes_over_a_checkpoint_whose_forward_pass_is_not_finite() {
    let run_dir = scratch("resume-exploding");
    let out = tiny_run(&run_dir, "6", "2", None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    scale_checkpoint(&run_dir, 3, 3e38);
    let out = resume(&run_dir);
    let err = stderr(&out);
    assert!(out.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("checkpoint 3 passed over") && err.contains("its weights are finite, but on a validation batch"),
        "{err}"
    );
    assert_eq!(
        steps_in(&run_dir.join("train.tsv")).last(),
        Some(&6),
        "trained from checkpoint 2 to the end"
    );
}
