//! `import-maf`: projects MAF files onto a target species and writes the result as an
//! alignment store (see `store.rs` for the layout), so that windows are read by random access
//! instead of re-streaming the MAF.
//!
//! Every position is what [`crate::data::projection::project`] gives for it: rows are placed by the same
//! rules (target first, `--species` order or first appearance, `-` strand target rows
//! complemented, first block wins, `--fasta` supplying the target row everywhere).
//!
//! Memory: each MAF is streamed once. Per target chromosome only the chunks (512 positions) the
//! current block touches stay open; a block starting in chunk `k` finishes every chunk before
//! `k`, which is then written. MAF files sorted by position (as UCSC's are) therefore never
//! revisit a written chunk; a block that does is an error naming the block, not a silent loss.
//! Without `--species`, species seen for the first time after some chunks were written make the
//! array wider: those chunks are rewritten once, at the end, with gap columns added.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::fasta::{FastaError, RecordCursor};
use super::maf::{Block, MafError, MafErrorKind, MafReader, SeqRow, Strand, split_src};
use super::store::layout::{CHUNK_ROWS, FILL_BYTE};
use super::store::{ChunkSink, StoreError, StoreWriter};
use crate::progress;
use msamamba_model::tokens as alphabet;

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Chromosome arrays written, with their lengths, in order of first appearance.
    pub chromosomes: Vec<(String, u64)>,
    /// Species in column order, the target first.
    pub species: Vec<String>,
    /// Alignment blocks read, over all files.
    pub blocks: u64,
    /// Target positions aligned by some block.
    pub covered: u64,
    /// Times a block aligned a position an earlier block already had (the earlier one is kept).
    pub covered_twice: u64,
    /// Rows dropped because an earlier row of the block had their species (and, for the
    /// target, chromosome): the first row wins.
    pub duplicate_rows: u64,
}

/// Why an import failed.
#[derive(Debug, Error)]
pub enum ImportError {
    /// A MAF is malformed or unreadable.
    #[error(transparent)]
    Maf(#[from] MafError),
    /// The FASTA cannot supply a target chromosome.
    #[error(transparent)]
    Fasta(#[from] FastaError),
    /// The store cannot be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A `--species` name no block has.
    #[error("{paths}: --species `{species}` is in no block; the alignment has {}", present.join(", "))]
    UnknownSpecies {
        /// The species asked for.
        species: String,
        /// The MAF files, comma-separated.
        paths: String,
        /// The species the blocks have, sorted.
        present: Vec<String>,
    },
    /// No `s` row of any file belongs to the target species.
    #[error("{paths}: target species `{species}` has no aligned rows")]
    TargetNotFound {
        /// The target species.
        species: String,
        /// The MAF files, comma-separated.
        paths: String,
    },
    /// A target chromosome name that cannot name an array in the store.
    #[error("{}:{line}: chromosome name `{name}` cannot name a zarr array (empty, `/` or leading `.`)", path.display())]
    ChromosomeName {
        /// The name.
        name: String,
        /// The MAF file.
        path: PathBuf,
        /// 1-based line of the target row.
        line: u64,
    },
    /// A block reaches back into a chunk already written: the MAF is not sorted by position.
    #[error(
        "{}:{line}: block aligns {chrom}:{position} (0-based) after positions up to {written} \
         were written; sort the MAF by target position (e.g. `mafSort`)",
        path.display()
    )]
    Unsorted {
        /// The MAF file.
        path: PathBuf,
        /// 1-based line of the target row.
        line: u64,
        /// The target chromosome.
        chrom: String,
        /// The position reached back to.
        position: u64,
        /// Positions below this one are already written.
        written: u64,
    },
}

