//! `msamamba embed`: per-position target-row embeddings of regions, streamed into a zarr store.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};
use msamamba_kernels::KernelBackend;
use msamamba_train::data::bed::{BedReader, no_regions};
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::infer::{Embedder, EmbeddingStore, RegionLabel};
use msamamba_train::progress;

use super::source_args::SourceArgs;
use msamamba_train::backend::{BackendChoice, OnBackend, dispatch};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// A pre-training run directory (`msamamba pretrain --out`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Region, samtools style (CHR:START-END, 1-based inclusive); repeat for several.
    #[arg(long = "region")]
    regions: Vec<String>,
    /// BED file of regions (chrom, 0-based start, end, [name, score, strand]), read as a stream:
    /// any number of regions, one in memory at a time.
    #[arg(long)]
    bed: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
    /// Output zarr (v3) store, a new directory: `regions/<k>` float32 [L, D] for the k-th region
    /// (from 0, --region ones first, then the BED's in order) with its region, strand and name
    /// as attributes; the root's attributes list the regions, the species (the model's rows,
    /// target first) and D. Written beside and renamed into place when complete.
    #[arg(long)]
    out: PathBuf,
    /// Also write `pooled` [R, D]: row k is the k-th region's embedding pooled over positions.
    #[arg(long, value_enum)]
    pool: Option<Pool>,
    /// Backend.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

/// How embeddings are pooled over positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pool {
    /// The mean of the positions' embeddings.
    Mean,
}

/// One region to embed.
struct Item {
    region: Region,
    strand: Strand,
    name: Option<String>,
}

impl Item {
    /// The region as the output names it: `chrom:start-end`, `/-` appended for the reverse strand.
    fn key(&self) -> String {
        match self.strand {
            Strand::Forward => self.region.to_string(),
            Strand::Reverse => format!("{}/-", self.region),
        }
    }
}

impl EmbedArgs {
    /// The regions of --region then --bed, one at a time.
    fn items(&self) -> Result<impl Iterator<Item = Result<Item>> + '_> {
        let given = self.regions.iter().map(|text| {
            Ok(Item {
                region: text.parse::<Region>().with_context(|| format!("--region {text}"))?,
                strand: Strand::Forward,
                name: None,
            })
        });
        let bed = self.bed.as_deref().map(BedReader::open).transpose()?;
        let from_bed = bed.into_iter().flatten().map(|line| {
            let line = line?;
            Ok(Item {
                region: line.region,
                strand: line.strand,
                name: line.name,
            })
        });
        Ok(given.chain(from_bed))
    }

    /// Reads the regions once before any work: every line is checked and the regions counted.
    /// A region given twice is refused, as its two arrays would be copies. Keeps one 64-bit hash
    /// per region, not the regions.
    fn count(&self) -> Result<u64> {
        let hasher = RandomState::new();
        let mut seen = HashSet::new();
        let mut count = 0;
        for item in self.items()? {
            let item = item?;
            if !seen.insert(hasher.hash_one(item.key())) {
                bail!(
                    "region {} is given twice (--region and --bed together, or a repeated line)",
                    item.key()
                );
            }
            count += 1;
        }
        match (count, &self.bed) {
            (0, Some(bed)) => return Err(no_regions(bed).into()),
            (0, None) => bail!("no regions: give --region CHR:START-END or --bed FILE"),
            _ => {}
        }
        Ok(count)
    }
}

pub fn run(args: EmbedArgs) -> Result<()> {
    let backend = args.backend;
    dispatch(backend, args)
}

impl OnBackend for EmbedArgs {
    type Output = ();

    fn run<B>(self, devices: Vec<B::Device>, _name: &str) -> Result<()>
    where
        B: AutodiffBackend + KernelBackend,
        B::InnerBackend: KernelBackend,
    {
        let total = self.count()?;
        let embedder =
            Embedder::<B::InnerBackend>::load(&self.checkpoint, |config| self.source.open_for(config), &devices[0])?;
        let mut store = EmbeddingStore::create(&self.out, total, embedder.width(), self.pool.is_some())?;
        let bar = progress::bar(total, "regions");
        for item in self.items()? {
            let item = item?;
            let values = embedder.embed(&item.region, item.strand)?;
            let strand = match item.strand {
                Strand::Forward => '+',
                Strand::Reverse => '-',
            };
            let label = RegionLabel {
                region: item.region.to_string(),
                strand,
                name: item.name,
            };
            store.add(label, &values)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        store.commit(embedder.species(), &self.checkpoint)?;
        tracing::info!(
            "wrote {total} embedding(s) of width {} to {}",
            embedder.width(),
            self.out.display()
        );
        Ok(())
    }
}
