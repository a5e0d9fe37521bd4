//! Projection of real MAF files onto a target species (DESIGN.md, "MAF projection").

mod common;

use std::path::Path;

use common::{fixture, scratch_dir};
use msamamba_model::tokens as alphabet;
use msamamba_train::data::fasta::FastaError;
use msamamba_train::data::maf::{MafError, MafErrorKind, MafReader, Strand, split_src};
use msamamba_train::data::projection::{MsaWindow, Projection, WindowError, WindowRequest, project};
use msamamba_train::data::region::Region;

const HG17_MAF: &str = "hg17_chr22_14.5M-15.5M.phast.maf";
const HG17_FASTA: &str = "hg17_chr22_14.5M-15.5M.phast.fa";

/// Projects with the given options; `species` empty means the default order.
fn window(
    maf: &Path,
    target: &str,
    region: &str,
    species: &[&str],
    fasta: Option<&Path>,
    strand: Strand,
) -> Result<Projection, WindowError> {
    let region: Region = region.parse().unwrap();
    let species: Vec<String> = species.iter().map(|s| s.to_string()).collect();
    project(&WindowRequest {
        maf,
        target,
        region: &region,
        species: (!species.is_empty()).then_some(species.as_slice()),
        fasta,
        strand,
    })
}

/// Rows as `-ACGT` strings, paired with their species.
fn text(window: &MsaWindow) -> Vec<(String, String)> {
    let rows = window
        .rows
        .iter()
        .map(|row| row.iter().map(|&t| alphabet::char_of(t)).collect());
    window.species.iter().cloned().zip(rows).collect()
}

/// Expected rows written literally.
fn rows(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|&(s, r)| (s.to_string(), r.to_string())).collect()
}

/// Token row of the whole hg17 FASTA excerpt.
fn hg17_reference() -> Vec<u8> {
    let text = std::fs::read_to_string(fixture(HG17_FASTA)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('>'))
        .flat_map(str::bytes)
        .map(alphabet::token_of)
        .collect()
}

#[test]
fn window_across_a_block_boundary_reads_each_block_as_written() {
    // mm9 chr10 3012441 ends block 2 (365 bp from 3012076) and starts block 3; the last five
    // columns of block 2 and the first five of block 3 have no gaps. cavPor2 is in the file
    // but in neither block.
    let maf = fixture("ucsc_mm9_chr10.maf");
    let species = ["hg18", "panTro2", "ponAbe2", "otoGar1", "cavPor2"];
    let got = window(&maf, "mm9", "chr10:3012437-3012446", &species, None, Strand::Forward).unwrap();
    assert_eq!(
        text(&got.window),
        rows(&[
            ("mm9", "CACTGTGGGT"),
            ("hg18", "TGTTCTGGGT"),
            ("panTro2", "TGTTCTGGGT"),
            ("ponAbe2", "TGTTCTGGGT"),
            ("otoGar1", "-----TGGGC"),
            ("cavPor2", "----------"),
        ])
    );
    assert_eq!(
        (got.window.chrom.as_str(), got.window.start, got.window.end),
        ("chr10", 3012436, 3012446)
    );
    assert_eq!((got.covered, got.covered_twice), (10, 0));
}

#[test]
fn uncovered_position_reads_gap_or_the_fasta_base() {
    // hg17 blocks end at 3615 and restart at 3616: position 3615 (1-based 3616) is in none.
    let maf = fixture(HG17_MAF);
    let got = window(&maf, "hg17", "chr22:3611-3620", &[], None, Strand::Forward).unwrap();
    let expected = [
        ("hg17", "GCCAA-CTCC"),
        ("rn3", "GCCAA-TTCC"),
        ("galGal2", "GCCAA-GTCG"),
        ("mm5", "GTCTA-TTCC"),
        ("fr1", "GCTAA--CCC"),
    ];
    assert_eq!(text(&got.window), rows(&expected));
    assert_eq!(got.covered, 9);
    let fasta = fixture(HG17_FASTA);
    let with_reference = window(&maf, "hg17", "chr22:3611-3620", &[], Some(&fasta), Strand::Forward).unwrap();
    let mut expected_with_reference = expected;
    expected_with_reference[0].1 = "GCCAACCTCC";
    assert_eq!(text(&with_reference.window), rows(&expected_with_reference));
}