/// Imports `mafs` projected onto `target` into a new store at `out` (which must not exist or be
/// empty): one array per target chromosome, as long as the target rows' source size, columns
/// the target then `species` (default: order of first appearance over the files). Positions no
/// block covers read `-`, or, with `fasta`, show the reference base in the target row.
///
/// The store is written into a staging directory beside `out` ([`staging_path`]) and renamed
/// into place once whole: a failed import (a truncated file, a full disk) removes it and leaves
/// no `out`, so a rerun starts afresh. The staging directory of an import that was killed is
/// removed by the next import into the same `out`, with a warning naming it.
pub fn import_maf(
    mafs: &[PathBuf],
    target: &str,
    species: Option<&[String]>,
    fasta: Option<&Path>,
    out: &Path,
) -> Result<ImportSummary, ImportError> {
    let folder = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    crate::atomic_output::remove_leftovers(folder, out);
    // Refused before any work: an existing store is never replaced.
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(StoreError::OutputExists {
            path: out.to_path_buf(),
        }
        .into());
    }
    let staging = staging_path(out, std::process::id());
    // A SIGINT or SIGTERM removes it too.
    let _pending = crate::atomic_output::PendingOutput::new(&staging);
    let imported = import_into(mafs, target, species, fasta, &staging).and_then(|summary| {
        // An empty `out` directory is replaced by the store (rename takes an empty directory).
        std::fs::rename(&staging, out).map_err(|err| StoreError::Storage {
            path: out.to_path_buf(),
            reason: format!("cannot move the imported store into place: {err}"),
        })?;
        Ok(summary)
    });
    if imported.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    imported
}

/// Where the import into `out` by process `pid` writes until it is done: a hidden directory
/// beside `out` (same file system, so the final rename is atomic), named as every unfinished
/// output is ([`crate::atomic_output`]), so that a killed import's is recognised as one.
pub fn staging_path(out: &Path, pid: u32) -> PathBuf {
    out.with_file_name(format!("{}{pid}-import", crate::atomic_output::partial_prefix(out)))
}

