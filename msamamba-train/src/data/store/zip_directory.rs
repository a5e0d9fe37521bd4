//! The CRC32 a zip's central directory gives each file, which zarrs' zip reader does not check:
//! [`super::verified_storage::VerifiedStorage`] checks every value it reads from a zip store
//! against it, so a damaged zip is an error even for stores without the import's record.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rc_zip::EntryKind;
use rc_zip::fsm::{ArchiveFsm, FsmResult};

/// Per file of the zip at `path` under `folder` (`""` or `name/`), its key in the store (the
/// name without `folder`) and CRC32.
pub(crate) fn entry_crcs(path: &Path, folder: &str) -> Result<HashMap<String, u32>, String> {
    let file = File::open(path).map_err(|err| err.to_string())?;
    let size = file.metadata().map_err(|err| err.to_string())?.len();
    let mut fsm = ArchiveFsm::new(size);
    let archive = loop {
        if let Some(offset) = fsm.wants_read() {
            let read = file.read_at(fsm.space(), offset).map_err(|err| err.to_string())?;
            fsm.fill(read);
        }
        match fsm.process().map_err(|err| err.to_string())? {
            FsmResult::Continue(next) => fsm = next,
            FsmResult::Done(archive) => break archive,
        }
    };
    Ok(archive
        .entries()
        .filter(|entry| entry.kind() == EntryKind::File)
        .filter_map(|entry| Some((entry.name.strip_prefix(folder)?.to_string(), entry.crc32)))
        .collect())
}