#[test]
fn target_on_minus_strand_is_reverse_complemented_into_plus_coordinates() {
    // Block 2 of ucsc_mm9_chr10.maf holds `hg18.chr6 15860456 443 - 170899992`; its last ten
    // hg18 bases, columns 457..466 `ACTTGTGTTC` (mm9: `A--GACACTG`), sit at + positions
    // 170899992 - 1 - (15860456 + 442) = 155039093 up to 155039102.
    let maf = fixture("ucsc_mm9_chr10.maf");
    let got = window(
        &maf,
        "hg18",
        "chr6:155039094-155039103",
        &["mm9"],
        None,
        Strand::Forward,
    )
    .unwrap();
    assert_eq!(
        text(&got.window),
        rows(&[("hg18", "GAACACAAGT"), ("mm9", "CAGTGTC--T")])
    );
}

#[test]
fn minus_strand_window_is_the_reverse_complement_of_the_plus_window() {
    let cases = [
        (HG17_MAF, "hg17", "chr22:1000-9000"),
        (HG17_MAF, "hg17", "chr22:3611-3620"),
        ("ucsc_mm9_chr10.maf", "mm9", "chr10:3009300-3014000"),
        ("ucsc_mm9_chr10.maf", "hg18", "chr6:155038000-155039600"),
    ];
    for (file, target, region) in cases {
        let maf = fixture(file);
        let plus = window(&maf, target, region, &[], None, Strand::Forward).unwrap().window;
        let minus = window(&maf, target, region, &[], None, Strand::Reverse).unwrap().window;
        assert!(plus.rows.iter().flatten().any(|&t| t != 0), "{region} is all gaps");
        assert_eq!(minus.species, plus.species);
        for (p, m) in plus.rows.iter().zip(&minus.rows) {
            let expected: Vec<u8> = p.iter().rev().map(|&t| alphabet::complement(t)).collect();
            assert_eq!(m, &expected, "{file} {region}");
        }
        assert_eq!(
            (minus.strand, minus.start, minus.end),
            (Strand::Reverse, plus.start, plus.end)
        );
    }
}

#[test]
fn hg17_row_matches_the_reference_fasta_at_every_covered_position() {
    let reference = hg17_reference();
    assert_eq!(reference.len(), 1_000_001);
    let mut compared = 0;
    for block in MafReader::open(&fixture(HG17_MAF)).unwrap() {
        let block = block.unwrap();
        let human = block.rows.iter().find(|r| split_src(&r.src).0 == "hg17").unwrap();
        assert_eq!(human.strand, Strand::Forward);
        let bases = human.text.iter().filter(|&&b| b != b'-');
        for (k, &base) in bases.enumerate() {
            let position = human.start as usize + k;
            assert_eq!(
                alphabet::token_of(base),
                reference[position],
                "position {position}, line {}",
                human.line
            );
            compared += 1;
        }
    }
    // 218,573 distinct positions, 720 of them aligned again by a later, overlapping block.
    assert_eq!(compared, 218_573 + 720);
}

#[test]
fn whole_chromosome_projection_agrees_with_the_reference_and_counts_overlaps() {
    let reference = hg17_reference();
    let maf = fixture(HG17_MAF);
    let got = window(&maf, "hg17", "chr22:1-1000001", &[], None, Strand::Forward).unwrap();
    assert_eq!((got.covered, got.covered_twice), (218_573, 720));
    let target = &got.window.rows[0];
    assert!(target.iter().zip(&reference).all(|(&t, &r)| t == 0 || t == r));
    let fasta = fixture(HG17_FASTA);
    let with_reference = window(&maf, "hg17", "hg17.chr22:1-1000001", &[], Some(&fasta), Strand::Forward).unwrap();
    assert_eq!(with_reference.window.rows[0], reference);
    assert_eq!(with_reference.window.rows[1..], got.window.rows[1..]);
}

#[test]
fn default_rows_follow_first_appearance_with_the_target_first() {
    let maf = fixture("ucsc_mm9_chr10.maf");
    let got = window(&maf, "mm9", "chr10:3009320-3009329", &[], None, Strand::Forward).unwrap();
    assert_eq!(
        got.window.species,
        [
            "mm9", "oryCun1", "ponAbe2", "panTro2", "hg18", "otoGar1", "cavPor2", "echTel1", "tupBel1", "calJac1",
            "loxAfr1", "ornAna1", "canFam2", "felCat3", "dasNov1", "eriEur1", "sorAra1"
        ]
    );
    // Block 1 starts at 3009319 with TCATAGGTAT; oryCun1 reads TCACAGATAT.
    assert_eq!(
        text(&got.window)[..2],
        rows(&[("mm9", "TCATAGGTAT"), ("oryCun1", "TCACAGATAT")])
    );
    // The target named in --species keeps its first place and is not repeated.
    let listed = window(
        &maf,
        "hg18",
        "chr6:155039094-155039103",
        &["mm9", "hg18"],
        None,
        Strand::Forward,
    )
    .unwrap();
    assert_eq!(listed.window.species, ["hg18", "mm9"]);
}

