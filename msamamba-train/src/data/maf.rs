//! Streaming reader for the Multiple Alignment Format (UCSC MAF, plus LAST's `p` lines).
//!
//! The reader holds one block at a time, so memory does not grow with the file. Every line is
//! validated; the first malformed line stops the stream with a [`MafError`] naming the file, the
//! 1-based line number and the reason.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::input;

/// The strand a row's coordinates refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strand {
    /// `+`: coordinates count from the start of the source sequence.
    Forward,
    /// `-`: coordinates count from the end of the source sequence (its reverse complement).
    Reverse,
}

impl Strand {
    /// Parses `+` or `-`.
    pub fn parse(field: &[u8]) -> Option<Strand> {
        match field {
            b"+" => Some(Strand::Forward),
            b"-" => Some(Strand::Reverse),
            _ => None,
        }
    }
}

/// An `s` line: one species' aligned sequence in a block.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqRow {
    /// Source name as written, e.g. `mm9.chr10`.
    pub src: String,
    /// 0-based start of the aligned bases, on `strand`.
    pub start: u64,
    /// Number of non-gap characters in `text`.
    pub size: u64,
    /// Strand the coordinates refer to.
    pub strand: Strand,
    /// Length of the whole source sequence.
    pub src_size: u64,
    /// Aligned text as written (bases, `-` gaps, any case).
    pub text: Vec<u8>,
    /// 1-based line number of the `s` line.
    pub line: u64,
}

/// An `e` line: the species is present in the region but has no aligned bases in this block.
#[derive(Debug, Clone, PartialEq)]
pub struct EmptyRow {
    /// Source name as written.
    pub src: String,
    /// 0-based start of the bridged region, on `strand`.
    pub start: u64,
    /// Length of the bridged region.
    pub size: u64,
    /// Strand the coordinates refer to.
    pub strand: Strand,
    /// Length of the whole source sequence.
    pub src_size: u64,
    /// Why the row is empty: `C`, `I`, `M`, `n` or `T` (UCSC's codes).
    pub status: u8,
}

/// One alignment block: the `a` line and the rows that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// 1-based line number of the `a` line.
    pub line: u64,
    /// The `score=` attribute, when present.
    pub score: Option<f64>,
    /// Every other `key=value` attribute of the `a` line, in order.
    pub attrs: Vec<(String, String)>,
    /// The `s` rows, in file order; never empty.
    pub rows: Vec<SeqRow>,
    /// The `e` rows, in file order.
    pub empty: Vec<EmptyRow>,
}

impl Block {
    /// Number of alignment columns (every row's text has this length).
    pub fn columns(&self) -> usize {
        self.rows.first().map_or(0, |row| row.text.len())
    }
}

/// Splits a `src` into (species, chromosome) at the first `.` : `mm9.chr10` ->
/// (`mm9`, `chr10`). A src without a `.` (`humanMito`) names both.
pub fn split_src(src: &str) -> (&str, &str) {
    src.split_once('.').unwrap_or((src, src))
}

/// A malformed or unreadable MAF input, located to the line.
#[derive(Debug, Error)]
#[error("{}:{line}: {kind}", path.display())]
pub struct MafError {
    /// The file being read.
    pub path: PathBuf,
    /// 1-based line number where reading failed (0 when the file could not be opened).
    pub line: u64,
    /// What was wrong.
    pub kind: MafErrorKind,
}

