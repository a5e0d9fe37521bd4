//! Subcommands, as users of samtools and bcftools expect them.

mod embed;
mod evaluate;
mod finetune;
mod import_maf;
mod logging;
mod plot_losses;
mod pretrain;
mod score;
mod source_args;
mod window;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// MSAMamba: a DNA language model over multiple sequence alignments.
#[derive(Parser, Debug)]
#[command(name = "msamamba", version, about)]
pub struct Cli {
    /// More messages (`-vv`: more still).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Fewer messages: warnings only, no progress bars (`-qq`: only the error line, if any).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,
    /// How the GPU backends allocate memory: `exact` gives each buffer its own allocation and
    /// returns unused ones before each training step, so the card holds about what is in use;
    /// `pool` is cubecl's pool of large pages, which it keeps.
    #[arg(long, global = true, value_enum, default_value_t = msamamba_train::gpu_memory::GpuMemory::Exact)]
    gpu_memory: msamamba_train::gpu_memory::GpuMemory,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print an alignment window as FASTA, one record per row (target first).
    Window(window::WindowArgs),
    /// Import MAF alignments into a store (GPN-MSA's zarr layout) for fast random access.
    ImportMaf(import_maf::ImportMafArgs),
    /// Masked-language-model pre-training; with no arguments, a short demo run on the bundled
    /// 30-species mouse alignment.
    Pretrain(Box<pretrain::PretrainArgs>),
    /// Zero-shot variant effects: logit(alt) - logit(ref) at the masked site, both strands.
    Score(score::ScoreArgs),
    /// Per-position target-row embeddings of regions, streamed into a zarr store.
    Embed(embed::EmbedArgs),
    /// Fine-tune a pre-trained model as a classifier of labelled regions; reports AUROC, AUPRC
    /// and accuracy on a held-out test split.
    Finetune(Box<finetune::FinetuneArgs>),
    /// Evaluate a fine-tuned classifier on a table of labelled regions.
    Evaluate(evaluate::EvaluateArgs),
    /// Draw the loss curves of several runs in one chart.
    PlotLosses(plot_losses::PlotLossesArgs),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<()> {
    logging::init(cli.verbose, cli.quiet);
    msamamba_train::gpu_memory::configure(cli.gpu_memory);
    match cli.command {
        Command::Window(args) => window::run(args),
        Command::ImportMaf(args) => import_maf::run(args),
        Command::Pretrain(args) => pretrain::run(*args),
        Command::Score(args) => score::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Finetune(args) => finetune::run(*args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::PlotLosses(args) => plot_losses::run(args),
    }
}

/// Warns that `n` rows were dropped from their blocks because their species had a row there
/// already: the rule `window` and `import-maf` share.
fn warn_duplicate_rows(n: u64) {
    if n > 0 {
        tracing::warn!("{n} row(s) of a species that already had a row in their block dropped (the first row wins)");
    }
}

/// One name of a comma-separated `--species` list, without the spaces around it (`"rn4, hg18"`
/// names `hg18`, not ` hg18`); an empty name is an error.
fn species_name(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("an empty species name (two commas in a row, or a trailing comma?)".into()),
        name => Ok(name.to_string()),
    }
}

/// A count flag that must be at least 1 (clap's range parser does not take `usize`).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}

/// A resumed run continues the schedule and data order it started with: refuses flags (or a
/// --config) that change its saved config (`saved` against `asked`, the saved config with the
/// flags applied), naming them.
fn refuse_changes<C: serde::Serialize>(saved: &C, asked: &C, path: &std::path::Path) -> anyhow::Result<()> {
    use serde_json::Value;
    fn differences(saved: &Value, asked: &Value, key: &str, out: &mut Vec<String>) {
        match (saved, asked) {
            (Value::Object(saved), Value::Object(asked)) => {
                for (key, value) in asked {
                    differences(saved.get(key).unwrap_or(&Value::Null), value, key, out);
                }
            }
            _ if saved != asked => out.push(format!("--{} {asked} (the run has {saved})", key.replace('_', "-"))),
            _ => {}
        }
    }
    let mut changed = Vec::new();
    differences(
        &serde_json::to_value(saved)?,
        &serde_json::to_value(asked)?,
        "",
        &mut changed,
    );
    if !changed.is_empty() {
        anyhow::bail!(
            "--resume continues the run as {} has it; these flags change it: {}; start a new --out to train otherwise",
            path.display(),
            changed.join(", ")
        );
    }
    Ok(())
}
