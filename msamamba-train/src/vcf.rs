//! Single-nucleotide variants from a VCF (plain, gzip or bgzip), read with noodles, with errors
//! naming file and line.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use noodles_vcf as vcf;
use thiserror::Error;

use crate::data::input;

/// One REF -> ALT substitution (a multi-allelic site gives one per ALT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snv {
    /// Chromosome as written.
    pub chrom: String,
    /// 1-based position.
    pub pos: u64,
    /// Reference base (upper case).
    pub reference: u8,
    /// Alternative base (upper case).
    pub alternative: u8,
    /// 1-based line of the record.
    pub line: u64,
    /// The record's ID column (`.` when missing).
    pub id: String,
    /// The record's INFO column (`.` when missing).
    pub info: String,
}

/// A VCF that cannot be read.
#[derive(Debug, Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct VcfError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when the file cannot be opened).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// The SNVs of a VCF, its header, and how many other records (indels, symbolic alleles) were
/// skipped.
pub struct Variants {
    /// The file's header, so that a VCF written from these variants keeps its meta lines.
    pub header: vcf::Header,
    /// Single-base substitutions, in file order.
    pub snvs: Vec<Snv>,
    /// Records that are not single-base substitutions.
    pub skipped: usize,
}

/// Counts the lines consumed through it, so that noodles' errors can name the line.
struct LineCounter<R> {
    inner: R,
    lines: u64,
}

impl<R: BufRead> io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            self.lines += buf[..amt.min(buf.len())].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        self.inner.consume(amt)
    }
}

/// A column as written: noodles reads the missing value `.` as empty.
fn column(value: &str) -> String {
    if value.is_empty() { ".".into() } else { value.into() }
}

/// Reads the header and every record.
pub fn read_snvs(path: &Path) -> Result<Variants, VcfError> {
    let error = |line, reason: String| VcfError {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let inner = input::open(path).map_err(|e| error(0, format!("cannot read: {e}")))?;
    let mut reader = vcf::io::Reader::new(LineCounter { inner, lines: 0 });
    let header = reader
        .read_header()
        .map_err(|e| error(reader.get_ref().lines + 1, format!("bad header: {e}")))?;
    let (mut snvs, mut skipped, mut record) = (Vec::new(), 0, vcf::Record::default());
    loop {
        let line = reader.get_ref().lines + 1;
        match reader.read_record(&mut record) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(error(line, format!("bad record: {e}"))),
        }
        let pos = match record.variant_start() {
            Some(Ok(pos)) => usize::from(pos) as u64,
            Some(Err(e)) => return Err(error(line, format!("bad POS: {e}"))),
            None => return Err(error(line, "POS is 0 or missing; SNVs need a position".into())),
        };
        let reference = record.reference_bases().to_ascii_uppercase();
        let is_base = |s: &str| s.len() == 1 && matches!(s.as_bytes()[0], b'A' | b'C' | b'G' | b'T');
        for alt in record.alternate_bases().as_ref().split(',') {
            let alt = alt.to_ascii_uppercase();
            if !(is_base(&reference) && is_base(&alt)) || alt == reference {
                skipped += 1;
                continue;
            }
            snvs.push(Snv {
                chrom: record.reference_sequence_name().to_string(),
                pos,
                reference: reference.as_bytes()[0],
                alternative: alt.as_bytes()[0],
                line,
                id: column(record.ids().as_ref()),
                info: column(record.info().as_ref()),
            });
        }
    }
    Ok(Variants { header, snvs, skipped })
}