/// The reasons a MAF line is rejected.
#[derive(Debug, Error)]
pub enum MafErrorKind {
    /// The file could not be read or decompressed (truncated gzip lands here).
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    /// The file ends inside a block, in the middle of a row.
    #[error("the file ends in the middle of a row: it was cut off inside this block")]
    CutOff,
    /// A line starting with something other than `a s i e q p # track` or blank.
    #[error("unknown line type `{0}`")]
    UnknownLine(String),
    /// A row line with the wrong number of whitespace-separated fields.
    #[error("`{kind}` line has {found} fields, expected {expected}")]
    FieldCount {
        /// Line type.
        kind: char,
        /// Fields required, type letter included.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A coordinate that is not a non-negative integer.
    #[error("{field} `{value}` is not a non-negative integer")]
    NotANumber {
        /// Which field.
        field: &'static str,
        /// The field as written.
        value: String,
    },
    /// A strand field other than `+` or `-`.
    #[error("strand `{0}` is not + or -")]
    BadStrand(String),
    /// An `s` line whose size disagrees with its text.
    #[error("size field is {size} but the text has {bases} non-gap characters")]
    SizeMismatch {
        /// The size field.
        size: u64,
        /// Non-gap characters in the text.
        bases: u64,
    },
    /// A row whose text length differs from the block's first row.
    #[error("text has {found} columns but the block's first row has {expected}")]
    ColumnMismatch {
        /// Columns of the block's first `s` row.
        expected: usize,
        /// Columns of this line.
        found: usize,
    },
    /// An `s` row running past the end of its source sequence (or an `e` row starting past it).
    #[error("start {start} + size {size} exceeds the source size {src_size}")]
    PastSourceEnd {
        /// The start field.
        start: u64,
        /// The size field.
        size: u64,
        /// The source size field.
        src_size: u64,
    },
    /// A target row whose source size disagrees with an earlier row of the same chromosome.
    #[error("`{src}` has source size {found}, earlier rows say {expected}")]
    SourceSizeChanged {
        /// The target src.
        src: String,
        /// Size from the first row.
        expected: u64,
        /// Size on this row.
        found: u64,
    },
    /// A row line before any `a` line of its block.
    #[error("`{0}` line outside an alignment block")]
    OutsideBlock(char),
    /// An `i` or `q` line that does not follow an `s` line of the same source.
    #[error("`{kind}` line for `{src}` does not follow an `s` line of that source")]
    Orphan {
        /// Line type.
        kind: char,
        /// The source it names.
        src: String,
    },
    /// An `a` line with no `s` line after it.
    #[error("alignment block has no `s` lines")]
    EmptyBlock,
    /// An `a` line attribute that is not `key=value`, or a score that is not a number.
    #[error("bad `a` line attribute `{0}`")]
    BadAttribute(String),
    /// An `i`/`e` status or `q` quality character outside the format's set.
    #[error("bad {field} `{value}`")]
    BadCode {
        /// Which field.
        field: &'static str,
        /// The field as written.
        value: String,
    },
    /// A character in an `s` line's text that is neither a base, an IUPAC ambiguity code nor a gap.
    #[error("`{character}` in the aligned text (column {column}) is not a base, IUPAC code or gap")]
    BadBase {
        /// The character, escaped when it is not printable.
        character: String,
        /// Its 1-based column in the text.
        column: usize,
    },
    /// A source name that is not valid UTF-8.
    #[error("source name is not UTF-8")]
    NotUtf8,
}

/// Whether `byte` may appear in an `s` line's text: `ACGT`, `N`, the IUPAC ambiguity codes (read
/// as gaps by the model, like `N`) and the `-` gap, in either case.
fn is_sequence_char(byte: u8) -> bool {
    matches!(
        byte.to_ascii_uppercase(),
        b'A' | b'C'
            | b'G'
            | b'T'
            | b'U'
            | b'N'
            | b'R'
            | b'Y'
            | b'S'
            | b'W'
            | b'K'
            | b'M'
            | b'B'
            | b'D'
            | b'H'
            | b'V'
            | b'-'
    )
}

/// Streams [`Block`]s out of a MAF file.
pub struct MafReader<R> {
    reader: R,
    path: PathBuf,
    /// Reused line buffer: the reader allocates per row, never per line.
    buf: Vec<u8>,
    /// Number of the line in `buf`.
    line: u64,
    /// `buf` holds an `a` line that ended the previous block and starts the next.
    pending: bool,
    /// Set after an error or the end of input, so iteration stops.
    done: bool,
}

impl MafReader<Box<dyn BufRead>> {
    /// Opens a plain, gzip or bgzip MAF file.
    pub fn open(path: &Path) -> Result<Self, MafError> {
        let reader = input::open(path).map_err(|err| MafError {
            path: path.to_path_buf(),
            line: 0,
            kind: MafErrorKind::Io(err),
        })?;
        Ok(MafReader::new(reader, path))
    }
}

impl<R: BufRead> MafReader<R> {
    /// Reads MAF text from `reader`; `path` only names the input in errors.
    pub fn new(reader: R, path: &Path) -> Self {
        MafReader {
            reader,
            path: path.to_path_buf(),
            buf: Vec::new(),
            line: 0,
            pending: false,
            done: false,
        }
    }

