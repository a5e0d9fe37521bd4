//! The index beside a bgzipped VCF: tabix (`x.vcf.gz.tbi`) or, for chromosomes longer than
//! 2^29 bases, CSI (`x.vcf.gz.csi`), read and written with noodles, as `tabix -p vcf` and
//! `bcftools index` do.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use noodles_csi as csi;
use noodles_tabix as tabix;
use noodles_vcf as vcf;

use crate::atomic_output::AtomicOutput;

/// `path` with `.tbi` or `.csi` appended, as tabix names it.
fn beside(path: &Path, extension: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(extension);
    PathBuf::from(name)
}

/// Reads the index of the bgzipped VCF `path`: `path.tbi`, else `path.csi`.
pub fn read_index(path: &Path) -> Result<vcf::Index> {
    let (tbi, csi) = (beside(path, ".tbi"), beside(path, ".csi"));
    if tbi.exists() {
        let index = tabix::fs::read(&tbi).with_context(|| format!("{}: cannot read", tbi.display()))?;
        Ok(vcf::Index::Tabix(index))
    } else if csi.exists() {
        let index = csi::fs::read(&csi).with_context(|| format!("{}: cannot read", csi.display()))?;
        Ok(vcf::Index::Csi(index))
    } else {
        bail!(
            "{}: no index ({} or .csi); --regions reads an indexed, bgzipped VCF (`msamamba score --index` or `tabix -p vcf` writes one)",
            path.display(),
            tbi.display()
        )
    }
}

/// Indexes the bgzipped VCF at `written` (a complete file, not yet in place) and starts the index
/// of `destination` beside it, to be committed after the VCF. Records must be sorted by
/// chromosome and position, as tabix requires.
pub fn index_of(written: &Path, destination: &Path) -> Result<AtomicOutput> {
    let index = vcf::fs::index(written).with_context(|| {
        format!(
            "{}: cannot index (tabix needs records sorted by chromosome and position)",
            destination.display()
        )
    })?;
    let (extension, bytes) = match &index {
        vcf::Index::Tabix(index) => {
            let mut writer = tabix::io::Writer::new(Vec::new());
            writer.write_index(index)?;
            (".tbi", writer.into_inner().finish()?)
        }
        vcf::Index::Csi(index) => {
            let mut writer = csi::io::Writer::new(Vec::new());
            writer.write_index(index)?;
            (".csi", writer.into_inner().finish()?)
        }
    };
    let path = beside(destination, extension);
    let mut out = AtomicOutput::create(&path, &[])?;
    std::io::Write::write_all(out.writer(), &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(out)
}
