//! Projection of a MAF onto a target species' coordinates: the `MsaWindow`.
//!
//! Strand convention: a block whose target row is on `-` is read as if reverse-complemented as a
//! whole, so that the target reads on its `+` strand. A column with `k` target bases before it
//! maps to `+` position `src_size - 1 - (start + k)`, and every row's base in that column is
//! complemented. Blocks with the target on `+` are read as written.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::fasta::{self, FastaError};
use super::maf::{Block, MafError, MafErrorKind, MafReader, SeqRow, Strand, split_src};
use super::region::Region;
use msamamba_model::tokens as alphabet;

/// An alignment window: one token row per species, target first, all of the region's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsaWindow {
    /// Species names in row order; `species[0]` is the target.
    pub species: Vec<String>,
    /// Token rows (see `msamamba_model::tokens`), one per species, each `end - start` long.
    pub rows: Vec<Vec<u8>>,
    /// Target chromosome (the part of the target's src after the first `.`).
    pub chrom: String,
    /// 0-based first position on the target's `+` strand.
    pub start: u64,
    /// 0-based position after the last one.
    pub end: u64,
    /// `Reverse` when every row was reverse-complemented to read on the target's `-` strand.
    pub strand: Strand,
}

impl MsaWindow {
    /// Number of positions (columns) in the window.
    pub fn len(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }

    /// Whether the window has no positions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the window as FASTA: one `>species` record per row, sequence in `-ACGT`.
    pub fn write_fasta(&self, out: &mut impl Write) -> io::Result<()> {
        for (species, row) in self.species.iter().zip(&self.rows) {
            let text: String = row.iter().map(|&token| alphabet::char_of(token)).collect();
            writeln!(out, ">{species}\n{text}")?;
        }
        Ok(())
    }
}

/// What to project: the arguments of `msamamba window`.
#[derive(Debug, Clone)]
pub struct WindowRequest<'a> {
    /// The MAF file (plain, gzip or bgzip).
    pub maf: &'a Path,
    /// Target species, as in the part of a src before the first `.`.
    pub target: &'a str,
    /// Region on the target, on its `+` strand.
    pub region: &'a Region,
    /// Rows after the target, in order; `None` for every species in order of first `s` row.
    pub species: Option<&'a [String]>,
    /// FASTA supplying the target row (record named `chr` or `species.chr`).
    pub fasta: Option<&'a Path>,
    /// `Reverse` reverse-complements every row of the window.
    pub strand: Strand,
}

/// A window and what the projection noticed while building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    /// The window.
    pub window: MsaWindow,
    /// Region positions aligned by some block.
    pub covered: u64,
    /// Times a block aligned a position an earlier block already had (the earlier one is kept).
    pub covered_twice: u64,
    /// Rows dropped in the blocks over the region because their species already had a row in
    /// the block (the first row wins, as `import-maf` does).
    pub duplicate_rows: u64,
    /// Positions where the `--fasta` base (which is used) differs from the MAF's target base.
    pub fasta_disagrees: u64,
}