    /// Reads the next block; `Ok(None)` at the end of the file.
    pub fn next_block(&mut self) -> Result<Option<Block>, MafError> {
        let mut block: Option<Block> = None;
        loop {
            if self.pending {
                self.pending = false;
            } else {
                self.line += 1;
                let more = input::read_line(&mut self.reader, &mut self.buf)
                    .map_err(|err| self.error(MafErrorKind::Io(err)))?;
                if !more {
                    return match block {
                        Some(block) => self.finish(block).map(Some),
                        None => Ok(None),
                    };
                }
            }
            match classify(&self.buf).map_err(|kind| self.error(kind))? {
                Line::Skip => {}
                Line::Blank => {
                    if let Some(block) = block.take() {
                        return self.finish(block).map(Some);
                    }
                }
                Line::Align => match block {
                    Some(block) => {
                        // This `a` line starts the next block: keep it for the next call.
                        self.pending = true;
                        return self.finish(block).map(Some);
                    }
                    None => block = Some(parse_a(&self.buf, self.line).map_err(|k| self.error(k))?),
                },
                Line::Row(kind) => {
                    let Some(open) = block.as_mut() else {
                        return Err(self.error(MafErrorKind::OutsideBlock(char::from(kind))));
                    };
                    // Only the last line can lack its newline: a row cut there is a file cut
                    // off inside a block, whose rows would otherwise pass for the whole block.
                    if !self.buf.ends_with(b"\n") {
                        return Err(self.error(MafErrorKind::CutOff));
                    }
                    parse_row(kind, &self.buf, self.line, open).map_err(|k| self.error(k))?;
                }
            }
        }
    }

    /// Checks a block that has ended.
    fn finish(&self, block: Block) -> Result<Block, MafError> {
        if block.rows.is_empty() {
            return Err(MafError {
                path: self.path.clone(),
                line: block.line,
                kind: MafErrorKind::EmptyBlock,
            });
        }
        Ok(block)
    }

    /// Locates `kind` at the current line.
    fn error(&self, kind: MafErrorKind) -> MafError {
        MafError {
            path: self.path.clone(),
            line: self.line,
            kind,
        }
    }
}

impl<R: BufRead> Iterator for MafReader<R> {
    type Item = Result<Block, MafError>;

