//! Opening an input file that may be plain text, gzip or bgzip.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// Read buffer size: large enough that syscalls do not dominate line parsing.
const BUF_SIZE: usize = 1 << 16;

/// Opens `path` for buffered reading, decompressing when the file starts with the gzip magic
/// bytes. `MultiGzDecoder` reads every member, so bgzip (concatenated gzip members) works too.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut reader = BufReader::with_capacity(BUF_SIZE, File::open(path)?);
    // fill_buf may return fewer than two bytes only at end of file or for a tiny file, in which
    // case the file cannot be gzip anyway.
    let is_gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if is_gzip {
        let decoder = MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(BUF_SIZE, decoder)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads one line (newline included) into `buf`, replacing its contents; returns false at end
/// of input. Reusing one buffer keeps line reading allocation-free.
pub fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    Ok(reader.read_until(b'\n', buf)? > 0)
}

/// Splits a line into its whitespace-separated fields (spaces, tabs, and a trailing `\r`).
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(u8::is_ascii_whitespace).filter(|field| !field.is_empty())
}