/// Why a window could not be built.
#[derive(Debug, Error)]
pub enum WindowError {
    /// The MAF is malformed or unreadable.
    #[error(transparent)]
    Maf(#[from] MafError),
    /// The FASTA cannot supply the target row.
    #[error(transparent)]
    Fasta(#[from] FastaError),
    /// The MAF holds no alignment block.
    #[error("{}: no alignment blocks", path.display())]
    NoBlocks {
        /// The MAF file.
        path: PathBuf,
    },
    /// No `s` row of the file belongs to the target species.
    #[error("{}: target species `{species}` has no aligned rows", path.display())]
    TargetNotFound {
        /// The target species.
        species: String,
        /// The MAF file.
        path: PathBuf,
    },
    /// The target has rows, none on the region's chromosome.
    #[error("{}: target species `{species}` has no aligned rows on `{chrom}`", path.display())]
    ChromosomeNotFound {
        /// The target species.
        species: String,
        /// The chromosome asked for.
        chrom: String,
        /// The MAF file.
        path: PathBuf,
    },
    /// A species asked for has no row anywhere in the MAF.
    #[error("{}: --species `{species}` has no row in this alignment", path.display())]
    SpeciesNotFound {
        /// The species asked for.
        species: String,
        /// The MAF file.
        path: PathBuf,
    },
    /// The region ends past the chromosome's size (the target rows' source size).
    #[error("{}: region {region} ends past the end of {chrom} ({size} bp)", path.display())]
    OutsideChromosome {
        /// The region asked for.
        region: Region,
        /// The chromosome.
        chrom: String,
        /// The chromosome's size.
        size: u64,
        /// The MAF file.
        path: PathBuf,
    },
}

/// Builds the window for `request` by streaming the MAF once.
///
/// The whole file is read: MAF blocks carry no sortedness guarantee, so no block can be proven
/// to be the last one overlapping the region, and the default row order needs every species.
pub fn project(request: &WindowRequest) -> Result<Projection, WindowError> {
    let region = request.region;
    let mut builder = Builder::new(request);
    let mut blocks = 0u64;
    for block in MafReader::open(request.maf)? {
        builder.add(&block?)?;
        blocks += 1;
    }
    if blocks == 0 {
        return Err(WindowError::NoBlocks {
            path: request.maf.to_path_buf(),
        });
    }
    let Some(src) = builder.target_src else {
        return Err(if builder.target_seen {
            WindowError::ChromosomeNotFound {
                species: request.target.to_string(),
                chrom: region.chrom.clone(),
                path: request.maf.to_path_buf(),
            }
        } else {
            WindowError::TargetNotFound {
                species: request.target.to_string(),
                path: request.maf.to_path_buf(),
            }
        });
    };
    if let Some(species) = request
        .species
        .into_iter()
        .flatten()
        .find(|species| !builder.seen.contains(species.as_str()))
    {
        return Err(WindowError::SpeciesNotFound {
            species: species.clone(),
            path: request.maf.to_path_buf(),
        });
    }
    let (_, chrom) = split_src(&src);
    let mut rows = builder.rows;
    let mut fasta_disagrees = 0;
    if let Some(path) = request.fasta {
        // The record may be named by chromosome or by the full src (`chr22` or `hg17.chr22`).
        let bases = fasta::read_region(path, &[chrom, &src], region.start, region.end)?;
        if let Some(target) = rows.first_mut() {
            let from_fasta: Vec<u8> = bases.iter().map(|&b| alphabet::token_of(b)).collect();
            // Where the MAF aligned the target, its base and the FASTA's should be the same.
            fasta_disagrees = from_fasta
                .iter()
                .zip(target.iter())
                .zip(&builder.covered)
                .filter(|((fasta, maf), covered)| **covered && fasta != maf)
                .count() as u64;
            *target = from_fasta;
        }
    }
    if request.strand == Strand::Reverse {
        rows.iter_mut().for_each(|row| alphabet::reverse_complement(row));
    }
    Ok(Projection {
        window: MsaWindow {
            species: builder.species,
            rows,
            chrom: chrom.to_string(),
            start: region.start,
            end: region.end,
            strand: request.strand,
        },
        covered: builder.covered.iter().filter(|&&c| c).count() as u64,
        covered_twice: builder.covered_twice,
        duplicate_rows: builder.duplicate_rows,
        fasta_disagrees,
    })
}

/// The window under construction while blocks stream past.
struct Builder<'a> {
    request: &'a WindowRequest<'a>,
    /// Row index of each species that gets a row.
    index: HashMap<String, usize>,
    /// Species in row order.
    species: Vec<String>,
    /// Token rows, parallel to `species`.
    rows: Vec<Vec<u8>>,
    /// Region positions already taken by a block; empty until the chromosome is found.
    covered: Vec<bool>,
    covered_twice: u64,
    /// Rows dropped from blocks over the region: their species had a row in the block already.
    duplicate_rows: u64,
    /// Every species with a row somewhere in the file.
    seen: std::collections::HashSet<String>,
    /// Some `s` row belongs to the target species (on any chromosome).
    target_seen: bool,
    /// The src and size of the first target row on the region's chromosome.
    target_src: Option<String>,
    chrom_size: u64,
    /// Whether species not yet seen get a row (no `--species` list).
    open_species: bool,
}

impl<'a> Builder<'a> {
    /// Starts with the target row and any requested species rows, still empty: they are sized
    /// once the region has been checked against the chromosome, so a mistyped huge region is
    /// an error rather than a huge allocation.
    fn new(request: &'a WindowRequest<'a>) -> Self {
        let mut builder = Builder {
            request,
            index: HashMap::new(),
            species: Vec::new(),
            rows: Vec::new(),
            covered: Vec::new(),
            covered_twice: 0,
            duplicate_rows: 0,
            seen: std::collections::HashSet::new(),
            target_seen: false,
            target_src: None,
            chrom_size: 0,
            open_species: true,
        };
        builder.row_of(request.target);
        if let Some(list) = request.species {
            list.iter().for_each(|species| {
                builder.row_of(species);
            });
            builder.open_species = false;
        }
        builder
    }