#[test]
fn source_without_a_dot_names_both_species_and_chromosome() {
    // last_multiMito.maf names rows `humanMito`; block 1 starts at 598 with no gaps for 12 columns.
    let maf = fixture("last_multiMito.maf");
    let got = window(&maf, "humanMito", "humanMito:599-610", &[], None, Strand::Forward).unwrap();
    assert_eq!(
        text(&got.window),
        rows(&[
            ("humanMito", "CAAAGCAATACA"),
            ("mouseMito", "CAAAGCAAAGCA"),
            ("chickenMito", "CAAAGCATGGCA"),
            ("fuguMito", "CAAAGCAGAGTA"),
        ])
    );
}

#[test]
fn gzip_maf_projects_like_plain() {
    let plain = fixture("ucsc_mm9_chr10.maf");
    let gz = scratch_dir("project-gzip").join("mm9.maf.gz");
    std::fs::write(&gz, common::gzip(&std::fs::read(&plain).unwrap())).unwrap();
    let a = window(&plain, "mm9", "chr10:3009300-3014000", &[], None, Strand::Forward).unwrap();
    let b = window(&gz, "mm9", "chr10:3009300-3014000", &[], None, Strand::Forward).unwrap();
    assert_eq!(a, b);
}

#[test]
fn file_without_target_rows_names_the_species_and_file() {
    // bundle_without_target.maf holds one block of mm8 and oryCun1: a block lacking the target
    // is skipped, so with target mm9 no block remains and the target is reported missing.
    let maf = fixture("bundle_without_target.maf");
    let err = window(&maf, "mm9", "chr10:3009320-3009329", &[], None, Strand::Forward).unwrap_err();
    assert!(
        matches!(&err, WindowError::TargetNotFound { species, path } if species == "mm9" && path == &maf),
        "{err}"
    );
    assert!(
        err.to_string().contains("mm9") && err.to_string().contains("bundle_without_target.maf"),
        "{err}"
    );
    // The same block projects onto mm8, which it does hold.
    let got = window(&maf, "mm8", "chr10:3009320-3009324", &[], None, Strand::Forward).unwrap();
    assert_eq!(text(&got.window), rows(&[("mm8", "TCATA"), ("oryCun1", "TCACA")]));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let dir = scratch_dir("project-errors");
    for (name, content) in [("zero-bytes.maf", ""), ("header-only.maf", "##maf version=1\n")] {
        let empty = dir.join(name);
        std::fs::write(&empty, content).unwrap();
        let err = window(&empty, "mm9", "chr10:1-10", &[], None, Strand::Forward).unwrap_err();
        assert!(matches!(err, WindowError::NoBlocks { .. }), "{err}");
    }

    let hg17 = fixture(HG17_MAF);
    let err = window(&hg17, "hg17", "chr22:999990-1000002", &[], None, Strand::Forward).unwrap_err();
    assert!(
        matches!(err, WindowError::OutsideChromosome { size: 1_000_001, .. }),
        "{err}"
    );
    // A mistyped huge region is refused before any window is allocated.
    let err = window(&hg17, "hg17", "chr22:1-999999999999", &[], None, Strand::Forward).unwrap_err();
    assert!(matches!(err, WindowError::OutsideChromosome { .. }), "{err}");
    let err = window(&hg17, "hg17", "chr21:1-10", &[], None, Strand::Forward).unwrap_err();
    assert!(
        matches!(&err, WindowError::ChromosomeNotFound { chrom, .. } if chrom == "chr21"),
        "{err}"
    );
    let err = window(&hg17, "panTro1", "chr22:1-10", &[], None, Strand::Forward).unwrap_err();
    assert!(matches!(err, WindowError::TargetNotFound { .. }), "{err}");

    let inconsistent = dir.join("inconsistent.maf");
    let text = "a\ns hg.chr1 0 4 + 10 ACGT\n\na\ns hg.chr1 4 4 + 12 ACGT\n";
    std::fs::write(&inconsistent, text).unwrap();
    let err = window(&inconsistent, "hg", "chr1:1-8", &[], None, Strand::Forward).unwrap_err();
    assert!(
        matches!(
            err,
            WindowError::Maf(MafError {
                line: 5,
                kind: MafErrorKind::SourceSizeChanged {
                    expected: 10,
                    found: 12,
                    ..
                },
                ..
            })
        ),
        "{err}"
    );

    let wrong_fasta = fixture(HG17_FASTA);
    let mm9 = fixture("ucsc_mm9_chr10.maf");
    let err = window(
        &mm9,
        "mm9",
        "chr10:3009320-3009329",
        &[],
        Some(&wrong_fasta),
        Strand::Forward,
    )
    .unwrap_err();
    assert!(matches!(&err, WindowError::Fasta(FastaError::NotFound { names, .. }) if names == &["chr10", "mm9.chr10"]));

    let short_fasta = dir.join("short.fa");
    std::fs::write(&short_fasta, ">chr22\nACGT\n").unwrap();
    let err = window(&hg17, "hg17", "chr22:3-8", &[], Some(&short_fasta), Strand::Forward).unwrap_err();
    assert!(
        matches!(err, WindowError::Fasta(FastaError::PastEnd { len: 4, end: 8, .. })),
        "{err}"
    );

    let bad = fixture("ucsc_mm9_chr10_bad.maf");
    let err = window(&bad, "mm9", "chr10:3009320-3009329", &[], None, Strand::Forward).unwrap_err();
    assert!(matches!(&err, WindowError::Maf(e) if e.line == 87 && matches!(e.kind, MafErrorKind::SizeMismatch { .. })));
}

