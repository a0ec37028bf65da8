//! `mttr.png`: empirical CDFs of MTTD and MTTR over every fault of every seed.

use anyhow::{Context, anyhow};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::Once;
use crate::report::FaultRow;

/// Bundled so plots render identically on any machine, with no fontconfig.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut ok = true;
    ONCE.call_once(|| ok = register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(anyhow!("the bundled font failed to load")) }
}

/// Step points of an empirical CDF.
fn cdf(mut v: Vec<f64>) -> Vec<(f64, f64)> {
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let mut pts = Vec::with_capacity(v.len() * 2 + 1);
    if let Some(&first) = v.first() {
        pts.push((first, 0.0));
    }
    for (i, &x) in v.iter().enumerate() {
        pts.push((x, i as f64 / n));
        pts.push((x, (i + 1) as f64 / n));
    }
    pts
}

pub fn mttr_cdf(path: &Path, rows: &[FaultRow], title: &str) -> anyhow::Result<()> {
    let failures = || rows.iter().filter(|r| r.failure);
    let mttd: Vec<f64> = failures().filter_map(FaultRow::mttd_ms).collect();
    let mttr: Vec<f64> = failures().filter_map(FaultRow::mttr_ms).collect();
    let x_max = mttd.iter().chain(&mttr).copied().fold(100.0_f64, f64::max) * 1.08;
    let lines = [(mttd, BLUE, "MTTD"), (mttr, RED, "MTTR")]
        .into_iter()
        .filter(|(values, _, _)| !values.is_empty())
        .map(|(values, color, name)| (format!("{name} (n={})", values.len()), color.to_rgba(), cdf(values)))
        .collect();
    let chart = Chart {
        caption: format!("{title}: time to detect and to repair ({} faults)", failures().count()),
        x: ("milliseconds after injection", x_max),
        y: ("fraction of faults", 1.0),
    };
    chart.draw(path, lines)
}

/// `convergence.png`: delivery ratio against time since the first start, one line per
/// daemon (`x0 bench peer`).
pub fn convergence(path: &Path, curves: &[(&str, Vec<(f64, f64)>)], title: &str) -> anyhow::Result<()> {
    let x_max = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)).fold(1.0_f64, f64::max);
    let lines = curves.iter().enumerate().map(|(k, (name, points))| (name.to_string(), Palette99::pick(k).to_rgba(), points.clone()));
    let chart = Chart { caption: title.to_string(), x: ("seconds since the first daemon started", x_max), y: ("probes delivered", 1.05) };
    chart.draw(path, lines.collect())
}

/// One plotted line: its legend label, colour and points.
type Line = (String, RGBAColor, Vec<(f64, f64)>);

/// A line chart in the house style: axes from zero, a legend at the lower right.
struct Chart {
    caption: String,
    /// Axis description and largest value.
    x: (&'static str, f64),
    y: (&'static str, f64),
}

impl Chart {
    fn draw(&self, path: &Path, lines: Vec<Line>) -> anyhow::Result<()> {
        register()?;
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.caption, ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(0f64..self.x.1, 0f64..self.y.1)?;
            chart.configure_mesh().x_desc(self.x.0).y_desc(self.y.0).label_style(("sans-serif", 14)).draw()?;
            for (label, color, points) in lines {
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 15))
                .draw()?;
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| anyhow!("{e}")).with_context(|| format!("drawing {}", path.display()))
    }
}
