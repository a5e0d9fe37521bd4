//! The streaming MAF reader on the bundled real files and on broken inputs.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{fixture, gzip, scratch_dir};
use msamamba_train::data::maf::{Block, MafError, MafErrorKind, MafReader, Strand, split_src};

/// Reads every block of a file, failing the test on the first error.
fn read_all(path: &Path) -> Vec<Block> {
    MafReader::open(path).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Reads until the first error, which the test expects.
fn first_error(path: &Path) -> MafError {
    match MafReader::open(path).and_then(|reader| reader.collect::<Result<Vec<_>, _>>()) {
        Ok(blocks) => panic!("{} parsed into {} blocks", path.display(), blocks.len()),
        Err(err) => err,
    }
}

/// Reads MAF text given in the test.
fn first_error_in(test: &str, text: &str) -> MafError {
    let path = scratch_dir(test).join("input.maf");
    std::fs::write(&path, text).unwrap();
    first_error(&path)
}

/// Distinct species (src before the first `.`) over the `s` rows.
fn species(blocks: &[Block]) -> HashSet<&str> {
    blocks
        .iter()
        .flat_map(|b| &b.rows)
        .map(|row| split_src(&row.src).0)
        .collect()
}

#[test]
fn block_and_species_counts_match_the_published_files() {
    for (name, blocks, species_count) in [
        ("ucsc_mm9_chr10_big.maf", 983, 30),
        ("ucsc_mm9_chr10.maf", 48, 17),
        ("hg17_chr22_14.5M-15.5M.phast.maf", 1415, 5),
        ("last_multiMito.maf", 14, 4),
        ("ucsc_test.maf", 3, 5),
    ] {
        let read = read_all(&fixture(name));
        assert_eq!(read.len(), blocks, "{name} blocks");
        assert_eq!(species(&read).len(), species_count, "{name} species");
    }
}

#[test]
fn rows_keep_their_fields_as_written() {
    let blocks = read_all(&fixture("ucsc_mm9_chr10_big.maf"));
    let first = &blocks[0];
    assert_eq!((first.line, first.score), (1, Some(-1786.0)));
    assert_eq!(first.columns(), 37);
    let srcs: Vec<&str> = first.rows.iter().map(|r| r.src.as_str()).collect();
    assert_eq!(
        srcs,
        ["mm9.chr10", "rn4.chr1", "oryCun1.scaffold_197619", "equCab1.chr31"]
    );
    let mouse = &first.rows[0];
    assert_eq!(
        (mouse.start, mouse.size, mouse.strand, mouse.src_size),
        (3134057, 13, Strand::Forward, 129993255)
    );
    assert_eq!(mouse.text, b"------------------------CATCTCAAACCAA");
    assert_eq!(first.rows[1].strand, Strand::Reverse);
    // `e` rows: present, no sequence.
    assert_eq!(first.empty.len(), 16);
    let rhesus = &first.empty[2];
    assert_eq!(
        (rhesus.src.as_str(), rhesus.start, rhesus.size, rhesus.status),
        ("rheMac2.chr4", 108433816, 0, b'C')
    );
    assert_eq!(blocks[1].line, 29);
}

#[test]
fn attributes_track_lines_and_whitespace_only_separators_are_accepted() {
    // ucsc_test.maf opens with a `track` line and separates blocks with lines of spaces.
    let blocks = read_all(&fixture("ucsc_test.maf"));
    assert_eq!(blocks[1].score, Some(5062.0));
    assert_eq!(blocks[1].rows[2].text, b"TAAAGA");
    // LAST writes a bare `a` line and per-column `p` lines.
    let last = read_all(&fixture("last_multiMito.maf"));
    assert!(
        last.iter()
            .all(|b| b.score.is_none() && b.attrs.is_empty() && b.rows.len() == 4)
    );
    let text = "a score=12 pass=2\ns x.1 0 2 + 5 AC\n";
    let path = scratch_dir("attrs").join("a.maf");
    std::fs::write(&path, text).unwrap();
    let blocks = read_all(&path);
    assert_eq!(blocks[0].attrs, [("pass".to_string(), "2".to_string())]);
}

#[test]
fn gzip_and_bgzip_inputs_give_the_same_blocks_as_plain() {
    let plain_path = fixture("ucsc_mm9_chr10_big.maf");
    let plain = std::fs::read(&plain_path).unwrap();
    let dir = scratch_dir("gzip");
    let gz_path = dir.join("big.maf.gz");
    std::fs::write(&gz_path, gzip(&plain)).unwrap();
    // bgzip writes a series of gzip members; a split mid-line shows members are joined.
    let (head, tail) = plain.split_at(plain.len() / 3);
    let bgz_path = dir.join("big.maf.bgz");
    std::fs::write(&bgz_path, [gzip(head), gzip(tail)].concat()).unwrap();
    let expected = read_all(&plain_path);
    assert_eq!(read_all(&gz_path), expected);
    assert_eq!(read_all(&bgz_path), expected);
    // A real BGZF file (written by htslib's bgzip) goes through the multithreaded block reader.
    let bgzf = read_all(&fixture("ucsc_mm9_chr10.maf.bgz"));
    assert_eq!(bgzf, read_all(&fixture("ucsc_mm9_chr10.maf")));
    assert_eq!(bgzf.len(), 48);
}

#[test]
fn truncated_gzip_is_an_io_error_after_the_last_complete_data() {
    let plain = std::fs::read(fixture("ucsc_mm9_chr10.maf")).unwrap();
    let compressed = gzip(&plain);
    let path = scratch_dir("truncated-gzip").join("cut.maf.gz");
    std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
    let err = first_error(&path);
    assert!(matches!(err.kind, MafErrorKind::Io(_)), "{err}");
    assert!(err.line > 1, "{err}");
    assert_eq!(err.path, path);
    // The same for a BGZF file cut inside its second block.
    let bgzf = std::fs::read(fixture("ucsc_mm9_chr10.maf.bgz")).unwrap();
    let path = scratch_dir("truncated-gzip").join("cut.maf.bgz");
    std::fs::write(&path, &bgzf[..bgzf.len() * 2 / 3]).unwrap();
    let err = first_error(&path);
    assert!(matches!(err.kind, MafErrorKind::Io(_)), "{err}");
    assert!(err.line > 1, "{err}");
}

#[test]
fn size_field_disagreeing_with_the_text_is_reported_at_its_line() {
    for (name, line) in [("ucsc_mm9_chr10_bad.maf", 87), ("length_coords_mismatch.maf", 9)] {
        let err = first_error(&fixture(name));
        assert_eq!(err.line, line, "{err}");
        assert!(
            matches!(err.kind, MafErrorKind::SizeMismatch { size: 319, bases: 219 }),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{name}:{line}: ")), "{err}");
    }
}

#[test]
fn malformed_lines_are_typed_errors_at_their_line() {
    let header = "##maf version=1\na score=1\ns hg.chr1 0 4 + 10 AC-GT\n";
    // (scratch name, lines after the header block, error line, expected reason)
    type Case = (&'static str, &'static str, u64, fn(&MafErrorKind) -> bool);
    let cases: &[Case] = &[
        (
            "unknown-type",
            "x what\n",
            4,
            |k| matches!(k, MafErrorKind::UnknownLine(w) if w == "x"),
        ),
        (
            "non-numeric",
            "s mm.chr1 1O 4 + 10 AC-GT\n",
            4,
            |k| matches!(k, MafErrorKind::NotANumber { field: "start", value } if value == "1O"),
        ),
        ("negative", "s mm.chr1 -1 4 + 10 AC-GT\n", 4, |k| {
            matches!(k, MafErrorKind::NotANumber { .. })
        }),
        (
            "strand",
            "s mm.chr1 1 4 * 10 AC-GT\n",
            4,
            |k| matches!(k, MafErrorKind::BadStrand(s) if s == "*"),
        ),
        ("fields", "s mm.chr1 1 4 + AC-GT\n", 4, |k| {
            matches!(
                k,
                MafErrorKind::FieldCount {
                    kind: 's',
                    expected: 7,
                    found: 6
                }
            )
        }),
        (
            "bad-base",
            "s mm.chr1 1 4 + 10 AZ-!T\n",
            4,
            |k| matches!(k, MafErrorKind::BadBase { character, column: 2 } if character == "Z"),
        ),
        (
            "nul-base",
            "s mm.chr1 1 4 + 10 AC-G\0\n",
            4,
            |k| matches!(k, MafErrorKind::BadBase { character, column: 5 } if character == "\\u{0}"),
        ),
        ("columns", "s mm.chr1 1 4 + 10 ACGT\n", 4, |k| {
            matches!(k, MafErrorKind::ColumnMismatch { expected: 5, found: 4 })
        }),
        ("past-end", "s mm.chr1 7 4 + 10 AC-GT\n", 4, |k| {
            matches!(
                k,
                MafErrorKind::PastSourceEnd {
                    start: 7,
                    size: 4,
                    src_size: 10
                }
            )
        }),
        ("orphan-q", "q mm.chr1 99-99\n", 4, |k| {
            matches!(k, MafErrorKind::Orphan { kind: 'q', .. })
        }),
        ("bad-quality", "q hg.chr1 9x-99\n", 4, |k| {
            matches!(k, MafErrorKind::BadCode { field: "quality", .. })
        }),
        ("bad-i", "i hg.chr1 C 0 Z 0\n", 4, |k| {
            matches!(k, MafErrorKind::BadCode { field: "status", .. })
        }),
        ("bad-e", "e mm.chr1 1 4 + 10 N\n", 4, |k| {
            matches!(k, MafErrorKind::BadCode { field: "status", .. })
        }),
        ("outside", "\ns mm.chr1 1 4 + 10 AC-GT\n", 5, |k| {
            matches!(k, MafErrorKind::OutsideBlock('s'))
        }),
        ("empty-block", "\na score=2\n\n", 5, |k| {
            matches!(k, MafErrorKind::EmptyBlock)
        }),
        ("bad-score", "\na score=high\n", 5, |k| {
            matches!(k, MafErrorKind::BadAttribute(_))
        }),
        // A file cut inside its last `s` line, whatever the row's fields then say.
        ("cut-mid-row", "s mm.chr1 1 4 + 10 AC-", 4, |k| {
            matches!(k, MafErrorKind::CutOff)
        }),
        ("cut-mid-fields", "s mm.chr1 1 4", 4, |k| {
            matches!(k, MafErrorKind::CutOff)
        }),
    ];
    for (test, tail, line, expected) in cases {
        let err = first_error_in(test, &format!("{header}{tail}"));
        assert_eq!(err.line, *line, "{test}: {err}");
        assert!(expected(&err.kind), "{test}: {err}");
    }
}

#[test]
fn valid_rows_of_every_kind_parse() {
    let text = "##maf version=1\n# comment\n\na score=1\ns hg.chr1 0 4 + 10 AC-GT\nq hg.chr1 99-9F\n\
                i hg.chr1 N 0 C 3\ne mm.chr2 5 100 - 200 I\np !!!!!\n#eof";
    let path = scratch_dir("valid").join("ok.maf");
    std::fs::write(&path, text).unwrap();
    let blocks = read_all(&path);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].empty[0].strand, Strand::Reverse);
}

