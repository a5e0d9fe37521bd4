//! The loss curve as PNG and SVG: training loss (smoothed, blue) and validation loss (red) per
//! step.

use std::path::Path;

use anyhow::{Context, Result};

use plotters::style::RGBColor;

use crate::plots::plot::{Plot, Series};

/// Reads a `step\tloss\t...` TSV written by the metrics log.
pub fn read_losses(path: &Path) -> Result<Vec<(f64, f64)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let step = fields.next()?.parse().ok()?;
            let loss: f64 = fields.next()?.parse().ok()?;
            loss.is_finite().then_some((step, loss))
        })
        .collect())
}

/// Exponential moving average, to see the trend through batch noise.
fn smooth(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let mut avg = None;
    points
        .iter()
        .map(|&(x, y)| {
            let v = avg.map_or(y, |a: f64| weight * a + (1.0 - weight) * y);
            avg = Some(v);
            (x, v)
        })
        .collect()
}

/// One run's losses, named as its curves are in the legend.
pub struct RunLosses {
    /// The run's name; empty for a chart of one run.
    pub name: String,
    /// Training loss per step.
    pub train: Vec<(f64, f64)>,
    /// Validation loss per step.
    pub valid: Vec<(f64, f64)>,
}

impl RunLosses {
    /// The `train.tsv` and `valid.tsv` of run directory `dir`.
    pub fn read(name: &str, dir: &Path) -> Result<Self> {
        Ok(Self {
            name: name.to_string(),
            train: read_losses(&dir.join("train.tsv"))?,
            valid: read_losses(&dir.join("valid.tsv"))?,
        })
    }
}

/// (train, validation) colours of the runs in turn; one run gets the first pair.
const COLORS: [(RGBColor, RGBColor); 4] = [
    (RGBColor(31, 119, 180), RGBColor(214, 39, 40)),
    (RGBColor(44, 160, 44), RGBColor(255, 127, 14)),
    (RGBColor(148, 103, 189), RGBColor(140, 86, 75)),
    (RGBColor(23, 190, 207), RGBColor(227, 119, 194)),
];

/// Draws each run's train (smoothed) and validation loss against the step, to `path` (PNG) and
/// beside it as SVG; the axes start at step 0 and loss 0. More runs than colours is an error.
pub fn write_png(runs: &[RunLosses], path: &Path) -> Result<()> {
    anyhow::ensure!(
        runs.len() <= COLORS.len(),
        "at most {} runs fit one loss chart, got {}",
        COLORS.len(),
        runs.len()
    );
    let all = runs.iter().flat_map(|r| r.train.iter().chain(&r.valid));
    let max_x = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let max_y = all.map(|p| p.1).fold(1e-9, f64::max) * 1.05;
    let prefix = |run: &RunLosses| {
        if run.name.is_empty() {
            String::new()
        } else {
            format!("{}: ", run.name)
        }
    };
    let names: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            (
                format!("{}train (moving average)", prefix(r)),
                format!("{}validation", prefix(r)),
            )
        })
        .collect();
    let series = runs
        .iter()
        .zip(&names)
        .zip(COLORS)
        .flat_map(|((run, (train, valid)), (train_color, valid_color))| {
            [
                Series {
                    name: train,
                    points: smooth(&run.train, 0.9),
                    color: train_color,
                },
                Series {
                    name: valid,
                    points: run.valid.clone(),
                    color: valid_color,
                },
            ]
        })
        .collect();
    Plot {
        title: "Masked-token loss",
        x_label: "step",
        y_label: "cross-entropy loss",
        x_range: 0.0..max_x,
        y_range: 0.0..max_y,
        series,
        size: (800, 500),
    }
    .save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, scale: f64) -> RunLosses {
        RunLosses {
            name: name.to_string(),
            train: (1..=50).map(|s| (s as f64, scale * 2.0 / s as f64)).collect(),
            valid: vec![(25.0, scale * 0.2), (50.0, scale * 0.1)],
        }
    }

    #[test]
    fn several_runs_share_one_chart_each_named_in_the_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("losses.png");
        write_png(&[run("bf16", 1.0), run("fp32", 1.1)], &path).unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
        let svg = std::fs::read_to_string(path.with_extension("svg")).unwrap();
        for name in [
            "bf16: train (moving average)",
            "bf16: validation",
            "fp32: train (moving average)",
            "fp32: validation",
        ] {
            assert!(svg.contains(name), "{name} missing from the legend");
        }
        let err = write_png(
            &[
                run("a", 1.0),
                run("b", 1.0),
                run("c", 1.0),
                run("d", 1.0),
                run("e", 1.0),
            ],
            &path,
        );
        assert!(err.unwrap_err().to_string().contains("at most 4 runs"));
    }
}
