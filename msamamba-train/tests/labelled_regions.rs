//! Label tables (GenomicBenchmarks layout), centred windows and the seeded train/test split.

mod common;

use msamamba_train::data::labels::{LabelsError, centred_window, read_labels};
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::train::finetune::split;

#[test]
fn a_table_with_header_comments_and_both_strands_reads_as_written() {
    let dir = common::scratch_dir("labels-ok");
    let path = dir.join("t.csv");
    std::fs::write(
        &path,
        "chrom,start,end,strand,label\n# a comment\nchr10,3134100,3134200,+,1\n\nchr10, 3134300 ,3134301,-,0\n",
    )
    .unwrap();
    let rows = read_labels(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].region,
        Region {
            chrom: "chr10".into(),
            start: 3134100,
            end: 3134200
        }
    );
    assert_eq!(
        (rows[0].strand, rows[0].label, rows[0].line),
        (Strand::Forward, true, 3)
    );
    assert_eq!(
        (rows[1].strand, rows[1].label, rows[1].line),
        (Strand::Reverse, false, 5)
    );
    // Without the header, the same rows.
    std::fs::write(&path, "chr10,3134100,3134200,+,1\n").unwrap();
    assert_eq!(read_labels(&path).unwrap().len(), 1);
}

#[test]
fn a_malformed_line_is_reported_with_file_and_line() {
    let dir = common::scratch_dir("labels-bad");
    let path = dir.join("t.csv");
    let cases = [
        ("chr10,5,10,+,2\n", "label `2` is not 0 or 1"),
        ("chr10,5,10,*,1\n", "strand `*` is not + or -"),
        ("chr10,5,10,+\n", "4 field(s), not 5"),
        ("chr10,10,5,+,1\n", "end 5 is not after start 10"),
        ("chr10,x5,10,+,1\n", "start `x5` is not a non-negative integer"),
    ];
    for (bad, reason) in cases {
        std::fs::write(&path, format!("chrom,start,end,strand,label\nchr10,1,2,+,0\n{bad}")).unwrap();
        let err = read_labels(&path).unwrap_err();
        assert!(matches!(err, LabelsError::Line { line: 3, .. }), "{err}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("{}:3: ", path.display())), "{text}");
        assert!(text.contains(reason), "{text}");
    }
    // A first data row with a mistyped number is an error, not a header to skip; so is a
    // header-like line after the first.
    for (text, line) in [
        ("chr10,1O0,200,+,1\nchr10,1,2,+,0\n", 1),
        (
            "chrom,start,end,strand,label\nchr10,1,2,+,0\nchrom,start,end,strand,label\n",
            3,
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = read_labels(&path).unwrap_err();
        assert!(matches!(err, LabelsError::Line { line: l, .. } if l == line), "{err}");
    }
    std::fs::write(&path, "chrom,start,end,strand,label\n").unwrap();
    assert!(matches!(read_labels(&path), Err(LabelsError::Empty { .. })));
    assert!(matches!(
        read_labels(&dir.join("missing.csv")),
        Err(LabelsError::Io { .. })
    ));
}

#[test]
fn the_window_is_centred_on_the_region() {
    let region = |start, end| Region {
        chrom: "c".into(),
        start,
        end,
    };
    // Centre 150: the 128-bp window is [86, 214).
    assert_eq!(centred_window(&region(100, 200), 128), Some(region(86, 214)));
    // A region of the window's length is its own window.
    assert_eq!(centred_window(&region(1000, 1032), 32), Some(region(1000, 1032)));
    // Centre 55 (odd length rounds down): [39, 71).
    assert_eq!(centred_window(&region(50, 61), 32), Some(region(39, 71)));
    assert_eq!(centred_window(&region(0, 10), 128), None);
}

#[test]
fn the_split_is_seeded_stratified_and_a_partition() {
    let labels: Vec<bool> = (0..50).map(|i| i % 5 == 0).collect(); // 10 positives, 40 negatives
    let (train, test) = split(&labels, 0.2, 3);
    assert_eq!(split(&labels, 0.2, 3), (train.clone(), test.clone()));
    assert_ne!(split(&labels, 0.2, 4).1, test);
    assert_eq!(test.iter().filter(|&&i| labels[i]).count(), 2);
    assert_eq!(test.iter().filter(|&&i| !labels[i]).count(), 8);
    let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..50).collect::<Vec<_>>());
    // A class of two still puts one in each split.
    let few = [true, true, false, false, false];
    let (train, test) = split(&few, 0.1, 0);
    assert_eq!(test.iter().filter(|&&i| few[i]).count(), 1);
    assert_eq!(train.iter().filter(|&&i| few[i]).count(), 1);
}
