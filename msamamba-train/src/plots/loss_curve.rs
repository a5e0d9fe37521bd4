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

/// Draws train (smoothed) and validation loss against the step, to `path` (PNG) and beside it
/// as SVG; the axes start at step 0 and loss 0.
pub fn write_png(train: &[(f64, f64)], valid: &[(f64, f64)], path: &Path) -> Result<()> {
    let all = train.iter().chain(valid);
    let max_x = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let max_y = all.map(|p| p.1).fold(1e-9, f64::max) * 1.05;
    Plot {
        title: "Masked-token loss",
        x_label: "step",
        y_label: "cross-entropy loss",
        x_range: 0.0..max_x,
        y_range: 0.0..max_y,
        series: vec![
            Series {
                name: "train (moving average)",
                points: smooth(train, 0.9),
                color: RGBColor(31, 119, 180),
            },
            Series {
                name: "validation",
                points: valid.to_vec(),
                color: RGBColor(214, 39, 40),
            },
        ],
        size: (800, 500),
    }
    .save(path)
}
