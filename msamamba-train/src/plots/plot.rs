//! Line charts through `plotters`, written as PNG and SVG: axes with tick values, axis labels,
//! a title and a legend, so values can be read off them. Text is drawn with the DejaVu Sans font
//! bundled in `assets/` (plotters' `ab_glyph` feature), so no system font library is needed to
//! build or run.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::atomic_output::AtomicOutput;

/// The bundled font (license: `assets/DejaVuSans.LICENSE`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The name plotters finds the font by.
const FAMILY: &str = "sans-serif";

/// One line of a chart.
pub struct Series<'a> {
    /// Its legend entry.
    pub name: &'a str,
    /// (x, y) in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Its colour.
    pub color: RGBColor,
}

/// A line chart.
pub struct Plot<'a> {
    /// Above the chart.
    pub title: &'a str,
    /// Under the x axis.
    pub x_label: &'a str,
    /// Beside the y axis.
    pub y_label: &'a str,
    /// What the axes span.
    pub x_range: Range<f64>,
    pub y_range: Range<f64>,
    /// The lines, drawn in order.
    pub series: Vec<Series<'a>>,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

/// Registers the bundled font once.
fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| anyhow!("the bundled font cannot be read"));
    });
    result
}

impl Plot<'_> {
    /// Draws the chart on `root`.
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        register_font()?;
        let failed = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {}: {e}", self.title);
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(self.x_range.clone(), self.y_range.clone())
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 16))
            .light_line_style(RGBColor(235, 235, 235))
            .max_light_lines(1)
            .draw()
            .map_err(failed)?;
        for series in &self.series {
            let color = series.color;
            chart
                .draw_series(LineSeries::new(series.points.iter().copied(), color.stroke_width(2)))
                .map_err(failed)?
                .label(series.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)
    }

    /// The chart as SVG text.
    pub fn svg(&self) -> Result<String> {
        let mut text = String::new();
        self.draw(SVGBackend::with_string(&mut text, self.size).into_drawing_area())?;
        Ok(text)
    }

    /// The chart as an 8-bit RGB PNG.
    pub fn png(&self) -> Result<Vec<u8>> {
        let (width, height) = self.size;
        let mut pixels = vec![0; width as usize * height as usize * 3];
        self.draw(BitMapBackend::with_buffer(&mut pixels, self.size).into_drawing_area())?;
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
        Ok(bytes)
    }

    /// Writes the chart to `path` (a `.png`) and beside it as `.svg`, each whole or not at all.
    pub fn save(&self, path: &Path) -> Result<()> {
        let png = self.png().with_context(|| format!("writing {}", path.display()))?;
        AtomicOutput::write(path, png)?;
        let svg = path.with_extension("svg");
        AtomicOutput::write(&svg, self.svg().with_context(|| format!("writing {}", svg.display()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> Plot<'static> {
        Plot {
            title: "Rising line",
            x_label: "step",
            y_label: "value",
            x_range: 0.0..10.0,
            y_range: 0.0..2.0,
            series: vec![
                Series {
                    name: "first",
                    points: vec![(0.0, 0.5), (5.0, 1.0), (10.0, 1.5)],
                    color: BLUE,
                },
                Series {
                    name: "second",
                    points: vec![(0.0, 1.5), (10.0, 0.2)],
                    color: RED,
                },
            ],
            size: (400, 300),
        }
    }

    #[test]
    fn svg_has_title_axis_labels_ticks_and_legend_as_text() {
        let svg = plot().svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
        // The text of every <text> element.
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
            .collect();
        for text in [
            "Rising line",
            "step",
            "value",
            "first",
            "second",
            "0.0",
            "1.0",
            "2.0",
            "5.0",
            "10.0",
        ] {
            assert!(texts.contains(&text), "no {text} among {texts:?}");
        }
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn png_decodes_to_the_size_asked_with_text_and_lines_drawn() {
        let bytes = plot().png().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (400, 300));
        let rgb = &pixels[..info.buffer_size()];
        let count = |color: [u8; 3]| rgb.chunks(3).filter(|p| *p == color).count();
        // Both lines, and dark text and axes, on a white canvas.
        assert!(count([0, 0, 255]) > 100 && count([255, 0, 0]) > 100);
        assert!(rgb.chunks(3).filter(|p| p.iter().all(|&c| c < 60)).count() > 500);
        assert!(count([255, 255, 255]) > rgb.len() / 3 / 2);
    }

    #[test]
    fn save_writes_the_png_and_the_svg_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        plot().save(&dir.path().join("chart.png")).unwrap();
        assert!(
            std::fs::read(dir.path().join("chart.png"))
                .unwrap()
                .starts_with(b"\x89PNG")
        );
        assert!(
            std::fs::read_to_string(dir.path().join("chart.svg"))
                .unwrap()
                .contains("Rising line")
        );
    }
}
