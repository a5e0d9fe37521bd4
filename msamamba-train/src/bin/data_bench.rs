//! `cargo xtask bench data`: how fast alignments come in. MAF parsing (MB/s, one core), windows
//! from a store imported from it (with and without checking each chunk's CRC32), and MLM batches
//! from the in-memory projection (windows/s).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::backend::NdArray;
use burn::data::dataloader::batcher::Batcher;
use msamamba_train::data::alignment::Alignment;
use msamamba_train::data::import::import_maf;
use msamamba_train::data::maf::{MafReader, Strand};
use msamamba_train::data::region::Region;
use msamamba_train::data::span::coverage;
use msamamba_train::data::store::AlignmentStore;
use msamamba_train::windows::mlm_batch::{MsaBatch, MsaBatcher, MsaBatcherConfig};
use msamamba_train::windows::tiling::MsaItem;
use rand::{Rng, SeedableRng, rngs::StdRng};

const WINDOW: u64 = 128;

fn main() -> Result<()> {
    let maf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/maf/ucsc_mm9_chr10_big.maf");
    let bytes = std::fs::metadata(&maf)
        .with_context(|| maf.display().to_string())?
        .len() as f64;
    println!("input: {} ({:.1} MB, target mm9)", maf.display(), bytes / 1e6);

    let mut best = f64::INFINITY;
    let mut blocks = 0;
    for _ in 0..5 {
        let clock = Instant::now();
        blocks = MafReader::open(&maf)?
            .map(|b| b.map(|_| ()))
            .collect::<Result<Vec<()>, _>>()?
            .len();
        best = best.min(clock.elapsed().as_secs_f64());
    }
    println!(
        "MAF parse: {blocks} blocks, {:.0} MB/s (best of 5, one core)",
        bytes / 1e6 / best
    );

    let store_dir = std::env::temp_dir().join(format!("msamamba-data-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store_dir);
    let clock = Instant::now();
    import_maf(std::slice::from_ref(&maf), "mm9", None, None, &store_dir)?;
    println!("import-maf: {:.2} s", clock.elapsed().as_secs_f64());

    let span = coverage(&maf, "mm9")?
        .spans
        .into_iter()
        .next()
        .context("mm9 has no aligned bases")?;
    let region_at = |rng: &mut StdRng| {
        let start = rng.random_range(span.start..span.end - WINDOW);
        Region {
            chrom: span.chrom.clone(),
            start,
            end: start + WINDOW,
        }
    };
    // The same windows with and without the check of each chunk against the import's CRC32s:
    // the second time the store's record is removed, as in a store written without one.
    let windows_per_s = || -> Result<(f64, usize)> {
        let store = AlignmentStore::open(&store_dir)?;
        let mut rng = StdRng::seed_from_u64(7);
        let reads = 20_000;
        let clock = Instant::now();
        for _ in 0..reads {
            store.window(&region_at(&mut rng), None, Strand::Forward)?;
        }
        Ok((reads as f64 / clock.elapsed().as_secs_f64(), store.species().len()))
    };
    let (checked, species) = windows_per_s()?;
    std::fs::write(store_dir.join(&span.chrom).join(".zattrs"), "{}")?;
    let (unchecked, _) = windows_per_s()?;
    println!(
        "store windows: {checked:.0} windows/s with each chunk's CRC32 checked, {unchecked:.0} without ({WINDOW} bp x {species} species, random positions)"
    );
    std::fs::remove_dir_all(&store_dir).ok();

    let alignment = Alignment::from_maf(&maf, "mm9", None, None)?;
    let species = alignment.species().len();
    let batcher = MsaBatcher::new(MsaBatcherConfig::new(species));
    let mut rng = StdRng::seed_from_u64(7);
    let batches = 200;
    let clock = Instant::now();
    for b in 0..batches {
        let items: Vec<MsaItem> = (0..16)
            .map(|i| MsaItem {
                rows: alignment
                    .window(&region_at(&mut rng))
                    .map(|w| w.rows)
                    .unwrap_or_default(),
                seed: (b * 16 + i) as u64,
            })
            .collect();
        let _: MsaBatch<NdArray> = batcher.batch(items, &Default::default());
    }
    let rate = (batches * 16) as f64 / clock.elapsed().as_secs_f64();
    println!("MLM batches: {rate:.0} windows/s (16 x {species} x {WINDOW}, masking and row sampling included)");
    Ok(())
}
