//! The `msamamba` binary end to end on the bundled real alignments (CPU).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use arrow_array::{Array as _, ArrayRef, Int64Array, RecordBatch, StringArray};
use msamamba_tests::*;
use noodles_vcf::{
    self as vcf,
    variant::{
        RecordBuf,
        record_buf::info::field::{Value, value::Array},
    },
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::sync::Arc;

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
    // Runs compared in one chart; a folder that holds no run is named.
    let chart = dir.join("chart.png");
    let run_dir = out_dir.to_str().unwrap();
    let out = run(&["plot-losses", run_dir, run_dir, "--out", chart.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = std::fs::read_to_string(chart.with_extension("svg")).unwrap();
    assert!(svg.contains("run: validation"), "legend without the run's name");
    let missing = dir.join("no-run");
    let out = run(&[
        "plot-losses",
        missing.to_str().unwrap(),
        "--out",
        chart.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("no-run"),
        "{}",
        stderr(&out)
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

/// The variable that makes the device fail at a training step or a result read.
const INJECT: &str = "MSAMAMBA_INJECT_DEVICE_FAILURE_AT";

#[test]
fn a_device_failure_stops_each_command_with_one_line_and_writes_nothing_from_it() {
    let dir = scratch("device-failure");
    let out_dir = dir.join("run");
    let out_str = out_dir.to_str().unwrap().to_string();
    let maf = data(MM9);
    let args = tiny_pretrain(&maf, &out_str, "6", "2");
    let out = Command::new(msamamba()).args(&args).env(INJECT, "5").output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("training stopped at step 5"), "{err}");
    assert!(err.contains("failure injected"), "the reason is named: {err}");
    assert!(err.contains("checkpoint 2"), "the last good checkpoint is named: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for written in ["model.mpk", "summary.json", "checkpoint/model-3.mpk"] {
        assert!(
            !out_dir.join(written).exists(),
            "{written} was written after the failure"
        );
    }
    assert!(
        out_dir.join("checkpoint/model-2.mpk").exists(),
        "the last good checkpoint is kept"
    );

    // The kept checkpoint is good: the run resumes from it and ends.
    let out = run(&["pretrain", "--resume", "--out", &out_str, "--backend", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out_dir.join("model.mpk").exists());

    // Scoring fails at its first forward pass and leaves no output, whole or partial.
    let scored = dir.join("scored.vcf");
    let vcf = data(MM9_VCF);
    let mut score = score_args(&vcf, &out_str, ["--maf", &maf]);
    score.extend(["--out", scored.to_str().unwrap()]);
    let out = Command::new(msamamba()).args(&score).env(INJECT, "1").output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("failure injected"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("run")],
        "nothing but the run is left"
    );
}

/// The records of a VCF file (plain or bgzipped), with its header, parsed by noodles.
fn vcf_records(path: &Path) -> (vcf::Header, Vec<RecordBuf>) {
    let bytes = std::fs::read(path).unwrap();
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut noodles_bgzf::io::Reader::new(&bytes[..]), &mut text).unwrap();
        text
    } else {
        bytes
    };
    let mut reader = vcf::io::Reader::new(&text[..]);
    let header = reader.read_header().unwrap();
    let records = reader.record_bufs(&header).map(Result::unwrap).collect();
    (header, records)
}

/// An INFO array of a record, as text per ALT (`None`: the key is absent).
fn info_array(record: &RecordBuf, key: &str) -> Option<Vec<String>> {
    match record.info().get(key)? {
        Some(Value::Array(Array::Float(values))) => {
            Some(values.iter().map(|v| v.map_or(".".into(), |v| v.to_string())).collect())
        }
        Some(Value::Array(Array::String(values))) => {
            Some(values.iter().map(|v| v.clone().unwrap_or_else(|| ".".into())).collect())
        }
        other => panic!("{key}: {other:?}"),
    }
}

/// The arguments as `&str`s, for [`run`].
/// The rows of record batches as text (an empty string for null), column by column cast as
/// arrow's display does.
fn table_rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(i) {
                            String::new()
                        } else {
                            table_value(c.as_ref(), i)
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}

/// One value of a string, integer or float column as text.
fn table_value(column: &dyn arrow_array::Array, i: usize) -> String {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Int64Type};
    match column.data_type() {
        arrow_schema::DataType::Utf8 => column.as_string::<i32>().value(i).to_string(),
        arrow_schema::DataType::Int64 => column.as_primitive::<Int64Type>().value(i).to_string(),
        arrow_schema::DataType::Float32 => column.as_primitive::<Float32Type>().value(i).to_string(),
        other => panic!("a {other} column"),
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The rows of a TSV written by `score`, after its `#` header line.
fn tsv_rows(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#chrom\tpos\tid\tref\talt\tscore\treason"));
    lines.map(|l| l.split('\t').map(String::from).collect()).collect()
}

#[test]
fn score_keeps_every_vcf_record_in_every_format_and_embed_reads_the_same_run() {
    let (dir, run_dir) = tiny_trained_run("score");
    let (input, mm9) = (data(MM9_VCF), data(MM9));
    let score = |vcf: &str, out: Option<&Path>, extra: &[&str]| {
        let mut args = score_args(vcf, run_dir.to_str().unwrap(), ["--maf", &mm9]);
        if let Some(out) = out {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        args.extend(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };

    // VCF, scored three variants at a time.
    let scored = dir.join("scored.vcf");
    let args = score(
        &input,
        Some(&scored),
        &["--batch-size", "3", "--labels", "info:DAMAGING"],
    );
    let out = run(&strs(&args));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("causal: each strand's window ends at the site, window 32"),
        "{err}"
    );
    assert!(err.contains("AUROC"), "{err}");
    assert!(
        err.contains("chr10:3134202 line 13: REF A but the alignment's target has G"),
        "{err}"
    );
    let (in_header, in_records) = vcf_records(Path::new(&input));
    let (out_header, out_records) = vcf_records(&scored);
    assert_eq!(out_records.len(), in_records.len());
    assert_eq!(out_header.sample_names(), in_header.sample_names());
    assert_eq!(out_header.formats(), in_header.formats());
    for key in ["msamamba_version", "msamamba_command", "msamamba_checkpoint"] {
        assert!(out_header.get(key).is_some(), "no ##{key}");
    }
    let text = std::fs::read_to_string(&scored).unwrap();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("##msamamba_checkpoint_sha256="))
        .expect("checkpoint hash");
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    let mut scores = Vec::new();
    let mut reasons = Vec::new();
    for (a, b) in in_records.iter().zip(&out_records) {
        assert_eq!(a.reference_sequence_name(), b.reference_sequence_name());
        assert_eq!(a.variant_start(), b.variant_start());
        assert_eq!(a.ids(), b.ids());
        assert_eq!(a.reference_bases(), b.reference_bases());
        assert_eq!(a.alternate_bases(), b.alternate_bases());
        assert_eq!(a.quality_score(), b.quality_score());
        assert_eq!(a.filters(), b.filters());
        assert_eq!(a.samples(), b.samples());
        assert_eq!(a.info().get("DAMAGING"), b.info().get("DAMAGING"));
        let n = a.alternate_bases().as_ref().len();
        let score = info_array(b, "MSAMAMBA").unwrap_or(vec![".".into(); n]);
        let reason = info_array(b, "MSAMAMBA_SKIP").unwrap_or(vec![".".into(); n]);
        assert_eq!((score.len(), reason.len()), (n, n));
        scores.extend(score);
        reasons.extend(reason);
    }
    // Per ALT: v0 (its window starts before the alignment), v1, v2 (two ALTs), v3 (REF A
    // where the alignment has G), v4 (a deletion), v5-v7, v8 (T, and <DEL>), v9-v11, v12 (its
    // reverse window ends after the alignment), v13 (chr11).
    let expected = [
        "outside_alignment",
        ".",
        ".",
        ".",
        "ref_mismatch",
        "not_snv",
        ".",
        ".",
        ".",
        ".",
        "not_snv",
        ".",
        ".",
        ".",
        "outside_alignment",
        "chrom_not_in_alignment",
    ];
    assert_eq!(reasons, expected);
    for (score, reason) in scores.iter().zip(&reasons) {
        assert_eq!(score == ".", reason != ".", "score {score}, reason {reason}");
        assert!(
            score == "." || score.parse::<f32>().is_ok_and(f32::is_finite),
            "{score}"
        );
    }

    // bgzipped VCF: the same records, read back through noodles-bgzf.
    let gz = dir.join("scored.vcf.gz");
    let out = run(&strs(&score(&input, Some(&gz), &[])));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(&std::fs::read(&gz).unwrap()[..4], [0x1f, 0x8b, 0x08, 0x04]);
    let (_, gz_records) = vcf_records(&gz);
    assert_eq!(gz_records, out_records, "batch size or compression changed the records");

    // TSV: one row per ALT in input order, an empty score and a reason when not scored.
    let tsv = dir.join("scores.tsv");
    let out = run(&strs(&score(&input, Some(&tsv), &[])));
    assert!(out.status.success(), "{}", stderr(&out));
    let tsv_text = std::fs::read_to_string(&tsv).unwrap();
    let rows = tsv_rows(&tsv_text);
    let ids: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(
        ids,
        [
            "v0", "v1", "v2", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v8", "v9", "v10", "v11", "v12", "v13"
        ]
    );
    assert_eq!(rows[3][3..5], ["T", "G"]);
    let tsv_scores: Vec<&str> = rows.iter().map(|r| if r[5].is_empty() { "." } else { &r[5] }).collect();
    let tsv_reasons: Vec<&str> = rows.iter().map(|r| if r[6].is_empty() { "." } else { &r[6] }).collect();
    assert_eq!(tsv_scores, scores);
    assert_eq!(tsv_reasons, expected);

    // The same variants as a CSV table with a column of its own, scored into Parquet: every row
    // and column kept, the VCF's scores and reasons.
    let table = dir.join("variants.csv");
    let mut csv = String::from("chrom,pos,id,ref,alt,note\n");
    for (k, r) in rows.iter().enumerate() {
        csv.push_str(&format!("{},{},{},{},{},n{k}\n", r[0], r[1], r[2], r[3], r[4]));
    }
    std::fs::write(&table, csv).unwrap();
    let parquet_out = dir.join("scored.parquet");
    let mut args = score(&input, Some(&parquet_out), &[]);
    args[1..3].clone_from_slice(&["--variants".to_string(), table.to_str().unwrap().to_string()]);
    let out = run(&strs(&args));
    assert!(out.status.success(), "{}", stderr(&out));
    let batches: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&parquet_out).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let scored = table_rows(&batches);
    assert_eq!(scored.len(), rows.len());
    for (k, (got, want)) in scored.iter().zip(&rows).enumerate() {
        assert_eq!(got[..5], want[..5], "row {k}");
        assert_eq!(got[5], format!("n{k}"), "row {k}: the extra column");
        assert_eq!(got[7], want[6], "row {k}: reason");
        match (got[6].parse::<f32>(), want[5].parse::<f32>()) {
            (Ok(g), Ok(w)) => assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "row {k}: {g} vs {w}"),
            _ => assert_eq!((got[6].as_str(), want[5].as_str()), ("", ""), "row {k}"),
        }
    }
    // A Parquet table in (pos as integers), a TSV out: the VCF's TSV columns and scores.
    let parquet_in = dir.join("variants.parquet");
    let column =
        |k: usize| -> ArrayRef { Arc::new(StringArray::from(rows.iter().map(|r| r[k].clone()).collect::<Vec<_>>())) };
    let positions: ArrayRef = Arc::new(Int64Array::from(
        rows.iter().map(|r| r[1].parse::<i64>().unwrap()).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_from_iter([
        ("CHROM", column(0)),
        ("POS", positions),
        ("ID", column(2)),
        ("REF", column(3)),
        ("ALT", column(4)),
    ])
    .unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&parquet_in).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let back = dir.join("from-parquet.tsv");
    let mut args = score(&input, Some(&back), &[]);
    args[1..3].clone_from_slice(&["--variants".to_string(), parquet_in.to_str().unwrap().to_string()]);
    let out = run(&strs(&args));
    assert!(out.status.success(), "{}", stderr(&out));
    let back = std::fs::read_to_string(&back).unwrap();
    let back: Vec<Vec<&str>> = back.lines().skip(1).map(|l| l.split('\t').collect()).collect();
    assert_eq!(back.len(), rows.len());
    for (got, want) in back.iter().zip(&rows) {
        assert_eq!(got[..5], want[..5]);
        assert_eq!((got[5].is_empty(), got[6]), (want[5].is_empty(), want[6].as_str()));
    }
    // Flags that only a VCF takes are refused, naming them.
    let mut args = score(&input, None, &["--index"]);
    args[1..3].clone_from_slice(&["--variants".to_string(), table.to_str().unwrap().to_string()]);
    let out = run(&strs(&args));
    assert!(
        !out.status.success() && stderr(&out).contains("--index works on a VCF"),
        "{}",
        stderr(&out)
    );

    // Standard input, TSV on stdout: the same as the file.
    let vcf_bytes = std::fs::read(&input).unwrap();
    let out = run_with_stdin(&strs(&score("-", None, &[])), &vcf_bytes);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), tsv_text);
    // bgzip on standard input, and a VCF scored before (this run's own): the same rows.
    let out = run_with_stdin(&strs(&score("-", None, &[])), &std::fs::read(&gz).unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), tsv_text);

    let run_str = run_dir.to_str().unwrap();
    let emb = dir.join("e.zarr");
    let bed = dir.join("regions.bed");
    std::fs::write(&bed, "chr10\t3134299\t3134309\tb1\t0\t-\n").unwrap();
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
        "--bed",
        bed.to_str().unwrap(),
        "--pool",
        "mean",
        "--out",
        emb.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (shape, first, attributes) = embedding(&emb, 0);
    assert_eq!(
        (shape, attributes["region"].as_str()),
        (vec![32, 16], Some("chr10:3134200-3134231"))
    );
    let (shape, second, attributes) = embedding(&emb, 1);
    assert_eq!(shape, [10, 16]);
    assert_eq!(
        (&attributes["strand"], &attributes["name"]),
        (&"-".into(), &"b1".into())
    );
    assert!(first.iter().chain(&second).all(|v| v.is_finite()));
    let root = store_attributes(&emb);
    assert_eq!(root["regions"][1]["region"], "chr10:3134300-3134309");
    assert_eq!(root["species"].as_array().map(Vec::len), Some(30));
    // The pooled row is the mean over positions.
    let storage = std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(&emb).unwrap());
    let pooled = zarrs::array::Array::open(storage, "/pooled").unwrap();
    assert_eq!(pooled.shape(), [2, 16]);
    let means = pooled.retrieve_array_subset::<Vec<f32>>(&pooled.subset_all()).unwrap();
    for d in 0..16 {
        let mean = second.iter().skip(d).step_by(16).sum::<f32>() / 10.0;
        assert!(
            (means[16 + d] - mean).abs() <= 1e-5 * (1.0 + mean.abs()),
            "{d}: {} vs {mean}",
            means[16 + d]
        );
    }
}

