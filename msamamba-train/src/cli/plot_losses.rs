//! `msamamba plot-losses`: the loss curves of several runs in one chart, to compare settings
//! (precision, learning rate, row sampling) at a glance.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use msamamba_train::plots::loss_curve::{RunLosses, write_png};

#[derive(Args, Debug)]
pub struct PlotLossesArgs {
    /// Run directories (`pretrain` or `finetune` --out), up to four; each is named by its folder.
    #[arg(required = true, num_args = 1..=4)]
    runs: Vec<PathBuf>,
    /// The chart: a PNG, with an SVG beside it.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: PlotLossesArgs) -> Result<()> {
    let runs = args
        .runs
        .iter()
        .map(|dir| {
            let name = dir
                .canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| dir.display().to_string());
            RunLosses::read(&name, dir).with_context(|| format!("run {}", dir.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    write_png(&runs, &args.out)?;
    eprintln!("loss curves: {}", args.out.display());
    Ok(())
}
