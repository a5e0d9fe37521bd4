//! Arbitrary bytes as an alignment store: one chromosome array's `.zarray`, `.zattrs` (with the
//! import's record of its chunks) and first two chunks, and the root `.zattrs`, separated by
//! `\n--\n`. Opening it and reading windows must give windows or a typed error, never a panic,
//! a hang or an allocation the metadata alone asks for.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::data::store::AlignmentStore;

fuzz_target!(|data: &[u8]| {
    let mut parts = split(data, b"\n--\n").into_iter();
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let root = dir.path();
    let write = |path: &Path, bytes: Option<&[u8]>| match bytes {
        Some(bytes) => std::fs::write(root.join(path), bytes).is_ok(),
        None => true,
    };
    if std::fs::create_dir(root.join("chr1")).is_err() || !write(Path::new(".zgroup"), Some(b"{\"zarr_format\": 2}")) {
        return;
    }
    for name in ["chr1/.zarray", "chr1/.zattrs", "chr1/0.0", "chr1/1.0", ".zattrs"] {
        if !write(Path::new(name), parts.next()) {
            return;
        }
    }
    let Ok(store) = AlignmentStore::open(root) else {
        return;
    };
    let _ = store.stored_stretches();
    let len = store.chromosomes().next().map_or(0, |(_, len)| len);
    for (start, end) in [(0, 1), (0, 600), (500, 1100), (len.saturating_sub(10), len)] {
        let region = Region {
            chrom: "chr1".into(),
            start: start.min(len),
            end: end.min(len),
        };
        let _ = store.window(&region, None, Strand::Reverse);
    }
});

/// `data` cut at each `separator`.
fn split<'a>(data: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(separator.len()).position(|w| w == separator) {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest);
    parts
}