#[test]
fn iupac_codes_and_lower_case_are_sequence() {
    let text = "##maf version=1\na score=1\ns hg.chr1 0 4 + 10 AC-GT\ns mm.chr1 1 4 + 10 Rn-yK\n";
    let path = scratch_dir("iupac").join("ok.maf");
    std::fs::write(&path, text).unwrap();
    assert_eq!(read_all(&path)[0].rows[1].text, b"Rn-yK");
}

#[test]
fn empty_file_reads_as_no_blocks() {
    let path = scratch_dir("empty").join("empty.maf");
    std::fs::write(&path, "").unwrap();
    assert!(read_all(&path).is_empty());
}

#[test]
fn truncated_and_corrupted_inputs_never_panic() {
    let original = std::fs::read(fixture("ucsc_test.maf")).unwrap();
    let dir = scratch_dir("fuzz");
    // A fixed linear congruential generator: reproducible damage without extra dependencies.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for round in 0..300 {
        let mut data = original.clone();
        data.truncate(next() % (original.len() + 1));
        for _ in 0..round % 4 {
            if !data.is_empty() {
                let at = next() % data.len();
                data[at] = b" \n-+0aZseiqp#\t\xff"[next() % 15];
            }
        }
        let path = dir.join("damaged.maf");
        std::fs::write(&path, &data).unwrap();
        // Any outcome but a panic is fine.
        let _ = MafReader::open(&path).unwrap().count();
    }
}

#[test]
fn a_file_cut_off_in_the_middle_of_a_row_is_an_error_naming_its_last_line() {
    let whole = std::fs::read_to_string(fixture("ucsc_mm9_chr10.maf")).unwrap();
    // Cut inside the text of the third `s` row of the second block: the parts before it parse.
    let second = whole.match_indices("\na ").nth(1).unwrap().0;
    let row = whole[second..].match_indices("\ns ").nth(2).unwrap().0 + second;
    let cut = &whole[..row + 60];
    assert!(!cut.ends_with('\n'));
    let err = first_error_in("cut_off", cut);
    assert!(matches!(err.kind, MafErrorKind::CutOff), "{err}");
    assert_eq!(err.line as usize, cut.lines().count(), "{err}");
}
