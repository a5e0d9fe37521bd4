//! Reading GPN-MSA-layout zarr stores written by an independent writer (zarr-python 2, see
//! data/zarr/make_fixture.py), as a directory and zipped, and the errors for bad stores.

// Each test binary uses a subset of the shared helpers.
mod common;

use std::path::{Path, PathBuf};

use common::scratch_dir;
use msamamba_model::tokens as alphabet;
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::data::store::{AlignmentStore, StoreError};

/// Path of a file under `data/zarr/`.
fn zarr_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data/zarr")
        .join(name)
}

/// A 0-based half-open region.
fn region(chrom: &str, start: u64, end: u64) -> Region {
    Region {
        chrom: chrom.to_string(),
        start,
        end,
    }
}

/// Token rows as `-ACGT` strings.
fn text(rows: &[Vec<u8>]) -> Vec<String> {
    rows.iter()
        .map(|row| row.iter().map(|&t| alphabet::char_of(t)).collect())
        .collect()
}

/// Copies the fixture directory store into a scratch directory, for tests that damage it.
fn copy_fixture(test: &str) -> PathBuf {
    let to = scratch_dir(test).join("gpn_layout.zarr");
    copy_dir(&zarr_fixture("gpn_layout.zarr"), &to);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The fixture's content as written by make_fixture.py: chromosome `1` (10 bp, three 4-row
/// chunks) and `X` (5 bp), reference column first.
fn check_fixture_content(store: &AlignmentStore) {
    assert_eq!(store.species(), ["0", "1", "2"]);
    assert_eq!(store.chromosomes().collect::<Vec<_>>(), [("1", 10), ("X", 5)]);
    let all = [0, 1, 2];
    // Lower case reads as upper case; N and - read as gap.
    assert_eq!(
        text(&store.read(&region("1", 0, 10), &all).unwrap()),
        ["ACGTACGT-A", "A-GTTCGA--", "----ACGTAC"]
    );
    // A window inside one chunk, one across a chunk boundary, rows reordered and subset.
    assert_eq!(text(&store.read(&region("1", 5, 7), &[2, 0]).unwrap()), ["CG", "CG"]);
    assert_eq!(text(&store.read(&region("1", 3, 9), &[1]).unwrap()), ["TTCGA-"]);
    assert_eq!(
        text(&store.read(&region("X", 0, 5), &all).unwrap()),
        ["GGCCA", "GGC-A", "-----"]
    );
    assert_eq!(text(&store.read(&region("X", 5, 5), &all).unwrap()), ["", "", ""]);
}

#[test]
fn directory_store_from_zarr_python_reads_its_known_content() {
    let store = AlignmentStore::open(&zarr_fixture("gpn_layout.zarr")).unwrap();
    check_fixture_content(&store);
}

#[test]
fn zipped_store_from_zarr_python_reads_the_same() {
    let store = AlignmentStore::open(&zarr_fixture("gpn_layout.zarr.zip")).unwrap();
    check_fixture_content(&store);
}

#[test]
fn zip_of_the_store_folder_deflated_reads_the_same() {
    let store = AlignmentStore::open(&zarr_fixture("gpn_layout_folder.zip")).unwrap();
    check_fixture_content(&store);
}

#[test]
fn named_species_select_rows_target_first_and_strand_minus_reverse_complements() {
    let names = ["hg38", "panTro4", "mm10"].map(String::from).to_vec();
    let store = AlignmentStore::open(&zarr_fixture("gpn_layout.zarr"))
        .unwrap()
        .with_species(names)
        .unwrap();
    let subset = ["mm10".to_string(), "hg38".to_string()];
    let window = store
        .window(&region("1", 2, 8), Some(&subset), Strand::Forward)
        .unwrap();
    assert_eq!(window.species, ["hg38", "mm10"]);
    assert_eq!(text(&window.rows), ["GTACGT", "--ACGT"]);
    let minus = store
        .window(&region("1", 2, 8), Some(&subset), Strand::Reverse)
        .unwrap();
    assert_eq!(text(&minus.rows), ["ACGTAC", "ACGT--"]);
}

#[test]
fn missing_store_path_is_named() {
    let path = scratch_dir("missing_store").join("nothing.zarr");
    let err = AlignmentStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("nothing.zarr"), "{err}");
}