#[test]
fn window_prints_as_fasta_in_row_order() {
    let maf = fixture(HG17_MAF);
    let got = window(&maf, "hg17", "chr22:3611-3620", &["fr1"], None, Strand::Forward).unwrap();
    let mut out = Vec::new();
    got.window.write_fasta(&mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), ">hg17\nGCCAA-CTCC\n>fr1\nGCTAA--CCC\n");
}

#[test]
fn a_species_asked_for_that_the_alignment_lacks_is_an_error() {
    let maf = fixture(HG17_MAF);
    let err = window(
        &maf,
        "hg17",
        "chr22:3600-3660",
        &["mm5", "nosuch"],
        None,
        Strand::Forward,
    )
    .unwrap_err();
    assert!(
        matches!(&err, WindowError::SpeciesNotFound { species, .. } if species == "nosuch"),
        "{err}"
    );
    assert!(err.to_string().contains("nosuch"), "{err}");
}

#[test]
fn a_repeated_species_keeps_its_first_row_and_the_dropped_rows_are_counted() {
    let dir = scratch_dir("duplicate_rows");
    let maf = dir.join("dup.maf");
    std::fs::write(
        &maf,
        "##maf version=1\n\na score=0\ns hg.chr1 0 8 + 100 ACGTACGT\ns mm.chr2 0 8 + 50 AAAAAAAA\ns mm.chr3 0 8 + 50 CCCCCCCC\n\n",
    )
    .unwrap();
    let projection = window(&maf, "hg", "chr1:1-8", &[], None, Strand::Forward).unwrap();
    assert_eq!(
        text(&projection.window),
        rows(&[("hg", "ACGTACGT"), ("mm", "AAAAAAAA")])
    );
    assert_eq!(projection.duplicate_rows, 1);
    let elsewhere = window(&maf, "hg", "chr1:50-60", &[], None, Strand::Forward).unwrap();
    assert_eq!(elsewhere.duplicate_rows, 0, "only blocks over the region count");
}

#[test]
fn fasta_bases_that_differ_from_the_maf_target_are_counted() {
    let dir = scratch_dir("fasta_disagrees");
    let maf = dir.join("one.maf");
    std::fs::write(
        &maf,
        "##maf version=1\n\na score=0\ns hg.chr1 0 8 + 12 ACGTACGT\ns mm.chr2 0 8 + 50 AAAAAAAA\n\n",
    )
    .unwrap();
    let fasta = dir.join("hg.fa");
    // Two of the eight aligned bases differ; case and the unaligned tail do not count.
    std::fs::write(&fasta, ">chr1\nacGAACGaNNNN\n").unwrap();
    let projection = window(&maf, "hg", "chr1:1-12", &[], Some(&fasta), Strand::Forward).unwrap();
    assert_eq!(projection.fasta_disagrees, 2);
    assert_eq!(text(&projection.window)[0].1, "ACGAACGANNNN".replace('N', "-"));
}
