//! Region extraction from FASTA files.

mod common;

use common::{fixture, gzip, scratch_dir};
use msamamba_train::data::fasta::{FastaError, read_region};

const TEXT: &str = ">chr1 first\nACGTA\nCGTAC\nGT\n>hg17.chr2\nttttt\nggggg\n";

#[test]
fn region_spanning_line_breaks_comes_back_as_written() {
    let dir = scratch_dir("fasta-region");
    let path = dir.join("two.fa");
    std::fs::write(&path, TEXT).unwrap();
    assert_eq!(read_region(&path, &["chr1"], 3, 11).unwrap(), b"TACGTACG");
    assert_eq!(read_region(&path, &["chr2", "hg17.chr2"], 4, 6).unwrap(), b"tg");
    let gz = dir.join("two.fa.gz");
    std::fs::write(&gz, gzip(TEXT.as_bytes())).unwrap();
    assert_eq!(read_region(&gz, &["chr1"], 0, 12).unwrap(), b"ACGTACGTACGT");
}

#[test]
fn missing_record_short_record_and_headerless_text_are_errors() {
    let dir = scratch_dir("fasta-errors");
    let path = dir.join("two.fa");
    std::fs::write(&path, TEXT).unwrap();
    assert!(matches!(
        read_region(&path, &["chr3"], 0, 1),
        Err(FastaError::NotFound { .. })
    ));
    assert!(matches!(
        read_region(&path, &["chr1"], 0, 13),
        Err(FastaError::PastEnd { len: 12, end: 13, .. })
    ));
    let headerless = dir.join("headerless.fa");
    std::fs::write(&headerless, "\nACGT\n>chr1\nAC\n").unwrap();
    assert!(matches!(
        read_region(&headerless, &["chr1"], 0, 1),
        Err(FastaError::NoHeader { line: 2, .. })
    ));
    assert!(matches!(
        read_region(&dir.join("absent.fa"), &["chr1"], 0, 1),
        Err(FastaError::Io { line: 0, .. })
    ));
}

#[test]
fn header_with_a_space_after_the_marker_is_named_by_its_first_word() {
    // The phast excerpt's header is `> chr22`.
    let path = fixture("hg17_chr22_14.5M-15.5M.phast.fa");
    assert_eq!(
        read_region(&path, &["chr22"], 3605, 3625).unwrap(),
        b"CCAAGGCCAACCTCCTCTTC"
    );
}

/// Regions near the ends, across line breaks, and one BGZF block boundary (64 KiB of text).
const REGIONS: [(u64, u64); 5] = [
    (0, 1),
    (3605, 3625),
    (65_500, 65_600),
    (499_990, 500_123),
    (999_900, 1_000_001),
];

#[test]
fn indexed_bgzip_and_indexed_plain_fasta_equal_the_streamed_file() {
    // The .gz, .fai and .gzi were written by bgzip and samtools faidx (htslib), an independent writer.
    let plain = fixture("hg17_chr22_14.5M-15.5M.phast.fa");
    let bgzip = fixture("hg17_chr22_14.5M-15.5M.phast.fa.gz");
    // A .fai holds offsets into the uncompressed text, so the bgzip file's index fits the plain one.
    let dir = scratch_dir("fasta-indexed");
    let indexed = dir.join("chr22.fa");
    std::fs::copy(&plain, &indexed).unwrap();
    std::fs::copy(
        fixture("hg17_chr22_14.5M-15.5M.phast.fa.gz.fai"),
        dir.join("chr22.fa.fai"),
    )
    .unwrap();
    for (start, end) in REGIONS {
        let streamed = read_region(&plain, &["chr22"], start, end).unwrap();
        assert_eq!(streamed.len() as u64, end - start);
        assert_eq!(
            read_region(&bgzip, &["chr22"], start, end).unwrap(),
            streamed,
            "{start}-{end}"
        );
        assert_eq!(
            read_region(&indexed, &["chr22"], start, end).unwrap(),
            streamed,
            "{start}-{end}"
        );
    }
    assert!(matches!(
        read_region(&bgzip, &["chr22"], 0, 1_000_002),
        Err(FastaError::PastEnd {
            len: 1_000_001,
            end: 1_000_002,
            ..
        })
    ));
    assert!(matches!(
        read_region(&bgzip, &["chr1", "hg17.chr1"], 0, 1),
        Err(FastaError::NotFound { .. })
    ));
    // An index that does not parse names the index file.
    std::fs::write(dir.join("chr22.fa.fai"), "chr22\tnot-a-number\n").unwrap();
    let err = read_region(&indexed, &["chr22"], 0, 1).unwrap_err();
    assert!(err.to_string().contains("chr22.fa.fai"), "{err}");
}
