//! Alignment stores in GPN-MSA's zarr layout: random-access reading of windows.
//!
//! # Layout
//! GPN-MSA's `89.zarr` is written by its `merge_msa` rule
//! (songlab-cal/gpn, `analysis/gpn-msa_human/workflow/rules/training.smk`) with zarr-python 2 and
//! read by `GenomeMSA` (`gpn/data.py`) as `zarr.open(path)[chrom][start:end]`:
//! - a zarr **v2** group (`.zgroup`) at the root, one **array per chromosome** named as in the
//!   reference (`1`..`22`, `X`, `Y` there; as in the MAF's src here, e.g. `chr10`);
//! - each array has shape `[chromosome length, species]`, dtype `|S1` (one ASCII byte), chunks
//!   `[512, species]`, Blosc (lz4, level 5, byte shuffle), C order, chunk keys `i.0`;
//! - column 0 is the reference (human in `89.zarr`, possibly soft-masked), then the other
//!   species; bases are `ACGT`, gaps and everything else `-`;
//! - the species order is not in the store: GPN-MSA keeps it in a text file
//!   (`config/species/multiz100way/89.txt`, reference prepended).
//!
//! Stores written by [`crate::data::import`] add the species list as the root attribute `species`,
//! and use `-` as fill value so that all-gap chunks are not written (zarr-python 2's own
//! "empty chunk" rule, for our fill value). Stores without the attribute name their columns
//! `0`, `1`, ... unless [`AlignmentStore::with_species`] names them.
//!
//! Stores written by the import also record, per chromosome array, the chunks written and each
//! one's CRC32 (`written_chunks` in the array's `.zattrs`); every chunk read is checked against
//! it. Stores without a record (GPN-MSA's, or ours from before the record) read unchecked, with a
//! note. Every value read from a zip is checked against the CRC32 of the zip's directory.
//!
//! A store is a directory or a zip of one (entries at the root, or under one top-level folder).
//! Reading decodes only the chunks a window touches; bytes become tokens through
//! [`msamamba_model::tokens::token_of`] (lower case reads as upper case).

mod chunk_record;
pub(crate) mod layout;
mod unsynced;
mod verified_storage;
mod writer;
mod zip_directory;

pub(crate) use writer::{ChunkSink, StoreWriter};

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use zarrs::array::{Array, ArrayError, ArrayMetadata, ArraySubset};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::{
    ListableStorageTraits, ReadableListableStorage, ReadableListableStorageTraits, ReadableStorageTraits, StorageError,
    StoreKey, StorePrefix,
};
use zarrs_zip::ZipStorageAdapter;

use self::chunk_record::ChunkRecord;
use self::verified_storage::VerifiedStorage;
use super::maf::Strand;
use super::projection::MsaWindow;
use super::region::Region;
use msamamba_model::tokens as alphabet;

/// Why a store cannot be opened, read or written.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Nothing exists at the path.
    #[error("{}: no such alignment store", path.display())]
    Missing {
        /// The store path.
        path: PathBuf,
    },
    /// The path is not a zarr v2 group (or a zip of one).
    #[error("{}: not a zarr v2 alignment store: {reason}", path.display())]
    NotAStore {
        /// The store path.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A metadata file is unreadable or describes something other than an alignment array.
    #[error("{}: `{key}`: {reason}", path.display())]
    Metadata {
        /// The store path.
        path: PathBuf,
        /// The metadata file inside the store.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store has no array for the chromosome.
    #[error("{}: no chromosome `{chrom}` (the store has {available})", path.display())]
    UnknownChromosome {
        /// The store path.
        path: PathBuf,
        /// The chromosome asked for.
        chrom: String,
        /// The chromosomes it has, comma-separated.
        available: String,
    },
    /// The region is reversed or ends past the chromosome.
    #[error("{}: region {region} is outside {} ({len} bp)", path.display(), region.chrom)]
    OutsideChromosome {
        /// The store path.
        path: PathBuf,
        /// The region asked for.
        region: Region,
        /// The chromosome's length.
        len: u64,
    },
    /// A species asked for is not a column of the store.
    #[error("{}: species `{species}` is not in the store; it has {}", path.display(), present.join(", "))]
    UnknownSpecies {
        /// The store path.
        path: PathBuf,
        /// The species asked for.
        species: String,
        /// The store's species, in column order.
        present: Vec<String>,
    },
    /// A row index past the store's species.
    #[error("{}: row {row} asked for, the store has {rows} species", path.display())]
    RowOutOfRange {
        /// The store path.
        path: PathBuf,
        /// The index asked for.
        row: usize,
        /// The number of species.
        rows: usize,
    },
    /// Species names given for a store do not match its columns.
    #[error("{}: {names} species names given for {rows} columns", path.display())]
    SpeciesCount {
        /// The store path.
        path: PathBuf,
        /// Names given.
        names: usize,
        /// Columns in the store.
        rows: usize,
    },
    /// The output directory already holds something.
    #[error("{}: output exists and is not empty", path.display())]
    OutputExists {
        /// The output path.
        path: PathBuf,
    },
    /// Reading or writing a chunk failed (I/O, a corrupt or truncated chunk).
    #[error("{}: chromosome `{chrom}`: {source}", path.display())]
    Array {
        /// The store path.
        path: PathBuf,
        /// The chromosome array.
        chrom: String,
        /// The zarrs error (boxed: it is large, and errors travel in every `Result`).
        source: Box<ArrayError>,
    },
    /// The storage itself failed (I/O, an unreadable zip).
    #[error("{}: {reason}", path.display())]
    Storage {
        /// The store path.
        path: PathBuf,
        /// The underlying error, as text (zarrs' store errors differ per backend).
        reason: String,
    },
}

/// One chromosome's array.
struct Chromosome {
    array: Array<dyn ReadableListableStorageTraits>,
    len: u64,
    /// Positions per chunk.
    chunk_len: u64,
    /// What the import wrote, if the store records it.
    record: Option<Arc<ChunkRecord>>,
}

/// An open alignment store (directory or zip), ready for random-access window reads.
pub struct AlignmentStore {
    path: PathBuf,
    species: Vec<String>,
    chromosomes: BTreeMap<String, Chromosome>,
    storage: ReadableListableStorage,
}

impl std::fmt::Debug for AlignmentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignmentStore")
            .field("path", &self.path)
            .field("species", &self.species)
            .field("chromosomes", &self.chromosomes().collect::<Vec<_>>())
            .finish()
    }
}

