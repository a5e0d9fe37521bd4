//! Opening an input file that may be plain text, gzip or bgzip.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::num::NonZero;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use noodles_bgzf as bgzf;

/// Read buffer size: large enough that syscalls do not dominate line parsing.
const BUF_SIZE: usize = 1 << 16;

/// Opens `path` for buffered reading, decompressing when the file starts with the gzip magic
/// bytes (see `decompressing`).
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    decompressing(File::open(path)?)
}

/// Standard input, decompressed as [`open`] does a file, so `zcat x.vcf.gz | msamamba ...` and
/// `msamamba ... < x.vcf.gz` both work.
pub fn open_stdin() -> io::Result<Box<dyn BufRead>> {
    decompressing(io::stdin())
}

/// `inner` buffered, decompressed when it starts with the gzip magic bytes. bgzip data are
/// inflated block by block on every core (noodles' BGZF reader), since a single-threaded inflate
/// is slower than the MAF parser; other gzip data go through `MultiGzDecoder`, which reads every
/// member.
fn decompressing<R: Read + Send + 'static>(inner: R) -> io::Result<Box<dyn BufRead>> {
    let mut reader = BufReader::with_capacity(BUF_SIZE, inner);
    // fill_buf may return fewer bytes than a header only at end of input or for a tiny input,
    // in which case it cannot be compressed anyway.
    let head = reader.fill_buf()?;
    let is_gzip = head.starts_with(&[0x1f, 0x8b]);
    if is_bgzf(head) {
        let workers = std::thread::available_parallelism().unwrap_or(NonZero::<usize>::MIN);
        Ok(Box::new(bgzf::io::MultithreadedReader::with_worker_count(
            workers, reader,
        )))
    } else if is_gzip {
        let decoder = MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(BUF_SIZE, decoder)))
    } else {
        Ok(Box::new(reader))
    }
}

/// A BGZF block starts with a gzip header whose extra field (FLG.FEXTRA) holds the `BC`
/// subfield (SAM/BAM specification, section 4.1).
fn is_bgzf(head: &[u8]) -> bool {
    head.len() >= 18 && head[..4] == [0x1f, 0x8b, 0x08, 0x04] && &head[12..14] == b"BC"
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