/// [`import_maf`] writing its store at `dir`.
fn import_into(
    mafs: &[PathBuf],
    target: &str,
    species: Option<&[String]>,
    fasta: Option<&Path>,
    dir: &Path,
) -> Result<ImportSummary, ImportError> {
    let mut import = Import::new(target, species, fasta, StoreWriter::create(dir)?);
    let bar = progress::counter("MAF blocks");
    for path in mafs {
        for block in MafReader::open(path)? {
            import.add(&block?, path)?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let paths = || {
        mafs.iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if import.chromosomes.is_empty() {
        return Err(ImportError::TargetNotFound {
            species: target.to_string(),
            paths: paths(),
        });
    }
    // Checked once every block is read: a species may first appear in the last one.
    if let Some(missing) = import.species.iter().find(|name| !import.seen.contains(*name)) {
        return Err(ImportError::UnknownSpecies {
            species: missing.clone(),
            paths: paths(),
            present: import.seen.into_iter().collect(),
        });
    }
    import.finish()
}

/// An import in progress.
struct Import<'a> {
    fasta: Option<&'a Path>,
    writer: StoreWriter,
    /// Column of each species that gets one.
    index: HashMap<String, usize>,
    /// Species in column order.
    species: Vec<String>,
    /// Whether species not yet seen get a column (no `--species` list).
    open_species: bool,
    /// Target chromosomes in order of first appearance, and their indices by name.
    chromosomes: Vec<Chromosome>,
    by_name: HashMap<String, usize>,
    blocks: u64,
    covered_twice: u64,
    duplicate_rows: u64,
    /// Every species some block has.
    seen: BTreeSet<String>,
}

/// One target chromosome's array while blocks stream past.
struct Chromosome {
    name: String,
    len: u64,
    /// Chunks touched by blocks and not yet written, by chunk index.
    open: BTreeMap<u64, Chunk>,
    /// Chunks below this index are written (or left unwritten as all gaps).
    written: u64,
    /// (first chunk index, width) for each run of chunks written at one width.
    widths: Vec<(u64, usize)>,
    /// The target row's bases, when a FASTA supplies them.
    reference: Option<RecordCursor>,
    /// Writes chunks at the current width.
    sink: Option<ChunkSink>,
    covered: u64,
}

/// One chunk under construction: a row of `CHUNK_ROWS` ASCII bases per column seen so far.
struct Chunk {
    rows: Vec<Vec<u8>>,
    covered: Vec<bool>,
}

impl<'a> Import<'a> {
    fn new(target: &'a str, species: Option<&[String]>, fasta: Option<&'a Path>, writer: StoreWriter) -> Self {
        let mut import = Import {
            fasta,
            writer,
            index: HashMap::new(),
            species: Vec::new(),
            open_species: true,
            chromosomes: Vec::new(),
            by_name: HashMap::new(),
            blocks: 0,
            covered_twice: 0,
            duplicate_rows: 0,
            seen: BTreeSet::new(),
        };
        import.column_of(target);
        if let Some(list) = species {
            list.iter().for_each(|name| {
                import.column_of(name);
            });
            import.open_species = false;
        }
        import
    }

    /// Returns the column of `species`, adding one while columns are open to new species.
    fn column_of(&mut self, species: &str) -> Option<usize> {
        if let Some(&column) = self.index.get(species) {
            return Some(column);
        }
        if !self.open_species {
            return None;
        }
        let column = self.species.len();
        self.index.insert(species.to_string(), column);
        self.species.push(species.to_string());
        Some(column)
    }

    /// Projects one block into its chromosome's open chunks.
    fn add(&mut self, block: &Block, path: &Path) -> Result<(), ImportError> {
        self.blocks += 1;
        // The target's first row per chromosome, and each other species' first row (paralogs
        // after it are dropped), as the window projection pairs them.
        let mut targets: Vec<&SeqRow> = Vec::new();
        let mut others: Vec<(usize, &[u8])> = Vec::new();
        for row in &block.rows {
            let (species, chrom) = split_src(&row.src);
            if !self.seen.contains(species) {
                self.seen.insert(species.to_string());
            }
            let Some(column) = self.column_of(species) else {
                continue;
            };
            let first = match column {
                0 => targets.iter().all(|seen| split_src(&seen.src).1 != chrom),
                _ => others.iter().all(|&(other, _)| other != column),
            };
            match (first, column) {
                (false, _) => self.duplicate_rows += 1,
                (true, 0) => targets.push(row),
                (true, _) => others.push((column, &row.text)),
            }
        }
        for target in targets {
            self.place(target, &others, path)?;
        }
        Ok(())
    }

    /// Writes one target row's columns (and the other rows' bases in them) into its chromosome.
    fn place(&mut self, target: &SeqRow, others: &[(usize, &[u8])], path: &Path) -> Result<(), ImportError> {
        let chrom = self.chromosome(target, path)?;
        // + strand span of the row; the parser guarantees start + size <= src_size.
        let first = match target.strand {
            Strand::Forward => target.start,
            Strand::Reverse => target.src_size - target.start - target.size,
        };
        if target.size == 0 {
            return Ok(());
        }
        self.flush(chrom, first / CHUNK_ROWS)?;
        let complement = target.strand == Strand::Reverse;
        let read = |base: u8| {
            let token = alphabet::token_of(base);
            let token = if complement { alphabet::complement(token) } else { token };
            alphabet::char_of(token) as u8
        };
        let state = &mut self.chromosomes[chrom];
        let mut k = 0;
        for (column, &base) in target.text.iter().enumerate() {
            if base == b'-' {
                continue;
            }
            let position = match target.strand {
                Strand::Forward => target.start + k,
                Strand::Reverse => target.src_size - 1 - (target.start + k),
            };
            k += 1;
            let index = position / CHUNK_ROWS;
            if index < state.written {
                return Err(ImportError::Unsorted {
                    path: path.to_path_buf(),
                    line: target.line,
                    chrom: state.name.clone(),
                    position,
                    written: state.written * CHUNK_ROWS,
                });
            }
            let offset = (position % CHUNK_ROWS) as usize;
            let chunk = state.open.entry(index).or_insert_with(|| Chunk {
                rows: Vec::new(),
                covered: vec![false; CHUNK_ROWS as usize],
            });
            if chunk.covered[offset] {
                self.covered_twice += 1;
                continue;
            }
            chunk.covered[offset] = true;
            state.covered += 1;
            for (row, text) in std::iter::once((0, target.text.as_slice())).chain(others.iter().copied()) {
                if chunk.rows.len() <= row {
                    chunk.rows.resize(row + 1, vec![FILL_BYTE; CHUNK_ROWS as usize]);
                }
                if let Some(&base) = text.get(column) {
                    chunk.rows[row][offset] = read(base);
                }
            }
        }
        Ok(())
    }

    /// The index of the target row's chromosome, added on first sight; later rows must agree
    /// on its size.
    fn chromosome(&mut self, target: &SeqRow, path: &Path) -> Result<usize, ImportError> {
        let (_, name) = split_src(&target.src);
        if let Some(&found) = self.by_name.get(name) {
            let len = self.chromosomes[found].len;
            if len != target.src_size {
                return Err(MafError {
                    path: path.to_path_buf(),
                    line: target.line,
                    kind: MafErrorKind::SourceSizeChanged {
                        src: target.src.clone(),
                        expected: len,
                        found: target.src_size,
                    },
                }
                .into());
            }
            return Ok(found);
        }
        // The name becomes a folder of the store, next to `.zgroup` and `.zattrs`.
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(ImportError::ChromosomeName {
                name: name.to_string(),
                path: path.to_path_buf(),
                line: target.line,
            });
        }
        // The record may be named by chromosome or by the full src (`chr22` or `hg17.chr22`).
        let reference = match self.fasta {
            Some(fasta) => Some(RecordCursor::open(fasta, &[name, &target.src])?),
            None => None,
        };
        self.chromosomes.push(Chromosome {
            name: name.to_string(),
            len: target.src_size,
            open: BTreeMap::new(),
            written: 0,
            widths: Vec::new(),
            reference,
            sink: None,
            covered: 0,
        });
        self.by_name.insert(name.to_string(), self.chromosomes.len() - 1);
        Ok(self.chromosomes.len() - 1)
    }

    /// Writes every chunk of chromosome `chrom` below index `end` not yet written.
    fn flush(&mut self, chrom: usize, end: u64) -> Result<(), ImportError> {
        let width = self.species.len();
        let state = &mut self.chromosomes[chrom];
        while state.written < end {
            let index = state.written;
            let chunk = state.open.remove(&index);
            // Without a reference row, a chunk no block touched is all gaps: the fill value.
            if chunk.is_some() || state.reference.is_some() {
                let bytes = state.chunk_bytes(index, chunk, width)?;
                let sink = match state.sink.take() {
                    Some(sink) if sink.width() == width => sink,
                    _ => self.writer.chunks(&state.name, state.len, width)?,
                };
                if state.widths.last().is_none_or(|&(_, w)| w != width) {
                    state.widths.push((index, width));
                }
                sink.store(index, bytes)?;
                state.sink = Some(sink);
            }
            state.written += 1;
        }
        Ok(())
    }

    /// Writes the remaining chunks, widens chunks written before the last species appeared,
    /// then the metadata.
    fn finish(mut self) -> Result<ImportSummary, ImportError> {
        let width = self.species.len();
        for chrom in 0..self.chromosomes.len() {
            let state = &self.chromosomes[chrom];
            self.flush(chrom, state.len.div_ceil(CHUNK_ROWS))?;
            let state = &self.chromosomes[chrom];
            for (run, &(first, from)) in state.widths.iter().enumerate() {
                let end = state.widths.get(run + 1).map_or(state.written, |&(next, _)| next);
                if from < width {
                    self.writer.widen(&state.name, state.len, first..end, from, width)?;
                }
            }
        }
        let chromosomes: Vec<(String, u64)> = self
            .chromosomes
            .iter()
            .map(|state| (state.name.clone(), state.len))
            .collect();
        self.writer.finish(&chromosomes, &self.species)?;
        Ok(ImportSummary {
            chromosomes,
            species: self.species,
            blocks: self.blocks,
            covered: self.chromosomes.iter().map(|state| state.covered).sum(),
            covered_twice: self.covered_twice,
            duplicate_rows: self.duplicate_rows,
        })
    }
}

impl Chromosome {
    /// Chunk `index` as stored: `CHUNK_ROWS` x `width` bytes, position-major, the reference
    /// base (if any) in column 0 of the positions inside the chromosome.
    fn chunk_bytes(&mut self, index: u64, chunk: Option<Chunk>, width: usize) -> Result<Vec<u8>, ImportError> {
        let mut bytes = vec![FILL_BYTE; CHUNK_ROWS as usize * width];
        if let Some(chunk) = chunk {
            for (column, row) in chunk.rows.iter().enumerate() {
                for (position, &base) in row.iter().enumerate() {
                    bytes[position * width + column] = base;
                }
            }
        }
        if let Some(reference) = &mut self.reference {
            let start = index * CHUNK_ROWS;
            let mut bases = Vec::with_capacity(CHUNK_ROWS as usize);
            reference.read(CHUNK_ROWS.min(self.len - start), &mut bases)?;
            for (position, &base) in bases.iter().enumerate() {
                bytes[position * width] = alphabet::char_of(alphabet::token_of(base)) as u8;
            }
        }
        Ok(bytes)
    }
}
