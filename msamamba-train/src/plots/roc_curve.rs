//! The ROC curve as PNG and SVG: true positive rate against false positive rate, over the
//! chance diagonal, the AUROC in the legend.

use std::path::Path;

use anyhow::Result;
use plotters::style::RGBColor;

use crate::plots::plot::{Plot, Series};

/// Draws the ROC `points` ((FPR, TPR), both in [0, 1], in curve order), whose area is `auroc`, to
/// `path` (PNG) and beside it as SVG.
pub fn write_roc_png(points: &[(f64, f64)], auroc: f64, path: &Path) -> Result<()> {
    let name = format!("classifier (AUROC {auroc:.3})");
    Plot {
        title: "ROC curve",
        x_label: "false positive rate",
        y_label: "true positive rate",
        x_range: 0.0..1.0,
        y_range: 0.0..1.0,
        series: vec![
            Series {
                name: "chance",
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                color: RGBColor(160, 160, 160),
            },
            Series {
                name: &name,
                points: points.to_vec(),
                color: RGBColor(31, 119, 180),
            },
        ],
        size: (560, 520),
    }
    .save(path)
}