#[test]
fn directory_without_a_group_is_not_a_store() {
    let dir = scratch_dir("not_a_store");
    let err = AlignmentStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
}

#[test]
fn file_that_is_not_a_zip_is_an_error_not_a_panic() {
    let path = scratch_dir("not_a_zip").join("store.zip");
    std::fs::write(&path, b"PK\x03\x04 truncated").unwrap();
    let err = AlignmentStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Storage { .. }), "{err:?}");
    assert!(err.to_string().contains("store.zip"), "{err}");
}

#[test]
fn unknown_chromosome_lists_those_present() {
    let store = AlignmentStore::open(&zarr_fixture("gpn_layout.zarr")).unwrap();
    let err = store.read(&region("chr1", 0, 1), &[0]).unwrap_err();
    assert!(matches!(err, StoreError::UnknownChromosome { .. }), "{err:?}");
    assert!(err.to_string().contains("the store has 1, X"), "{err}");
}

#[test]
fn region_past_the_end_or_reversed_is_outside_the_chromosome() {
    let store = AlignmentStore::open(&zarr_fixture("gpn_layout.zarr")).unwrap();
    for (start, end) in [(8, 11), (20, 30), (6, 5)] {
        let err = store.read(&region("1", start, end), &[0]).unwrap_err();
        assert!(matches!(err, StoreError::OutsideChromosome { len: 10, .. }), "{err:?}");
    }
}

#[test]
fn species_not_in_the_store_is_named() {
    let store = AlignmentStore::open(&zarr_fixture("gpn_layout.zarr")).unwrap();
    let err = store.rows(Some(&["mm10".to_string()])).unwrap_err();
    assert!(matches!(err, StoreError::UnknownSpecies { .. }), "{err:?}");
    assert!(err.to_string().contains("`mm10`"), "{err}");
    let err = store.read(&region("1", 0, 1), &[3]).unwrap_err();
    assert!(
        matches!(err, StoreError::RowOutOfRange { row: 3, rows: 3, .. }),
        "{err:?}"
    );
    let err = store.with_species(vec!["hg38".into()]).unwrap_err();
    assert!(
        matches!(err, StoreError::SpeciesCount { names: 1, rows: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn corrupted_or_wrong_metadata_names_the_file() {
    let cases: [(&str, &[u8], &str); 4] = [
        ("1/.zarray", b"{\"chunks\": [4, 3], \"dtype\": ", "1/.zarray"),
        ("1/.zarray", br#"{"zarr_format": 2, "shape": [10, 3], "chunks": [4, 3], "dtype": "<f4", "fill_value": 0, "order": "C", "filters": null, "compressor": null}"#, "dtype <f4"),
        ("1/.zarray", br#"{"zarr_format": 2, "shape": [10], "chunks": [4], "dtype": "|u1", "fill_value": 0, "order": "C", "filters": null, "compressor": null}"#, "shape [10]"),
        (".zattrs", br#"{"species": ["a", 2, "c"]}"#, ".zattrs"),
    ];
    for (test, (file, content, expected)) in cases.iter().enumerate() {
        let store = copy_fixture(&format!("corrupt_metadata_{test}"));
        std::fs::write(store.join(file), content).unwrap();
        let err = AlignmentStore::open(&store).unwrap_err();
        assert!(matches!(err, StoreError::Metadata { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(expected) && message.contains("gpn_layout.zarr"),
            "{message}"
        );
    }
}

#[test]
fn corrupted_chunk_is_an_error_naming_the_chromosome() {
    let store_path = copy_fixture("corrupt_chunk");
    std::fs::write(store_path.join("1/1.0"), b"not blosc").unwrap();
    let store = AlignmentStore::open(&store_path).unwrap();
    let err = store.read(&region("1", 3, 6), &[0]).unwrap_err();
    assert!(matches!(err, StoreError::Array { .. }), "{err:?}");
    assert!(err.to_string().contains("chromosome `1`"), "{err}");
    // Chunks not touched by the window still read.
    assert_eq!(text(&store.read(&region("1", 0, 4), &[0]).unwrap()), ["ACGT"]);
}
