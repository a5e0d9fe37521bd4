use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use msamamba_train::data::import::import_maf;

#[derive(Args, Debug)]
pub struct ImportMafArgs {
    /// MAF files (plain, gzip or bgzip), each sorted by target position.
    #[arg(long, num_args = 1.., required = true)]
    maf: Vec<PathBuf>,
    /// Target species: its chromosomes become the store's arrays.
    #[arg(long)]
    target: String,
    /// Rows after the target, comma-separated (default: every species, in file order).
    #[arg(long, value_delimiter = ',', value_parser = super::species_name)]
    species: Option<Vec<String>>,
    /// FASTA of the target genome: its bases fill the target column everywhere.
    #[arg(long)]
    fasta: Option<PathBuf>,
    /// Output store directory (GPN-MSA zarr layout); must not exist or be empty.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: ImportMafArgs) -> Result<()> {
    let summary = import_maf(
        &args.maf,
        &args.target,
        args.species.as_deref(),
        args.fasta.as_deref(),
        &args.out,
    )?;
    for (chrom, len) in &summary.chromosomes {
        println!("{chrom}\t{len}");
    }
    tracing::info!(
        "wrote {} ({} chromosome(s), {} species, {} blocks, {} aligned positions{})",
        args.out.display(),
        summary.chromosomes.len(),
        summary.species.len(),
        summary.blocks,
        summary.covered,
        match summary.covered_twice {
            0 => String::new(),
            n => format!("; {n} aligned twice, first block kept"),
        }
    );
    super::warn_duplicate_rows(summary.duplicate_rows);
    Ok(())
}
