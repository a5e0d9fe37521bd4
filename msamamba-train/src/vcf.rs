//! Single-nucleotide variants from a VCF (plain or gzip), with errors naming file and line.

use std::path::{Path, PathBuf};

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
    /// The record's ID column.
    pub id: String,
    /// The record's INFO column.
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

/// The SNVs of a VCF and how many other records (indels, symbolic alleles) were skipped.
pub struct Variants {
    /// Single-base substitutions, in file order.
    pub snvs: Vec<Snv>,
    /// Records that are not single-base substitutions.
    pub skipped: usize,
}

/// Reads every data line; header lines (`#`) are skipped.
pub fn read_snvs(path: &Path) -> Result<Variants, VcfError> {
    let error = |line, reason: String| VcfError {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut reader = input::open(path).map_err(|e| error(0, format!("cannot read: {e}")))?;
    let (mut snvs, mut skipped, mut line_no, mut buf) = (Vec::new(), 0, 0u64, Vec::new());
    while input::read_line(&mut reader, &mut buf).map_err(|e| error(line_no + 1, format!("cannot read: {e}")))? {
        line_no += 1;
        let line = std::str::from_utf8(&buf).map_err(|_| error(line_no, "not UTF-8 text".into()))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 8 {
            return Err(error(
                line_no,
                format!("{} tab-separated fields, a VCF record has at least 8", fields.len()),
            ));
        }
        let pos: u64 = fields[1]
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| error(line_no, format!("POS `{}` is not a positive integer", fields[1])))?;
        let reference = fields[3].to_ascii_uppercase();
        for alt in fields[4].split(',') {
            let alt = alt.to_ascii_uppercase();
            let is_base = |s: &str| s.len() == 1 && matches!(s.as_bytes()[0], b'A' | b'C' | b'G' | b'T');
            if !(is_base(&reference) && is_base(&alt)) || alt == reference {
                skipped += 1;
                continue;
            }
            snvs.push(Snv {
                chrom: fields[0].to_string(),
                pos,
                reference: reference.as_bytes()[0],
                alternative: alt.as_bytes()[0],
                line: line_no,
                id: fields[2].to_string(),
                info: fields[7].to_string(),
            });
        }
    }
    Ok(Variants { snvs, skipped })
}
