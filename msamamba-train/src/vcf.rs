//! Variant records from a VCF (plain, gzip or bgzip; `-` for standard input), read one at a time
//! with noodles, with errors naming file and line.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use noodles_vcf::{self as vcf, variant::RecordBuf};
use thiserror::Error;

use crate::data::input;

/// A VCF that cannot be read.
#[derive(Debug, Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct VcfError {
    /// The file (`<stdin>` for standard input).
    pub path: PathBuf,
    /// 1-based line (0 when the file cannot be opened).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
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

/// A VCF read record by record: only the header and the current record are in memory.
pub struct VcfReader {
    path: PathBuf,
    reader: vcf::io::Reader<LineCounter<Box<dyn BufRead>>>,
    header: vcf::Header,
}

impl VcfReader {
    /// Opens `path` (`-`: standard input) and reads its header.
    pub fn open(path: &Path) -> Result<Self, VcfError> {
        let stdin = path == Path::new("-");
        let name = if stdin {
            PathBuf::from("<stdin>")
        } else {
            path.to_path_buf()
        };
        let error = |line, reason: String| VcfError {
            path: name.clone(),
            line,
            reason,
        };
        let inner = if stdin { input::open_stdin() } else { input::open(path) }
            .map_err(|e| error(0, format!("cannot read: {e}")))?;
        Self::new(name, inner)
    }

    /// Reads the header of the VCF text `inner` (decompressed), named `name` in messages.
    pub fn new(name: PathBuf, inner: Box<dyn BufRead>) -> Result<Self, VcfError> {
        let mut reader = vcf::io::Reader::new(LineCounter { inner, lines: 0 });
        match reader.read_header() {
            Ok(header) => Ok(Self {
                path: name,
                reader,
                header,
            }),
            Err(e) => Err(VcfError {
                line: reader.get_ref().lines + 1,
                path: name,
                reason: format!("bad header: {e}"),
            }),
        }
    }

    /// The file's header.
    pub fn header(&self) -> &vcf::Header {
        &self.header
    }

    /// The file, for messages (`<stdin>` for standard input).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next record into `record` and returns its 1-based line; `None` at the end.
    pub fn read(&mut self, record: &mut RecordBuf) -> Result<Option<u64>, VcfError> {
        let line = self.reader.get_ref().lines + 1;
        match self.reader.read_record_buf(&self.header, record) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(line)),
            Err(e) => Err(self.error(line, format!("bad record: {e}"))),
        }
    }

    /// An error at `line` of this file.
    pub fn error(&self, line: u64, reason: String) -> VcfError {
        VcfError {
            path: self.path.clone(),
            line,
            reason,
        }
    }
}