impl AlignmentStore {
    /// Opens the store at `path`: a directory, or a zip file of one. Every chromosome's
    /// metadata is read and checked now, so later reads fail only on corrupt chunks.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let (raw, zip_crcs) = open_storage(path)?;
        let zip_crcs = Arc::new(zip_crcs);
        // Metadata is read through the zip's check; chunks through the record's too, once read.
        let storage: ReadableListableStorage =
            Arc::new(VerifiedStorage::new(raw.clone(), zip_crcs.clone(), HashMap::new()));
        let storage_error = |err: StorageError| StoreError::Storage {
            path: path.to_path_buf(),
            reason: err.to_string(),
        };
        let metadata_error = |key: &str, reason: String| StoreError::Metadata {
            path: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let get = |key: &str| -> Result<Option<zarrs::storage::Bytes>, StoreError> {
            let key = StoreKey::new(key).map_err(|err| metadata_error(key, err.to_string()))?;
            storage.get(&key).map_err(storage_error)
        };
        let not_a_store = |reason: &str| StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if get(".zgroup")?.is_none() {
            return Err(not_a_store(if get("zarr.json")?.is_some() {
                "it is zarr v3; GPN-MSA stores are zarr v2"
            } else {
                "no `.zgroup` at its root"
            }));
        }
        let listing = storage.list_dir(&StorePrefix::root()).map_err(storage_error)?;
        let mut arrays = Vec::new();
        let mut width = None;
        for prefix in listing.prefixes() {
            let chrom = prefix.as_str().trim_end_matches('/');
            let key = format!("{chrom}/.zarray");
            let Some(text) = get(&key)? else {
                continue; // a subgroup or stray folder, not a chromosome array
            };
            let (len, columns, metadata) =
                layout::parse_array_json(&text).map_err(|reason| metadata_error(&key, reason))?;
            if *width.get_or_insert(columns) != columns {
                return Err(metadata_error(
                    &key,
                    format!("{columns} species columns, other chromosomes have {width:?}"),
                ));
            }
            let attributes = format!("{chrom}/.zattrs");
            let record = match get(&attributes)? {
                Some(text) => ChunkRecord::from_attributes(&text)
                    .map_err(|reason| metadata_error(&attributes, reason))?
                    .map(Arc::new),
                None => None,
            };
            arrays.push((chrom.to_string(), len, metadata, record));
        }
        let unrecorded: Vec<&str> = arrays
            .iter()
            .filter(|(_, _, _, record)| record.is_none())
            .map(|(chrom, ..)| chrom.as_str())
            .collect();
        if !unrecorded.is_empty() {
            let which = if unrecorded.len() == arrays.len() {
                "any chromosome".to_string()
            } else {
                unrecorded.join(", ")
            };
            let unchecked = if zip_crcs.is_empty() {
                "a damaged or deleted chunk there cannot be detected"
            } else {
                "only the zip's CRC32s check them, and a deleted chunk reads as gaps"
            };
            tracing::info!(
                "{}: no record of the chunks written for {which} (a store not written by this version's import-maf): {unchecked}",
                path.display()
            );
        }
        let records: HashMap<String, Arc<ChunkRecord>> = arrays
            .iter()
            .filter_map(|(chrom, _, _, record)| Some((chrom.clone(), record.clone()?)))
            .collect();
        let verified: ReadableListableStorage = Arc::new(VerifiedStorage::new(raw, zip_crcs, records));
        let mut chromosomes = BTreeMap::new();
        for (chrom, len, metadata, record) in arrays {
            let chunk_len = metadata.chunks[0].get();
            let array = Array::new_with_metadata(verified.clone(), &format!("/{chrom}"), ArrayMetadata::V2(metadata))
                .map_err(|err| metadata_error(&format!("{chrom}/.zarray"), err.to_string()))?;
            chromosomes.insert(
                chrom,
                Chromosome {
                    array,
                    len,
                    chunk_len,
                    record,
                },
            );
        }
        let Some(width) = width else {
            return Err(not_a_store("no chromosome arrays"));
        };
        let species = match get(".zattrs")? {
            Some(text) => layout::parse_species(&text).map_err(|reason| metadata_error(".zattrs", reason))?,
            None => None,
        };
        let store = AlignmentStore {
            path: path.to_path_buf(),
            species: (0..width).map(|column| column.to_string()).collect(),
            chromosomes,
            storage,
        };
        match species {
            Some(names) => store.with_species(names),
            None => Ok(store),
        }
    }