    /// Returns the row of `species`, adding one when rows are still open to new species.
    fn row_of(&mut self, species: &str) -> Option<usize> {
        if let Some(&row) = self.index.get(species) {
            return Some(row);
        }
        if !self.open_species {
            return None;
        }
        let row = self.rows.len();
        self.index.insert(species.to_string(), row);
        self.species.push(species.to_string());
        self.rows.push(vec![alphabet::GAP; self.covered.len()]);
        Some(row)
    }

    /// Projects one block into the window.
    fn add(&mut self, block: &Block) -> Result<(), WindowError> {
        // Pair each other row with its window row; a species repeated within the block
        // (paralogs) keeps only its first row, as does the target.
        let mut target: Option<&SeqRow> = None;
        let mut others: Vec<(usize, &[u8])> = Vec::new();
        let mut duplicates = 0;
        for row in &block.rows {
            let (species, _) = split_src(&row.src);
            if !self.seen.contains(species) {
                self.seen.insert(species.to_string());
            }
            let Some(index) = self.row_of(species) else {
                continue;
            };
            if index == 0 {
                self.target_seen = true;
                if self.on_region_chrom(row) {
                    match target {
                        None => target = Some(row),
                        Some(_) => duplicates += 1,
                    }
                }
            } else if others.iter().all(|&(other, _)| other != index) {
                others.push((index, &row.text));
            } else {
                duplicates += 1;
            }
        }
        let Some(target) = target else {
            return Ok(());
        };
        self.check_chromosome(target)?;
        let columns = self.region_columns(target);
        if !columns.is_empty() {
            self.duplicate_rows += duplicates;
        }
        let complement = target.strand == Strand::Reverse;
        let read = |base: u8| {
            let token = alphabet::token_of(base);
            if complement { alphabet::complement(token) } else { token }
        };
        for (index, text) in std::iter::once((0, target.text.as_slice())).chain(others) {
            let Some(row) = self.rows.get_mut(index) else {
                continue;
            };
            for &(column, position) in &columns {
                if let (Some(slot), Some(&base)) = (row.get_mut(position), text.get(column)) {
                    *slot = read(base);
                }
            }
        }
        Ok(())
    }

    /// Whether a target row lies on the region's chromosome, named as the part of the src
    /// after the first `.` or as the whole src.
    fn on_region_chrom(&self, row: &SeqRow) -> bool {
        let (_, chrom) = split_src(&row.src);
        let wanted = self.request.region.chrom.as_str();
        chrom == wanted || row.src == wanted
    }

    /// Checks the region against the chromosome size the first time a target row is seen (then
    /// sizes the window), and that later target rows agree on that size.
    fn check_chromosome(&mut self, target: &SeqRow) -> Result<(), WindowError> {
        let path = || self.request.maf.to_path_buf();
        match &self.target_src {
            None => {
                let region = self.request.region;
                if region.end > target.src_size {
                    return Err(WindowError::OutsideChromosome {
                        region: region.clone(),
                        chrom: split_src(&target.src).1.to_string(),
                        size: target.src_size,
                        path: path(),
                    });
                }
                self.target_src = Some(target.src.clone());
                self.chrom_size = target.src_size;
                let len = region.len() as usize;
                self.covered = vec![false; len];
                self.rows.iter_mut().for_each(|row| row.resize(len, alphabet::GAP));
            }
            Some(src) if target.src_size != self.chrom_size => {
                return Err(MafError {
                    path: path(),
                    line: target.line,
                    kind: MafErrorKind::SourceSizeChanged {
                        src: src.clone(),
                        expected: self.chrom_size,
                        found: target.src_size,
                    },
                }
                .into());
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Lists (column, window position) for every target base of the block inside the region
    /// and not yet covered, marking those positions covered.
    fn region_columns(&mut self, target: &SeqRow) -> Vec<(usize, usize)> {
        let region = self.request.region;
        // The parser guarantees start + size <= src_size, so neither subtraction underflows.
        let (first, last) = match target.strand {
            Strand::Forward => (target.start, target.start + target.size),
            Strand::Reverse => (
                target.src_size - target.start - target.size,
                target.src_size - target.start,
            ),
        };
        if last <= region.start || first >= region.end {
            return Vec::new();
        }
        let mut columns = Vec::new();
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
            if position < region.start || position >= region.end {
                continue;
            }
            let offset = (position - region.start) as usize;
            match self.covered.get_mut(offset) {
                Some(covered) if *covered => self.covered_twice += 1,
                Some(covered) => {
                    *covered = true;
                    columns.push((column, offset));
                }
                None => {}
            }
        }
        columns
    }
}
