//! The failover charts: per host-dies trial, one panel per advert interval,
//! both daemons: the client-visible outage (reference line: the RFC
//! Master_Down_Interval), or detection − Master_Down_Interval (reference: 0).
//! The y axis is zoomed on the data, since both daemons sit close to the RFC
//! bound and a zero-based axis would hide their difference.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::{daemon::Kind, report::Results};

fn color(k: Kind) -> RGBColor {
    match k {
        Kind::Agent => RGBColor(31, 119, 180),
        Kind::Keepalived => RGBColor(214, 39, 40),
    }
}

/// Draws the chart into `path`: outage, or detection lateness if `late`.
pub fn failover_svg(res: &Results, path: &Path, late: bool) -> anyhow::Result<()> {
    let data = res.chart_data(late);
    let (title, ylabel, reference) = if late {
        (
            "Detection − Master_Down_Interval when the master host dies (ms per trial)",
            "late by ms",
            "dashed: 0 = RFC deadline",
        )
    } else {
        (
            "Client-visible outage when the master host dies (ms per trial)",
            "outage ms",
            "dashed: Master_Down_Interval",
        )
    };
    let panels = data.len().max(1);
    let width = u32::try_from(420 * panels).unwrap_or(1260);
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(|x| e(&x))?;
    let areas = root.split_evenly((1, panels));
    for (area, (label, bound, per)) in areas.iter().zip(&data) {
        let n = per.iter().map(|(_, v)| v.len()).max().unwrap_or(1).max(1);
        let all = || per.iter().flat_map(|(_, v)| v.iter().copied());
        let hi = all().fold(*bound, f64::max);
        let lo = all().fold(*bound, f64::min);
        let pad = ((hi - lo) * 0.15).max(0.5);
        let (lo, top) = (lo - pad, hi + pad);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{label}  ({reference})"), ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..(n as f64 + 1.0), lo..top)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("trial")
            .y_desc(ylabel)
            .disable_x_mesh()
            .draw()
            .map_err(|x| e(&x))?;
        // Reference: the RFC bound.
        let b = *bound;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, b), (n as f64 + 1.0, b)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(|x| e(&x))?;
        for (kind, v) in per {
            let c = color(*kind);
            chart
                .draw_series(
                    v.iter()
                        .enumerate()
                        .map(|(i, &y)| Circle::new((i as f64 + 1.0, y), 4, c.filled())),
                )
                .map_err(|x| e(&x))?
                .label(kind.name())
                .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
