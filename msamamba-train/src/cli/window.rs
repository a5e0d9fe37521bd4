use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use msamamba_train::data::maf::Strand;
use msamamba_train::data::region::Region;
use msamamba_train::data::store::AlignmentStore;
use msamamba_train::data::window::{MsaWindow, WindowRequest, project};

#[derive(Args, Debug)]
pub struct WindowArgs {
    /// MAF alignment (plain, gzip or bgzip).
    #[arg(
        long,
        required_unless_present = "store",
        conflicts_with = "store",
        requires = "target"
    )]
    maf: Option<PathBuf>,
    /// Alignment store written by `msamamba import-maf` or GPN-MSA (directory or zip).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Target species (the part of a MAF src before the first `.`).
    #[arg(long)]
    target: Option<String>,
    /// Region on the target, samtools style: CHR:START-END, 1-based, inclusive.
    #[arg(long)]
    region: String,
    /// Rows after the target, comma-separated (default: every species, in file order).
    #[arg(long, value_delimiter = ',')]
    species: Option<Vec<String>>,
    /// FASTA with the target's sequence: its bases fill the target row everywhere.
    #[arg(long)]
    fasta: Option<PathBuf>,
    /// Strand: `-` reverse-complements every row.
    #[arg(long, default_value = "+", value_parser = ["+", "-"])]
    strand: String,
}

pub fn run(args: WindowArgs) -> Result<()> {
    let region: Region = args
        .region
        .parse()
        .with_context(|| format!("--region {}", args.region))?;
    let strand = if args.strand == "-" {
        Strand::Reverse
    } else {
        Strand::Forward
    };
    let (Some(maf), Some(target)) = (&args.maf, &args.target) else {
        let store = args
            .store
            .as_deref()
            .context("give --maf F --target SP or --store DIR")?;
        let window = AlignmentStore::open(store)?.window(&region, args.species.as_deref(), strand)?;
        return write(&window);
    };
    let projection = project(&WindowRequest {
        maf,
        target,
        region: &region,
        species: args.species.as_deref(),
        fasta: args.fasta.as_deref(),
        strand,
    })?;
    if projection.covered_twice > 0 {
        eprintln!(
            "msamamba: warning: {} position(s) aligned by more than one block; the first block was used",
            projection.covered_twice
        );
    }
    write(&projection.window)
}

fn write(window: &MsaWindow) -> Result<()> {
    let mut out = std::io::stdout().lock();
    window.write_fasta(&mut out).context("writing to stdout")?;
    out.flush().context("writing to stdout")
}