#[test]
fn score_matches_chr_prefixes_both_ways_and_scores_a_store_as_the_maf() {
    let (dir, run_dir) = tiny_trained_run("score-chr");
    // The alignment, and the example VCF, with `10` for `chr10`.
    let bare_maf = dir.join("bare.maf");
    std::fs::write(
        &bare_maf,
        std::fs::read_to_string(data(MM9))
            .unwrap()
            .replace("mm9.chr10", "mm9.10"),
    )
    .unwrap();
    let bare_vcf = dir.join("bare.vcf");
    let vcf_text = std::fs::read_to_string(data(MM9_VCF)).unwrap();
    std::fs::write(&bare_vcf, vcf_text.replace("\nchr", "\n").replace("ID=chr", "ID=")).unwrap();
    let score = |vcf: &str, maf: &str| {
        let out = run(&score_args(vcf, run_dir.to_str().unwrap(), ["--maf", maf]));
        assert!(out.status.success(), "{}", stderr(&out));
        // Score and reason per ALT.
        let rows: Vec<(String, String)> = tsv_rows(&stdout(&out))
            .into_iter()
            .map(|r| (r[5].clone(), r[6].clone()))
            .collect();
        (rows, stderr(&out))
    };
    let (same, err) = score(&data(MM9_VCF), &data(MM9));
    assert!(!err.contains("note:"), "{err}");
    assert_eq!(same.iter().filter(|(score, _)| !score.is_empty()).count(), 10);
    for (vcf, maf, note) in [
        (
            data(MM9_VCF),
            bare_maf.to_str().unwrap().to_string(),
            "as `chr10`, the alignment as `10`",
        ),
        (
            bare_vcf.to_str().unwrap().to_string(),
            data(MM9),
            "as `10`, the alignment as `chr10`",
        ),
    ] {
        let (renamed, err) = score(&vcf, &maf);
        assert_eq!(renamed, same, "{vcf} against {maf}");
        assert!(err.contains(note), "{err}");
        assert_eq!(err.matches("note:").count(), 1, "{err}");
    }

    // A store holds all of chr10, so the two variants whose window the MAF's span cuts off (v0,
    // v12) are scored there; the others score as from the MAF.
    let store = dir.join("mm9.zarr");
    import_mm9(&store);
    let vcf = data(MM9_VCF);
    let out = run(&score_args(
        &vcf,
        run_dir.to_str().unwrap(),
        ["--store", store.to_str().unwrap()],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let from_store = tsv_rows(&stdout(&out));
    assert_eq!(from_store.len(), same.len());
    for (k, (row, (score, reason))) in from_store.iter().zip(&same).enumerate() {
        if reason == "outside_alignment" {
            assert!(row[5].parse::<f32>().is_ok_and(f32::is_finite), "{row:?}");
        } else {
            assert_eq!((&row[5], &row[6]), (score, reason), "row {k}");
        }
    }
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

#[test]
fn score_indexes_its_bgzipped_vcf_and_region_shards_together_score_every_record_once() {
    let (dir, run_dir) = tiny_trained_run("score-index");
    let (input, mm9) = (data(MM9_VCF), data(MM9));
    let score = |vcf: &str, extra: &[&str]| {
        let mut args = score_args(vcf, run_dir.to_str().unwrap(), ["--maf", &mm9]);
        args.extend(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        out
    };

    // The bgzipped VCF and its index, read back through noodles' indexed reader: every record,
    // with its samples, and a region query finds the records whose POS lies there.
    let gz = dir.join("scored.vcf.gz");
    score(&input, &["--out", gz.to_str().unwrap(), "--index", "--threads", "2"]);
    assert!(dir.join("scored.vcf.gz.tbi").exists());
    let mut reader = vcf::io::indexed_reader::Builder::default()
        .build_from_path(&gz)
        .unwrap();
    let header = reader.read_header().unwrap();
    let records: Vec<RecordBuf> = reader.record_bufs(&header).map(Result::unwrap).collect();
    let (_, in_records) = vcf_records(Path::new(&input));
    assert_eq!(records.len(), in_records.len());
    for (a, b) in in_records.iter().zip(&records) {
        assert_eq!((a.ids(), a.samples()), (b.ids(), b.samples()));
    }
    use noodles_vcf::variant::record::Ids as _;
    let region: noodles_core::Region = "chr10:3134200-3134400".parse().unwrap();
    let ids: Vec<String> = reader
        .query(&header, &region)
        .unwrap()
        .records()
        .map(|r| r.unwrap().ids().iter().map(String::from).collect::<String>())
        .collect();
    assert_eq!(ids, ["v1", "v2", "v3", "v4", "v5", "v6"]);

    // bcftools (htslib) reads the same file and its index: every record with its columns, as
    // in the input, and the index's region query.
    let bcftools = |args: &[&str]| {
        let out = Command::new("bcftools")
            .args(args)
            .output()
            .expect("bcftools is not installed (`cargo xtask ci` installs it)");
        assert!(out.status.success(), "bcftools {args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let columns = "%CHROM\t%POS\t%ID\t%REF\t%ALT\t%QUAL\t%FILTER\t%INFO/DAMAGING[\t%SAMPLE=%GT:%DP]\n";
    let (ours, theirs) = (
        bcftools(&["query", "-f", columns, gz.to_str().unwrap()]),
        bcftools(&["query", "-f", columns, &input]),
    );
    assert_eq!(ours.lines().count(), in_records.len());
    assert_eq!(ours, theirs);
    let ids = bcftools(&[
        "query",
        "-r",
        "chr10:3134200-3134400",
        "-f",
        "%ID\n",
        gz.to_str().unwrap(),
    ]);
    assert_eq!(ids.lines().collect::<Vec<_>>(), ["v1", "v2", "v3", "v4", "v5", "v6"]);

    // Two shards, one by --regions and one by --regions-file and a whole chromosome, together
    // give the whole file's rows once each, in order.
    let whole = tsv_rows(&stdout(&score(gz.to_str().unwrap(), &[])));
    let first = tsv_rows(&stdout(&score(gz.to_str().unwrap(), &["--regions", "chr10:1-3134301"])));
    let bed = dir.join("rest.bed");
    std::fs::write(&bed, "chr10\t3134301\t4000000\n").unwrap();
    let rest = tsv_rows(&stdout(&score(
        gz.to_str().unwrap(),
        &["--regions-file", bed.to_str().unwrap(), "--regions", "chr11"],
    )));
    assert_eq!(first.last().map(|r| r[2].as_str()), Some("v5"));
    assert_eq!([first, rest].concat(), whole);

    // -q keeps the warnings and drops the notes and the summary; -qq keeps nothing.
    let quiet = stderr(&score(gz.to_str().unwrap(), &["-q"]));
    assert!(
        quiet.contains("warning:") && !quiet.contains("score: causal"),
        "{quiet}"
    );
    assert_eq!(stderr(&score(gz.to_str().unwrap(), &["-qq"])), "");

    // Regions need an index; an index needs a bgzipped VCF out.
    let out = run(&[
        &score_args(&input, run_dir.to_str().unwrap(), ["--maf", &mm9])[..],
        &["--regions", "chr10"],
    ]
    .concat());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no index"), "{}", stderr(&out));
    let tsv = dir.join("x.tsv");
    let out = run(&[
        &score_args(&input, run_dir.to_str().unwrap(), ["--maf", &mm9])[..],
        &["--out", tsv.to_str().unwrap(), "--index"],
    ]
    .concat());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--index needs --out x.vcf.gz"),
        "{}",
        stderr(&out)
    );
}
