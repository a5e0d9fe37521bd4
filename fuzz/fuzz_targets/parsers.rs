//! Arbitrary bytes as a region (`--region`), a BED file and a label table: each must parse or
//! give a typed error, never panic or hang. The files go through a temporary file, as the
//! commands read them from a path (plain or gzip).
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use msamamba_train::data::bed::BedReader;
use msamamba_train::data::labels::read_labels;
use msamamba_train::data::region::Region;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<Region>();
    }
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).and_then(|()| file.flush()).is_err() {
        return;
    }
    if let Ok(reader) = BedReader::open(file.path()) {
        // A reader that reports an error is done.
        for region in reader {
            if region.is_err() {
                break;
            }
        }
    }
    let _ = read_labels(file.path());
});
