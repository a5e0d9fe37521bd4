//! `msamamba`: train, inspect and apply MSAMamba from the command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes, outermost first.
            eprintln!("msamamba: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
