//! The loss curve as a PNG: training loss (smoothed, blue) and validation loss (red) per step.

use std::path::Path;

use anyhow::{Context, Result};

use crate::chart::Chart;

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

/// Draws train (blue, smoothed) and validation (red) loss against the step; the axes start at
/// step 0 and loss 0.
pub fn write_png(train: &[(f64, f64)], valid: &[(f64, f64)], path: &Path) -> Result<()> {
    let all = train.iter().chain(valid);
    let max_x = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let max_y = all.map(|p| p.1).fold(1e-9, f64::max) * 1.05;
    let scale = |points: &[(f64, f64)]| points.iter().map(|&(x, y)| (x / max_x, y / max_y)).collect::<Vec<_>>();
    let mut chart = Chart::new(800, 500, 40);
    chart.polyline(&scale(&smooth(train, 0.9)), [31, 119, 180]);
    chart.polyline(&scale(valid), [214, 39, 40]);
    chart.save(path)
}
