//! `import_maf` then reading the store gives the same windows as projecting the MAF directly.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, gzip, scratch_dir};
use msamamba_train::data::import::{ImportError, import_maf};
use msamamba_train::data::maf::{MafError, MafErrorKind, MafReader, Strand, split_src};
use msamamba_train::data::projection::{WindowRequest, project};
use msamamba_train::data::region::Region;
use msamamba_train::data::store::{AlignmentStore, StoreError};

const MM9_MAF: &str = "ucsc_mm9_chr10_big.maf";
const HG17_MAF: &str = "hg17_chr22_14.5M-15.5M.phast.maf";
const HG17_FASTA: &str = "hg17_chr22_14.5M-15.5M.phast.fa";

/// A small deterministic generator (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// The target's chromosome, its size and the + strand span the MAF's target rows cover.
fn target_span(maf: &Path, target: &str) -> (String, u64, u64, u64) {
    let mut span: Option<(String, u64, u64, u64)> = None;
    for block in MafReader::open(maf).unwrap() {
        for row in block.unwrap().rows {
            let (species, chrom) = split_src(&row.src);
            if species != target {
                continue;
            }
            let first = match row.strand {
                Strand::Forward => row.start,
                Strand::Reverse => row.src_size - row.start - row.size,
            };
            let entry = span.get_or_insert((chrom.to_string(), row.src_size, first, first));
            entry.2 = entry.2.min(first);
            entry.3 = entry.3.max(first + row.size);
        }
    }
    span.unwrap()
}

