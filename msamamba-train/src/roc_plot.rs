//! The ROC curve as a PNG: true positive rate (up) against false positive rate (right), the
//! curve in blue over the chance diagonal in grey, a light grid every tenth.

use std::path::Path;

use anyhow::Result;

use crate::chart::Chart;

/// Draws the ROC `points` ((FPR, TPR), both in [0, 1], in curve order) to a PNG at `path`.
pub fn write_roc_png(points: &[(f64, f64)], path: &Path) -> Result<()> {
    let mut chart = Chart::new(500, 500, 40);
    chart.line((0.0, 0.0), (1.0, 1.0), [160, 160, 160], false);
    chart.polyline(points, [31, 119, 180]);
    chart.save(path)
}