    /// Names the species columns, in order: for GPN-MSA stores, the reference then the lines of
    /// its species file (`89.txt`).
    pub fn with_species(mut self, names: Vec<String>) -> Result<Self, StoreError> {
        if names.len() != self.species.len() {
            return Err(StoreError::SpeciesCount {
                path: self.path,
                names: names.len(),
                rows: self.species.len(),
            });
        }
        self.species = names;
        Ok(self)
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Species in column order; the first is the reference (target).
    pub fn species(&self) -> &[String] {
        &self.species
    }

    /// Chromosomes and their lengths, sorted by name.
    pub fn chromosomes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.chromosomes.iter().map(|(name, chrom)| (name.as_str(), chrom.len))
    }

    /// Per chromosome, the stretches its stored chunks cover, merged: the chunks the import
    /// recorded, or else those listed. A chunk never written reads as gaps (the fill value), so
    /// no window outside them holds a base; neither costs a read of the chunks.
    pub fn stored_stretches(&self) -> Result<Vec<Region>, StoreError> {
        let mut stretches: Vec<Region> = Vec::new();
        for (name, chrom) in &self.chromosomes {
            let chunks: Vec<(u64, u64)> = match &chrom.record {
                Some(record) => record.written().collect(),
                None => self
                    .listed_chunks(name)?
                    .into_iter()
                    .map(|chunk| (chunk, chunk + 1))
                    .collect(),
            };
            for (first, end) in chunks {
                let start = first * chrom.chunk_len;
                let end = (end * chrom.chunk_len).min(chrom.len);
                match stretches.last_mut() {
                    Some(last) if last.chrom == *name && last.end == start => last.end = end,
                    _ => stretches.push(Region {
                        chrom: name.clone(),
                        start,
                        end,
                    }),
                }
            }
        }
        Ok(stretches)
    }