/// Checks the store against `project` on the whole covered span (plus margins) and on random
/// regions, strands and species subsets.
fn check_store_matches_projection(
    maf: &Path,
    target: &str,
    fasta: Option<&Path>,
    species: Option<&[String]>,
    store: &AlignmentStore,
    seed: u64,
) {
    let (chrom, size, first, last) = target_span(maf, target);
    let project_region = |region: &Region, species: Option<&[String]>, strand| {
        project(&WindowRequest {
            maf,
            target,
            region,
            species,
            fasta,
            strand,
        })
        .unwrap()
        .window
    };
    // Everything the MAF covers, with uncovered margins on both sides.
    let whole = Region {
        chrom: chrom.clone(),
        start: first.saturating_sub(700),
        end: (last + 700).min(size),
    };
    assert_eq!(
        store.window(&whole, species, Strand::Forward).unwrap(),
        project_region(&whole, species, Strand::Forward)
    );
    let mut rng = Rng(seed);
    let names = store.species().to_vec();
    for _ in 0..8 {
        let len = 1 + rng.below(300);
        let start = whole.start + rng.below(whole.end - whole.start - len);
        let region = Region {
            chrom: chrom.clone(),
            start,
            end: start + len,
        };
        let strand = if rng.below(2) == 0 {
            Strand::Forward
        } else {
            Strand::Reverse
        };
        // A random subset of the store's species in random order (the target may be among them).
        let mut subset: Vec<String> = names.iter().filter(|_| rng.below(3) == 0).cloned().collect();
        for i in (1..subset.len()).rev() {
            subset.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let from_store = store.window(&region, Some(&subset), strand).unwrap();
        let from_maf = project_region(&region, Some(&subset), strand);
        assert_eq!(from_store, from_maf, "{region} {strand:?} {subset:?}");
    }
}

#[test]
fn mm9_import_reads_back_as_the_maf_projection() {
    let maf = fixture(MM9_MAF);
    let out = scratch_dir("import_mm9").join("mm9.zarr");
    let summary = import_maf(std::slice::from_ref(&maf), "mm9", None, None, &out).unwrap();
    assert_eq!(summary.chromosomes, [("chr10".to_string(), 129_993_255)]);
    assert_eq!(summary.blocks, 983);
    assert_eq!(summary.species.len(), 30);
    assert_eq!(summary.species[0], "mm9");
    let store = AlignmentStore::open(&out).unwrap();
    assert_eq!(store.species(), summary.species);
    check_store_matches_projection(&maf, "mm9", None, None, &store, 0x9E37_79B9_7F4A_7C15);
}

#[test]
fn hg17_import_with_fasta_and_species_list_reads_back_as_the_maf_projection() {
    let maf = fixture(HG17_MAF);
    let fasta = fixture(HG17_FASTA);
    // Listed order and the target again (ignored); a species the MAF lacks is an error (below).
    let species: Vec<String> = ["galGal2", "rn3", "hg17", "mm5"].map(String::from).to_vec();
    let out = scratch_dir("import_hg17").join("hg17.zarr");
    let summary = import_maf(std::slice::from_ref(&maf), "hg17", Some(&species), Some(&fasta), &out).unwrap();
    assert_eq!(summary.species, ["hg17", "galGal2", "rn3", "mm5"]);
    let store = AlignmentStore::open(&out).unwrap();
    let (chrom, size, _, _) = target_span(&maf, "hg17");
    // The whole chromosome, uncovered stretches showing the reference, and the overlap counts.
    let whole = Region {
        chrom,
        start: 0,
        end: size,
    };
    let projection = project(&WindowRequest {
        maf: &maf,
        target: "hg17",
        region: &whole,
        species: Some(&species),
        fasta: Some(&fasta),
        strand: Strand::Forward,
    })
    .unwrap();
    assert_eq!(
        store.window(&whole, Some(&species), Strand::Forward).unwrap(),
        projection.window
    );
    assert_eq!(summary.covered, projection.covered);
    assert_eq!(summary.covered_twice, projection.covered_twice);
    check_store_matches_projection(&maf, "hg17", Some(&fasta), Some(&species), &store, 17);

    let typo = [species.clone(), vec!["panTro1".into()]].concat();
    let err = import_maf(
        std::slice::from_ref(&maf),
        "hg17",
        Some(&typo),
        None,
        &out.with_extension("typo"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--species `panTro1` is in no block; the alignment has fr1, galGal2"),
        "{err}"
    );
}

#[test]
fn import_refuses_to_overwrite_and_names_a_missing_target() {
    let maf = fixture("ucsc_mm9_chr10.maf");
    let dir = scratch_dir("import_errors");
    std::fs::write(dir.join("keep"), b"x").unwrap();
    let err = import_maf(std::slice::from_ref(&maf), "mm9", None, None, &dir).unwrap_err();
    assert!(
        matches!(err, ImportError::Store(StoreError::OutputExists { .. })),
        "{err:?}"
    );
    let err = import_maf(&[maf], "hg99", None, None, &dir.join("out.zarr")).unwrap_err();
    assert!(matches!(err, ImportError::TargetNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("`hg99`"), "{err}");
}

#[test]
fn a_chromosome_changing_size_is_refused_with_its_line() {
    let dir = scratch_dir("import_source_size");
    let maf = dir.join("inconsistent.maf");
    std::fs::write(&maf, "a\ns hg.chr1 0 4 + 10 ACGT\n\na\ns hg.chr1 4 4 + 12 ACGT\n").unwrap();
    let err = import_maf(&[maf], "hg", None, None, &dir.join("out.zarr")).unwrap_err();
    assert!(
        matches!(
            &err,
            ImportError::Maf(MafError {
                line: 5,
                kind: MafErrorKind::SourceSizeChanged {
                    expected: 10,
                    found: 12,
                    ..
                },
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("inconsistent.maf:5:"), "{err}");
}

#[test]
fn block_reaching_back_into_a_written_chunk_is_an_unsorted_error() {
    // Move the last block of the file (farther along chr10 than the first) to the front.
    let text = std::fs::read_to_string(fixture("ucsc_mm9_chr10.maf")).unwrap();
    let (header, blocks) = text.split_once("\na ").unwrap();
    let mut blocks: Vec<&str> = blocks.split("\na ").collect();
    let last = blocks.pop().unwrap();
    let reordered = format!("{header}\na {last}\na {}", blocks.join("\na "));
    let dir = scratch_dir("import_unsorted");
    let maf: PathBuf = dir.join("unsorted.maf");
    std::fs::write(&maf, reordered).unwrap();
    let err = import_maf(&[maf], "mm9", None, None, &dir.join("out.zarr")).unwrap_err();
    assert!(matches!(err, ImportError::Unsorted { .. }), "{err:?}");
    assert!(err.to_string().contains("unsorted.maf:"), "{err}");
}

#[test]
fn gzip_maf_imports_like_plain() {
    let plain = fixture("ucsc_mm9_chr10.maf");
    let dir = scratch_dir("import_gzip");
    let gzipped = dir.join("mm9.maf.gz");
    std::fs::write(&gzipped, gzip(&std::fs::read(&plain).unwrap())).unwrap();
    let from_plain = dir.join("plain.zarr");
    let from_gzip = dir.join("gzip.zarr");
    let summary = import_maf(std::slice::from_ref(&plain), "mm9", None, None, &from_plain).unwrap();
    assert_eq!(import_maf(&[gzipped], "mm9", None, None, &from_gzip).unwrap(), summary);
    let (chrom, _, first, last) = target_span(&plain, "mm9");
    let span = Region {
        chrom,
        start: first,
        end: last,
    };
    let read = |path: &Path| {
        AlignmentStore::open(path)
            .unwrap()
            .window(&span, None, Strand::Forward)
            .unwrap()
    };
    assert_eq!(read(&from_gzip), read(&from_plain));
}

#[test]
fn a_failed_import_leaves_no_store_and_a_killed_ones_leftover_is_removed_by_the_next() {
    let dir = scratch_dir("import_staging");
    let out = dir.join("mm9.zarr");
    // Whole blocks, then a row cut off: the import fails at the end of the file.
    let whole = std::fs::read_to_string(fixture("ucsc_mm9_chr10.maf")).unwrap();
    let cut = dir.join("cut.maf");
    std::fs::write(&cut, &whole[..whole.len() - 40]).unwrap();
    let err = import_maf(&[cut], "mm9", None, None, &out).unwrap_err();
    assert!(err.to_string().contains("cut off"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("cut.maf")],
        "nothing of the import is left"
    );

    // A killed import's staging directory (its process gone) is removed; the import succeeds.
    let leftover = msamamba_train::data::import::staging_path(&out, u32::MAX - 1);
    std::fs::create_dir_all(leftover.join("chr10")).unwrap();
    import_maf(&[fixture("ucsc_mm9_chr10.maf")], "mm9", None, None, &out).unwrap();
    assert!(!leftover.exists(), "the leftover of the killed import is removed");
    assert!(AlignmentStore::open(&out).is_ok());
    let err = import_maf(&[fixture("ucsc_mm9_chr10.maf")], "mm9", None, None, &out).unwrap_err();
    assert!(
        matches!(err, ImportError::Store(StoreError::OutputExists { .. })),
        "{err}"
    );
}
