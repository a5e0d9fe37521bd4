//! A minimal line chart written as a PNG: white canvas, grid every tenth of each axis, axes in
//! black, lines between points given in [0, 1] x [0, 1] (y up). Enough for loss and ROC curves
//! without a plotting library or fonts.

use std::path::Path;

use anyhow::{Context, Result};

use crate::atomic_output::AtomicOutput;

/// An RGB canvas with a plotting area inset by a margin.
pub struct Chart {
    width: usize,
    height: usize,
    margin: usize,
    pixels: Vec<u8>,
}

impl Chart {
    /// A blank chart with its grid and axes drawn.
    pub fn new(width: usize, height: usize, margin: usize) -> Self {
        let mut chart = Self {
            width,
            height,
            margin,
            pixels: vec![255; width * height * 3],
        };
        for k in 0..=10 {
            let t = k as f64 / 10.0;
            let shade = |axis: bool| if axis { [0, 0, 0] } else { [225, 225, 225] };
            chart.line((t, 0.0), (t, 1.0), shade(k == 0), false);
            chart.line((0.0, t), (1.0, t), shade(k == 0), false);
        }
        chart
    }

    fn to_pixel(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let (w, h) = (
            (self.width - 2 * self.margin) as f64,
            (self.height - 2 * self.margin) as f64,
        );
        (self.margin as f64 + x * w, (self.height - self.margin) as f64 - y * h)
    }

    fn dot(&mut self, x: f64, y: f64, color: [u8; 3]) {
        let (x, y) = (x.round() as isize, y.round() as isize);
        if (0..self.width as isize).contains(&x) && (0..self.height as isize).contains(&y) {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    /// A straight segment between two points in chart coordinates; `thick` doubles its width.
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), color: [u8; 3], thick: bool) {
        let (a, b) = (self.to_pixel(a), self.to_pixel(b));
        let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            self.dot(x, y, color);
            if thick {
                self.dot(x + 1.0, y, color);
                self.dot(x, y - 1.0, color);
            }
        }
    }

    /// A polyline through `points` in chart coordinates.
    pub fn polyline(&mut self, points: &[(f64, f64)], color: [u8; 3]) {
        for pair in points.windows(2) {
            self.line(pair[0], pair[1], color, true);
        }
    }

    /// Writes the chart as an 8-bit RGB PNG.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut out = AtomicOutput::create(path, &[])?;
        let mut encoder = png::Encoder::new(out.writer(), self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer
            .write_image_data(&self.pixels)
            .and_then(|()| writer.finish())
            .with_context(|| format!("writing {}", path.display()))?;
        out.commit()
    }
}