    /// The indices of the chunks stored for chromosome `name`, ascending.
    fn listed_chunks(&self, name: &str) -> Result<Vec<u64>, StoreError> {
        let storage_error = |reason: String| StoreError::Storage {
            path: self.path.clone(),
            reason,
        };
        let prefix = StorePrefix::new(format!("{name}/")).map_err(|err| storage_error(err.to_string()))?;
        let keys = self
            .storage
            .list_prefix(&prefix)
            .map_err(|err| storage_error(err.to_string()))?;
        // Chunk keys are `i.0` (or `i/0`); `.zarray` and `.zattrs` parse as no chunk.
        let mut chunks: Vec<u64> = keys
            .iter()
            .filter_map(|key| {
                key.as_str()
                    .strip_prefix(prefix.as_str())?
                    .split(['.', '/'])
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        Ok(chunks)
    }

    /// Column indices of a window's rows: the target (column 0) first, then `species` in order
    /// (the target again is skipped, as in the MAF projection), or every column for `None`.
    pub fn rows(&self, species: Option<&[String]>) -> Result<Vec<usize>, StoreError> {
        let Some(list) = species else {
            return Ok((0..self.species.len()).collect());
        };
        let mut rows = vec![0];
        for name in list {
            let row =
                self.species
                    .iter()
                    .position(|known| known == name)
                    .ok_or_else(|| StoreError::UnknownSpecies {
                        path: self.path.clone(),
                        species: name.clone(),
                        present: self.species.clone(),
                    })?;
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Reads `region` (on the `+` strand) for the given columns: one token row per column.
    pub fn read(&self, region: &Region, rows: &[usize]) -> Result<Vec<Vec<u8>>, StoreError> {
        let chrom = self.chromosome(region)?;
        if let Some(&row) = rows.iter().find(|&&row| row >= self.species.len()) {
            return Err(StoreError::RowOutOfRange {
                path: self.path.clone(),
                row,
                rows: self.species.len(),
            });
        }
        let width = self.species.len();
        let columns: Range<u64> = 0..width as u64;
        let subset = ArraySubset::new_with_ranges(&[region.start..region.end, columns]);
        // Position-major bytes, [L, species], as the chunks hold them.
        let bytes: Vec<u8> = chrom
            .array
            .retrieve_array_subset(&subset)
            .map_err(|source| StoreError::Array {
                path: self.path.clone(),
                chrom: region.chrom.clone(),
                source: Box::new(source),
            })?;
        Ok(rows
            .iter()
            .map(|&row| {
                bytes
                    .iter()
                    .skip(row)
                    .step_by(width)
                    .map(|&byte| alphabet::token_of(byte))
                    .collect()
            })
            .collect())
    }

    /// The window for `region`: target first, then `species` (all columns for `None`), every
    /// row reverse-complemented for [`Strand::Reverse`]; equal to the MAF projection of the
    /// alignment the store was imported from.
    pub fn window(&self, region: &Region, species: Option<&[String]>, strand: Strand) -> Result<MsaWindow, StoreError> {
        let rows = self.rows(species)?;
        let mut tokens = self.read(region, &rows)?;
        if strand == Strand::Reverse {
            tokens.iter_mut().for_each(|row| alphabet::reverse_complement(row));
        }
        Ok(MsaWindow {
            species: rows.iter().map(|&row| self.species[row].clone()).collect(),
            rows: tokens,
            chrom: region.chrom.clone(),
            start: region.start,
            end: region.end,
            strand,
        })
    }

    /// The chromosome of `region`, once the region is checked to lie inside it.
    fn chromosome(&self, region: &Region) -> Result<&Chromosome, StoreError> {
        let chrom = self
            .chromosomes
            .get(&region.chrom)
            .ok_or_else(|| StoreError::UnknownChromosome {
                path: self.path.clone(),
                chrom: region.chrom.clone(),
                available: self.chromosomes.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        if region.start > region.end || region.end > chrom.len {
            return Err(StoreError::OutsideChromosome {
                path: self.path.clone(),
                region: region.clone(),
                len: chrom.len,
            });
        }
        Ok(chrom)
    }
}

/// Opens a directory store, or a zip file through zarrs' zip adapter; for a zip, also the CRC32
/// its directory gives each file, by store key.
fn open_storage(path: &Path) -> Result<(ReadableListableStorage, HashMap<String, u32>), StoreError> {
    let storage_error = |reason: String| StoreError::Storage {
        path: path.to_path_buf(),
        reason,
    };
    if path.is_dir() {
        let store = FilesystemStore::new(path).map_err(|err| storage_error(err.to_string()))?;
        return Ok((Arc::new(store), HashMap::new()));
    }
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(storage_error("cannot name the zip file".into()));
    };
    // An empty parent means the current directory.
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let folder = Arc::new(FilesystemStore::new(parent).map_err(|err| storage_error(err.to_string()))?);
    let key = StoreKey::new(name).map_err(|err| storage_error(err.to_string()))?;
    let zip = ZipStorageAdapter::new(folder.clone(), key.clone())
        .map_err(|err| storage_error(format!("cannot read as zip: {err}")))?;
    let crcs = |prefix: &str| {
        zip_directory::entry_crcs(path, prefix).map_err(|err| storage_error(format!("cannot read as zip: {err}")))
    };
    // `zip -r x.zip x.zarr` puts every entry under `x.zarr/`: look there when the root has no
    // group but exactly one folder.
    let root_group = StoreKey::new(".zgroup").map_err(|err| storage_error(err.to_string()))?;
    if zip
        .get(&root_group)
        .map_err(|err| storage_error(err.to_string()))?
        .is_none()
    {
        let listing = zip
            .list_dir(&StorePrefix::root())
            .map_err(|err| storage_error(err.to_string()))?;
        if let ([folder_prefix], []) = (&listing.prefixes()[..], &listing.keys()[..]) {
            let inner = ZipStorageAdapter::new_with_path(folder, key, folder_prefix.as_str())
                .map_err(|err| storage_error(format!("cannot read as zip: {err}")))?;
            return Ok((Arc::new(inner), crcs(folder_prefix.as_str())?));
        }
    }
    Ok((Arc::new(zip), crcs("")?))
}
