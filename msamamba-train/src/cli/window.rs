use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use msamamba_train::data::maf::Strand;
use msamamba_train::data::projection::{MsaWindow, WindowRequest, project};
use msamamba_train::data::region::Region;
use msamamba_train::data::store::AlignmentStore;

use super::source_args::SourceArgs;

#[derive(Args, Debug)]
pub struct WindowArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Region on the target, samtools style: CHR:START-END, 1-based, inclusive.
    #[arg(long)]
    region: String,
    /// Rows after the target, comma-separated (default: every species, in file order).
    #[arg(long, value_delimiter = ',', value_parser = super::species_name)]
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
    let Some(maf) = &args.source.check()?.maf else {
        let store = args
            .source
            .store
            .as_deref()
            .context("give --maf F --target SP or --store DIR")?;
        let window = AlignmentStore::open(store)?.window(&region, args.species.as_deref(), strand)?;
        return write(&window);
    };
    let target = args
        .source
        .target
        .as_ref()
        .context("--maf needs --target (the species of --region)")?;
    let projection = project(&WindowRequest {
        maf,
        target,
        region: &region,
        species: args.species.as_deref(),
        fasta: args.fasta.as_deref(),
        strand,
    })?;
    if projection.covered_twice > 0 {
        tracing::warn!(
            "{} position(s) aligned by more than one block; the first block was used",
            projection.covered_twice
        );
    }
    super::warn_duplicate_rows(projection.duplicate_rows);
    if let (Some(fasta), n @ 1..) = (&args.fasta, projection.fasta_disagrees) {
        tracing::warn!(
            "{}: {n} of the target's aligned bases differ from the MAF's target row; the FASTA's are written",
            fasta.display()
        );
    }
    write(&projection.window)
}

fn write(window: &MsaWindow) -> Result<()> {
    let mut out = std::io::stdout().lock();
    window.write_fasta(&mut out).context("writing to stdout")?;
    out.flush().context("writing to stdout")
}
