//! Every `msamamba` command of README.md's `sh` code blocks, run as written, in order, on the
//! bundled data: the README's examples cannot rot. They run through `sh` (pipes and redirects
//! included) in a scratch directory holding a link to `data/`, with this build's binary first on
//! the PATH.

use std::path::Path;
use std::process::Command;

use msamamba_tests::*;

/// The commands of the `sh` blocks of `markdown` that run `msamamba`, continuation lines joined.
fn commands(markdown: &str) -> Vec<String> {
    let (mut commands, mut in_sh, mut current) = (Vec::new(), false, String::new());
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let piece = line.trim();
        if let Some(head) = piece.strip_suffix('\\') {
            current.push_str(head.trim_end());
            current.push(' ');
            continue;
        }
        current.push_str(piece);
        let command = std::mem::take(&mut current);
        let trimmed = command.trim();
        if trimmed.starts_with("msamamba ") || trimmed.contains("| msamamba ") {
            commands.push(trimmed.to_string());
        }
    }
    commands
}

#[test]
fn every_readme_command_runs_on_the_bundled_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands = commands(&readme);
    for subcommand in [
        "window",
        "import-maf",
        "pretrain",
        "finetune",
        "evaluate",
        "score",
        "embed",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(&format!("msamamba {subcommand} "))),
            "README shows no runnable `msamamba {subcommand}`"
        );
    }
    let dir = scratch("readme");
    std::os::unix::fs::symlink(root.join("data").canonicalize().unwrap(), dir.join("data")).unwrap();
    let bin = msamamba().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    for command in &commands {
        let out = Command::new("sh")
            .args(["-c", &format!("set -e; {command}")])
            .current_dir(&dir)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}\n{}", stderr(&out));
    }
    // What the walkthrough's commands promise to leave behind.
    for file in [
        "mm9.zarr",
        "run/loss_curve.svg",
        "ft/roc.svg",
        "scored.vcf.gz.tbi",
        "shard1.tsv",
        "scores.tsv",
        "scores.parquet",
        "emb.zarr/pooled",
    ] {
        assert!(dir.join(file).exists(), "no {file}");
    }
}

#[test]
fn continuation_lines_join_and_only_msamamba_commands_of_sh_blocks_count() {
    let markdown = "```sh\n# comment\nmsamamba a \\\n    --b c\ncargo run\ncat x | msamamba d > y\n```\n\n```text\nmsamamba e\n```\n";
    assert_eq!(commands(markdown), ["msamamba a --b c", "cat x | msamamba d > y"]);
}
