//! Subcommands, as users of samtools and bcftools expect them.

mod backend;
mod evaluate;
mod finetune;
mod pretrain;
mod window;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// MSAMamba: a DNA language model over multiple sequence alignments.
#[derive(Parser, Debug)]
#[command(name = "msamamba", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print an alignment window as FASTA, one record per row (target first).
    Window(window::WindowArgs),
    /// Masked-language-model pre-training; with no arguments, a short demo run on the bundled
    /// 30-species mouse alignment.
    Pretrain(Box<pretrain::PretrainArgs>),
    /// Fine-tune a pre-trained model as a classifier of labelled regions; reports AUROC, AUPRC
    /// and accuracy on a held-out test split.
    Finetune(Box<finetune::FinetuneArgs>),
    /// Evaluate a fine-tuned classifier on a table of labelled regions.
    Evaluate(evaluate::EvaluateArgs),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Window(args) => window::run(args),
        Command::Pretrain(args) => pretrain::run(*args),
        Command::Finetune(args) => finetune::run(*args),
        Command::Evaluate(args) => evaluate::run(args),
    }
}
