//! Arbitrary bytes through the MAF reader: every input must end in blocks, a clean end, or a
//! typed error with a line number, never a panic or a hang.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use msamamba_train::data::maf::MafReader;

fuzz_target!(|data: &[u8]| {
    let mut reader = MafReader::new(data, Path::new("fuzz.maf"));
    // A reader that reports an error is done; it must not be asked again.
    while let Ok(Some(block)) = reader.next_block() {
        // Touch what the projection reads.
        let _ = block.columns();
        for row in &block.rows {
            let _ = msamamba_train::data::maf::split_src(&row.src);
        }
    }
});
