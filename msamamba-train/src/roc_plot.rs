//! The ROC curve as a PNG: true positive rate (up) against false positive rate (right), the
//! curve in blue over the chance diagonal in grey, a light grid every tenth.

use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};

/// Draws the ROC `points` ((FPR, TPR), both in [0, 1], in curve order) to a PNG at `path`.
pub fn write_roc_png(points: &[(f64, f64)], path: &Path) -> Result<()> {
    const SIZE: usize = 500;
    const PAD: usize = 40;
    const SPAN: f64 = (SIZE - 2 * PAD) as f64;
    let mut pixels = vec![255u8; SIZE * SIZE * 3];
    let to_px = |(x, y): (f64, f64)| (PAD as f64 + x * SPAN, (SIZE - PAD) as f64 - y * SPAN);
    let mut plot = |x: f64, y: f64, color: [u8; 3]| {
        let (x, y) = (x.round() as isize, y.round() as isize);
        if (0..SIZE as isize).contains(&x) && (0..SIZE as isize).contains(&y) {
            let i = (y as usize * SIZE + x as usize) * 3;
            pixels[i..i + 3].copy_from_slice(&color);
        }
    };
    for k in 0..=10 {
        let g = PAD as f64 + k as f64 / 10.0 * SPAN;
        // The axes (left and bottom) in black, the rest of the grid light grey.
        let vertical = if k == 0 { [0, 0, 0] } else { [225, 225, 225] };
        let horizontal = if k == 10 { [0, 0, 0] } else { [225, 225, 225] };
        for t in PAD..=SIZE - PAD {
            plot(t as f64, g, horizontal);
            plot(g, t as f64, vertical);
        }
    }
    let mut line = |a: (f64, f64), b: (f64, f64), color: [u8; 3], thick: bool| {
        let (a, b) = (to_px(a), to_px(b));
        let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            plot(x, y, color);
            if thick {
                plot(x + 1.0, y, color);
                plot(x, y - 1.0, color);
            }
        }
    };
    line((0.0, 0.0), (1.0, 1.0), [160, 160, 160], false);
    for pair in points.windows(2) {
        line(pair[0], pair[1], [31, 119, 180], true);
    }
    let file = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), SIZE as u32, SIZE as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()?
        .write_image_data(&pixels)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
