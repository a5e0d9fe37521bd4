//! The `msamamba` binary end to end on the bundled real alignments (CPU).

use std::process::Command;
use std::time::{Duration, Instant};

use msamamba_tests::*;

#[test]
fn window_prints_the_rows_read_by_hand_from_the_maf() {
    let out = run(&[
        "window",
        "--maf",
        &data(MM9),
        "--target",
        "mm9",
        "--region",
        "chr10:3134200-3134210",
        "--species",
        "rn4,hg18",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Read off the file: the block at mm9.chr10 3134196 (rn4 and hg18 rows of that block).
    assert_eq!(
        stdout(&out),
        ">mm9\nCTGGCGTCCGG\n>rn4\nGGGGAGTCCCA\n>hg18\nGGGACGCTGCG\n"
    );
}

#[test]
fn bad_inputs_fail_with_one_line_naming_file_and_line() {
    let out = run(&[
        "window",
        "--maf",
        &data("maf/ucsc_mm9_chr10_bad.maf"),
        "--target",
        "mm9",
        "--region",
        "chr10:3134100-3134160",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ucsc_mm9_chr10_bad.maf:87:"), "{err}");

    let out = run(&[
        "window",
        "--maf",
        "/nonexistent.maf",
        "--target",
        "mm9",
        "--region",
        "chr10:1-5",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent.maf"), "{}", stderr(&out));

    let out = run(&[
        "window",
        "--maf",
        &data(MM9),
        "--target",
        "mm9",
        "--region",
        "chr10:9-5",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--region chr10:9-5"), "{}", stderr(&out));

    // The cause is said once, though the error quotes it and also carries it as its source.
    let out = run(&[
        "finetune",
        "--checkpoint",
        "run",
        "--labels",
        "/nonexistent.csv",
        "--out",
        "ft",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.starts_with("msamamba: error: /nonexistent.csv: "), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");

    let dir = scratch("bad-config");
    let out = run(&[
        "pretrain",
        "--maf",
        &data(MM9),
        "--target",
        "mm9",
        "--out",
        dir.to_str().unwrap(),
        "--batch-size",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--batch-size must be at least 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn alignment_flags_are_checked_the_same_way_by_every_subcommand() {
    let region = ["--region", "chr10:3134200-3134210"];
    let out = run(&[&["window", "--maf", &data(MM9)][..], &region].concat());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--maf needs --target"), "{}", stderr(&out));

    let out = run(&[&["window", "--store", "some.zarr", "--target", "mm9"][..], &region].concat());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--target goes with --maf"), "{}", stderr(&out));

    for command in ["pretrain", "window", "score", "embed", "finetune", "evaluate"] {
        let out = run(&[command, "--maf", &data(MM9), "--store", "some.zarr"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("--maf") && err.contains("--store"), "{command}: {err}");
    }
}

#[test]
fn imported_store_gives_the_same_windows_as_the_maf() {
    let dir = scratch("import");
    let store = dir.join("mm9.zarr");
    import_mm9(&store);
    for (region, strand) in [
        ("chr10:3134200-3134330", "+"),
        ("chr10:3170000-3170100", "-"),
        ("chr10:3134001-3134100", "+"),
    ] {
        let args = ["--target", "mm9", "--region", region, "--strand", strand];
        let from_maf = run(&[&["window", "--maf", &data(MM9)][..], &args].concat());
        let from_store = run(&[
            "window",
            "--store",
            store.to_str().unwrap(),
            "--region",
            region,
            "--strand",
            strand,
        ]);
        assert!(
            from_maf.status.success() && from_store.status.success(),
            "{}{}",
            stderr(&from_maf),
            stderr(&from_store)
        );
        assert_eq!(stdout(&from_maf), stdout(&from_store), "{region} {strand}");
    }
}

#[test]
fn short_pretraining_lowers_the_loss_and_follows_the_schedule() {
    let dir = scratch("pretrain");
    let out_dir = dir.join("run");
    let out = run(&tiny_pretrain(&data(MM9), out_dir.to_str().unwrap(), "40", "20"));
    assert!(out.status.success(), "{}", stderr(&out));
    for file in [
        "config.json",
        "model.mpk",
        "loss_curve.png",
        "train.tsv",
        "valid.tsv",
        "checkpoint/model-2.mpk",
    ] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
    let loss = tsv_column(&out_dir.join("train.tsv"), "loss");
    assert_eq!(loss.len(), 40);
    let mean = |s: &[(usize, f64)]| s.iter().map(|p| p.1).sum::<f64>() / s.len() as f64;
    let (first, last) = (mean(&loss[..8]), mean(&loss[32..]));
    assert!(
        last < first - 0.05,
        "loss did not drop: first steps {first:.3}, last steps {last:.3}"
    );
    // lr = 3e-3 * step / 4 for the 4 warmup steps, then cosine to 0 over the other 36.
    for (step, lr) in tsv_column(&out_dir.join("train.tsv"), "lr") {
        let want = if step <= 4 {
            3e-3 * step as f64 / 4.0
        } else {
            3e-3 * 0.5 * (1.0 + (std::f64::consts::PI * (step - 4) as f64 / 36.0).cos())
        };
        assert!(
            (lr - want).abs() < 1e-9 + 1e-6 * want,
            "step {step}: lr {lr}, formula {want}"
        );
    }
    assert!(
        stdout(&out).contains("per-column frequency baseline"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn killed_run_resumes_from_its_last_checkpoint_with_the_same_data() {
    let dir = scratch("resume");
    let out_dir = dir.join("run");
    let out_str = out_dir.to_str().unwrap().to_string();
    let maf = data(MM9);
    // A reference run that is never interrupted.
    let reference = dir.join("reference");
    let out = run(&tiny_pretrain(&maf, reference.to_str().unwrap(), "12", "3"));
    assert!(out.status.success(), "{}", stderr(&out));
    let reference_loss = tsv_column(&reference.join("train.tsv"), "loss");

    let mut child = Command::new(msamamba())
        .args(tiny_pretrain(&maf, &out_str, "12", "3"))
        .spawn()
        .expect("start");
    let started = Instant::now();
    while !out_dir.join("checkpoint/scheduler-2.mpk").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint after 300 s"
        );
        assert!(
            child.try_wait().expect("poll").is_none(),
            "run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    std::thread::sleep(Duration::from_millis(200));

    // What the backward keeps is not part of the run: resuming with another choice is allowed.
    let resume = [
        "pretrain",
        "--resume",
        "--out",
        &out_str,
        "--backend",
        "cpu",
        "--checkpointing",
        "none",
    ];
    let out = run(&resume);
    assert!(out.status.success(), "{}", stderr(&out));
    let loss = tsv_column(&out_dir.join("train.tsv"), "loss");
    // The last rows are the resumed run's: steps continue up to 12 and match the
    // uninterrupted run step for step (same weights, same data order).
    let resumed: Vec<_> = loss.iter().rev().take_while(|(s, _)| *s > 6).collect();
    assert!(!resumed.is_empty());
    assert_eq!(resumed.first().map(|p| p.0), Some(12));
    for (step, value) in resumed {
        let want = reference_loss[step - 1].1;
        assert!(
            (value - want).abs() < 1e-4,
            "step {step}: resumed loss {value}, uninterrupted {want}"
        );
    }
}

#[test]
fn non_finite_loss_stops_training_and_keeps_no_bad_checkpoint() {
    let dir = scratch("nan");
    let out_dir = dir.join("run");
    let maf = data(MM9);
    let mut args = tiny_pretrain(&maf, out_dir.to_str().unwrap(), "6", "1");
    let lr = args.iter().position(|a| *a == "3e-3").unwrap();
    args[lr] = "1e30";
    let out = run(&args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("NaN or infinite"), "{err}");
    assert!(!out_dir.join("model.mpk").exists(), "a final model was written");
}

#[test]
fn score_and_embed_use_a_pretrained_run() {
    let dir = scratch("score");
    let run_dir = dir.join("run");
    let out = run(&tiny_pretrain(&data(MM9), run_dir.to_str().unwrap(), "2", "2"));
    assert!(out.status.success(), "{}", stderr(&out));
    let vcf = dir.join("v.vcf");
    // Bases read from the MAF at chr10:3134200-3134202 are C, T, G; the A at 3134202 is wrong.
    std::fs::write(
        &vcf,
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n\
         chr10\t3134200\tv1\tC\tG\t.\t.\t.\nchr10\t3134201\tv2\tT\tC,G\t.\t.\t.\n\
         chr10\t3134202\tv3\tA\tT\t.\t.\t.\nchr10\t3134203\tv4\tAT\tA\t.\t.\t.\n",
    )
    .unwrap();
    let run_str = run_dir.to_str().unwrap();
    let (vcf_str, mm9) = (vcf.to_str().unwrap(), data(MM9));
    let score = [
        "score",
        "--vcf",
        vcf_str,
        "--checkpoint",
        run_str,
        "--maf",
        &mm9,
        "--target",
        "mm9",
        "--window",
        "32",
    ];
    let out = run(&score);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Vec<String>> = stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    let keys: Vec<_> = rows
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(
        keys,
        [("3134200", "C", "G"), ("3134201", "T", "C"), ("3134201", "T", "G")]
    );
    assert!(rows.iter().all(|r| r[4].parse::<f64>().is_ok_and(f64::is_finite)));
    assert!(
        stderr(&out).contains("chr10:3134202 line 5: REF A but the alignment's target has G"),
        "{}",
        stderr(&out)
    );

    // VCF output keeps the input's meta lines and adds the score as an INFO field.
    let scored = dir.join("scored.vcf");
    let out = run(&[&score[..], &["--out", scored.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&scored).unwrap();
    assert!(text.starts_with("##fileformat=VCFv4.2\n"), "{text}");
    assert!(text.contains("##INFO=<ID=MSAMAMBA,Number=A,Type=Float,"), "{text}");
    let records: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(records.len(), 3);
    for (record, tsv) in records.iter().zip(&rows) {
        assert_eq!(record[..5], ["chr10", &tsv[1], record[2], &tsv[2], &tsv[3]]);
        assert_eq!(record[7], format!("MSAMAMBA={}", tsv[4]));
    }
    assert_eq!(records[0][2], "v1");

    let emb = dir.join("e.safetensors");
    let out = run(&[
        "embed",
        "--checkpoint",
        run_str,
        "--maf",
        &data(MM9),
        "--target",
        "mm9",
        "--region",
        "chr10:3134200-3134231",
        "--region",
        "chr10:3134300-3134309",
        "--out",
        emb.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&emb).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["chr10:3134200-3134231"]["shape"], serde_json::json!([32, 16]));
    assert_eq!(header["chr10:3134300-3134309"]["shape"], serde_json::json!([10, 16]));
    assert_eq!(header["chr10:3134200-3134231"]["dtype"], "F32");
}

#[test]
fn pretraining_on_a_store_over_a_region_list_equals_pretraining_on_the_maf() {
    let dir = scratch("store-pretrain");
    let store = dir.join("mm9.zarr");
    import_mm9(&store);
    let bed = dir.join("regions.bed");
    std::fs::write(&bed, "chr10\t3134100\t3140100\nchr10\t3141000\t3143000\n").unwrap();
    let losses = |source: &[&str], name: &str| {
        let run_dir = dir.join(name);
        let mut args = tiny_pretrain("", run_dir.to_str().unwrap(), "4", "2");
        // Replace `--maf M --target mm9` with this source.
        args.splice(1..5, source.iter().copied());
        args.extend(["--regions", bed.to_str().unwrap()]);
        let out = run(&args);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        std::fs::read_to_string(run_dir.join("train.tsv")).unwrap()
    };
    let from_maf = losses(&["--maf", &data(MM9), "--target", "mm9"], "maf");
    let from_store = losses(&["--store", store.to_str().unwrap()], "store");
    assert_eq!(from_maf.lines().count(), 5, "{from_maf}");
    assert_eq!(from_store, from_maf);

    // Every training window of the first region reads a corrupt chunk (512 positions per chunk,
    // validation starts at 3139500): training stops with the store's error, nothing is kept.
    for chunk in 6121..=6130 {
        std::fs::write(store.join(format!("chr10/{chunk}.0")), b"not a chunk").unwrap();
    }
    std::fs::write(&bed, "chr10\t3134100\t3140100\n").unwrap();
    let run_dir = dir.join("corrupt");
    let mut args = tiny_pretrain("", run_dir.to_str().unwrap(), "4", "2");
    args.splice(
        1..5,
        ["--store", store.to_str().unwrap(), "--regions", bed.to_str().unwrap()],
    );
    let out = run(&args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("a window could not be read"), "{err}");
    assert!(err.contains("chr10"), "{err}");
    assert!(!run_dir.join("model.mpk").exists());
    assert_eq!(
        std::fs::read_dir(run_dir.join("checkpoint")).map_or(0, |d| d.count()),
        0
    );
}
