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
