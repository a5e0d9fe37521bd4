//! The loss curve as a PNG: training loss (smoothed, blue) and validation loss (red) per step.

use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};

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

/// Draws train (blue) and validation (red) loss against the step, with a light grid every
/// tenth of each axis; the axes start at step 0 and loss 0.
pub fn write_png(train: &[(f64, f64)], valid: &[(f64, f64)], path: &Path) -> Result<()> {
    const W: usize = 800;
    const H: usize = 500;
    const PAD: usize = 40;
    let mut pixels = vec![255u8; W * H * 3];
    let all = train.iter().chain(valid);
    let max_x = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let max_y = all.map(|p| p.1).fold(1e-9, f64::max) * 1.05;
    let to_px = |(x, y): (f64, f64)| {
        let px = PAD as f64 + x / max_x * (W - 2 * PAD) as f64;
        let py = (H - PAD) as f64 - y / max_y * (H - 2 * PAD) as f64;
        (px, py)
    };
    let mut plot = |x: f64, y: f64, color: [u8; 3]| {
        let (x, y) = (x.round() as isize, y.round() as isize);
        if (0..W as isize).contains(&x) && (0..H as isize).contains(&y) {
            let i = (y as usize * W + x as usize) * 3;
            pixels[i..i + 3].copy_from_slice(&color);
        }
    };
    for k in 0..=10 {
        let gx = PAD as f64 + k as f64 / 10.0 * (W - 2 * PAD) as f64;
        let gy = PAD as f64 + k as f64 / 10.0 * (H - 2 * PAD) as f64;
        let shade = if k == 0 { [0, 0, 0] } else { [225, 225, 225] };
        for t in PAD..=W - PAD {
            plot(t as f64, gy, if k == 10 { [0, 0, 0] } else { shade });
        }
        for t in PAD..=H - PAD {
            plot(gx, t as f64, shade);
        }
    }
    let mut line = |points: &[(f64, f64)], color: [u8; 3]| {
        for pair in points.windows(2) {
            let (a, b) = (to_px(pair[0]), to_px(pair[1]));
            let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
            for s in 0..=steps {
                let t = s as f64 / steps as f64;
                let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
                plot(x, y, color);
                plot(x, y + 1.0, color);
            }
        }
    };
    line(&smooth(train, 0.9), [31, 119, 180]);
    line(valid, [214, 39, 40]);
    let file = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), W as u32, H as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()?
        .write_image_data(&pixels)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