    /// Yields blocks until the end of the file or the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_block().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// What a line is, from its first word.
enum Line {
    /// Comment (`#...`) or `track` line: carries nothing.
    Skip,
    /// Empty or whitespace only: ends a block.
    Blank,
    /// `a` line: starts a block.
    Align,
    /// `s`, `i`, `e`, `q` or `p` line.
    Row(u8),
}

/// Classifies a line by its first word, the type letter.
fn classify(line: &[u8]) -> Result<Line, MafErrorKind> {
    if line.first() == Some(&b'#') {
        return Ok(Line::Skip);
    }
    match input::fields(line).next() {
        None => Ok(Line::Blank),
        Some(b"a") => Ok(Line::Align),
        Some(&[kind @ (b's' | b'i' | b'e' | b'q' | b'p')]) => Ok(Line::Row(kind)),
        // UCSC browser files may carry a `track` line before the header.
        Some(b"track") => Ok(Line::Skip),
        Some(word) => Err(MafErrorKind::UnknownLine(lossy(word))),
    }
}

/// Parses an `a` line's `key=value` attributes into an empty block.
fn parse_a(line: &[u8], number: u64) -> Result<Block, MafErrorKind> {
    let mut block = Block {
        line: number,
        score: None,
        attrs: Vec::new(),
        rows: Vec::new(),
        empty: Vec::new(),
    };
    for field in input::fields(line).skip(1) {
        let text = std::str::from_utf8(field).map_err(|_| MafErrorKind::BadAttribute(lossy(field)))?;
        let Some((key, value)) = text.split_once('=') else {
            return Err(MafErrorKind::BadAttribute(text.to_string()));
        };
        if key == "score" {
            let score = value
                .parse()
                .map_err(|_| MafErrorKind::BadAttribute(text.to_string()))?;
            block.score = Some(score);
        } else {
            block.attrs.push((key.to_string(), value.to_string()));
        }
    }
    Ok(block)
}

/// Parses an `s`, `i`, `e`, `q` or `p` line into the open block.
fn parse_row(kind: u8, line: &[u8], number: u64, block: &mut Block) -> Result<(), MafErrorKind> {
    match kind {
        b's' => {
            let [_, src, start, size, strand, src_size, text] = split_fields(line, 's')?;
            let (start, size, strand, src_size) = coordinates([start, size, strand, src_size], true)?;
            if let Some(column) = text.iter().position(|&b| !is_sequence_char(b)) {
                return Err(MafErrorKind::BadBase {
                    character: lossy(&text[column..=column]).escape_default().to_string(),
                    column: column + 1,
                });
            }
            // The gap count is the one check that ties the header fields to the text.
            let bases = text.iter().filter(|&&b| b != b'-').count() as u64;
            if bases != size {
                return Err(MafErrorKind::SizeMismatch { size, bases });
            }
            if let Some(first) = block.rows.first() {
                check_columns(first.text.len(), text.len())?;
            }
            block.rows.push(SeqRow {
                src: utf8(src)?,
                start,
                size,
                strand,
                src_size,
                text: text.to_vec(),
                line: number,
            });
        }
        b'e' => {
            let [_, src, start, size, strand, src_size, status] = split_fields(line, 'e')?;
            let (start, size, strand, src_size) = coordinates([start, size, strand, src_size], false)?;
            block.empty.push(EmptyRow {
                src: utf8(src)?,
                start,
                size,
                strand,
                src_size,
                status: status_code(status, b"CIMnT")?,
            });
        }
        b'i' => {
            let [_, src, left_status, left_count, right_status, right_count] = split_fields(line, 'i')?;
            follows_row(block, 'i', src)?;
            status_code(left_status, b"CINnMT")?;
            number_field(left_count, "left count")?;
            status_code(right_status, b"CINnMT")?;
            number_field(right_count, "right count")?;
        }
        b'q' => {
            let [_, src, quality] = split_fields(line, 'q')?;
            let columns = follows_row(block, 'q', src)?;
            check_columns(columns, quality.len())?;
            // Quality is 0-9 (log scale), F (finished) or `-` where the row has a gap.
            if !quality.iter().all(|&b| b.is_ascii_digit() || b == b'F' || b == b'-') {
                return Err(MafErrorKind::BadCode {
                    field: "quality",
                    value: lossy(quality),
                });
            }
        }
        // LAST's per-column probability line.
        _ => {
            let [_, probabilities] = split_fields(line, 'p')?;
            match block.rows.first() {
                Some(first) => check_columns(first.text.len(), probabilities.len())?,
                None => return Err(MafErrorKind::OutsideBlock('p')),
            }
        }
    }
    Ok(())
}

/// Splits a row line into exactly `N` fields (type letter included).
fn split_fields<const N: usize>(line: &[u8], kind: char) -> Result<[&[u8]; N], MafErrorKind> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut found = 0;
    for field in input::fields(line) {
        if let Some(slot) = out.get_mut(found) {
            *slot = field;
        }
        found += 1;
    }
    if found == N {
        Ok(out)
    } else {
        Err(MafErrorKind::FieldCount {
            kind,
            expected: N,
            found,
        })
    }
}

/// Parses the start, size, strand and source size fields of an `s`/`e` line, checking that the
/// row ends within its source when `bounded` (`s` lines). UCSC `e` lines may bridge past the
/// end of a scaffold (multiz30way has such rows), so for them only the start is checked.
fn coordinates(
    [start, size, strand, src_size]: [&[u8]; 4],
    bounded: bool,
) -> Result<(u64, u64, Strand, u64), MafErrorKind> {
    let start = number_field(start, "start")?;
    let size = number_field(size, "size")?;
    let strand_value = Strand::parse(strand).ok_or_else(|| MafErrorKind::BadStrand(lossy(strand)))?;
    let src_size = number_field(src_size, "source size")?;
    let end = if bounded { start.checked_add(size) } else { Some(start) };
    if end.is_none_or(|end| end > src_size) {
        return Err(MafErrorKind::PastSourceEnd { start, size, src_size });
    }
    Ok((start, size, strand_value, src_size))
}

/// Returns the block's column count if its last `s` row names `src`, as `i` and `q` lines must.
fn follows_row(block: &Block, kind: char, src: &[u8]) -> Result<usize, MafErrorKind> {
    match block.rows.last() {
        Some(row) if row.src.as_bytes() == src => Ok(row.text.len()),
        _ => Err(MafErrorKind::Orphan { kind, src: lossy(src) }),
    }
}

/// Errors unless a line's column count matches the block's.
fn check_columns(expected: usize, found: usize) -> Result<(), MafErrorKind> {
    if expected == found {
        Ok(())
    } else {
        Err(MafErrorKind::ColumnMismatch { expected, found })
    }
}

/// Parses a single-character status code from `allowed`.
fn status_code(field: &[u8], allowed: &[u8]) -> Result<u8, MafErrorKind> {
    match field {
        [code] if allowed.contains(code) => Ok(*code),
        _ => Err(MafErrorKind::BadCode {
            field: "status",
            value: lossy(field),
        }),
    }
}

/// Parses a non-negative decimal integer without going through `str`.
fn number_field(field: &[u8], name: &'static str) -> Result<u64, MafErrorKind> {
    let invalid = || MafErrorKind::NotANumber {
        field: name,
        value: lossy(field),
    };
    if field.is_empty() {
        return Err(invalid());
    }
    field.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(invalid());
        }
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(b - b'0')))
            .ok_or_else(invalid)
    })
}

/// Converts a source name to a `String`.
fn utf8(field: &[u8]) -> Result<String, MafErrorKind> {
    String::from_utf8(field.to_vec()).map_err(|_| MafErrorKind::NotUtf8)
}

/// Shows user bytes in an error message.
fn lossy(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}
