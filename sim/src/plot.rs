//! SVG plots of a run (plotters' SVG backend: text is written as SVG `<text>`, so no system
//! fonts or fontconfig are needed): delivery over time, airtime per node, node map with links.

use std::path::Path;

use plotters::prelude::*;

use crate::Outcome;

const COLOURS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
];

type PlotResult = Result<(), Box<dyn std::error::Error>>;
type Render = fn(&Outcome) -> Result<String, String>;

/// Writes `delivery.svg`, `airtime.svg` and `map.svg` into `dir`.
pub fn write_all(outcome: &Outcome, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let files: [(&str, Render); 3] = [
        ("delivery.svg", |o| render(o, delivery)),
        ("airtime.svg", |o| render(o, airtime)),
        ("map.svg", |o| render(o, map)),
    ];
    for (name, draw) in files {
        let svg = draw(outcome).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(name), svg)?;
    }
    Ok(())
}

fn render(
    outcome: &Outcome,
    draw: fn(&Outcome, &DrawingArea<SVGBackend, plotters::coord::Shift>) -> PlotResult,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(outcome, &root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn delivery(o: &Outcome, root: &DrawingArea<SVGBackend, plotters::coord::Shift>) -> PlotResult {
    let end_min = o.report.duration_s / 60.0;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{}: delivery over time", o.report.scenario),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..end_min.max(1.0), 0f64..1.05f64)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("share of (op, node) pairs delivered")
        .draw()?;
    for (index, (run, summary)) in o.runs.iter().zip(&o.report.protocols).enumerate() {
        let pairs = summary.delivery.pairs.max(1) as f64;
        let mut points = vec![(0.0, 0.0)];
        for (t, count) in &run.timeline {
            points.push((t.as_secs_f64() / 60.0, *count as f64 / pairs));
        }
        points.push((end_min, summary.delivery.ratio));
        let colour = COLOURS[index % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(run.protocol.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

fn airtime(o: &Outcome, root: &DrawingArea<SVGBackend, plotters::coord::Shift>) -> PlotResult {
    let n = o.report.nodes;
    let max = o
        .report
        .protocols
        .iter()
        .flat_map(|p| p.airtime_s.per_node.iter().copied())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{}: airtime per node", o.report.scenario),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, 0f64..max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("node")
        .y_desc("airtime over the run (s)")
        .draw()?;
    let k = o.report.protocols.len().max(1) as f64;
    for (index, p) in o.report.protocols.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let width = 0.8 / k;
        chart
            .draw_series(p.airtime_s.per_node.iter().enumerate().map(|(node, a)| {
                let x0 = node as f64 + 0.1 + width * index as f64;
                Rectangle::new([(x0, 0.0), (x0 + width, *a)], colour.filled())
            }))?
            .label(p.protocol.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

fn map(o: &Outcome, root: &DrawingArea<SVGBackend, plotters::coord::Shift>) -> PlotResult {
    let pos = &o.report.topology.positions_m;
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in pos {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let pad = ((x1 - x0).max(y1 - y0) * 0.08).max(10.0);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "{}: nodes and links (diameter {} hops)",
                o.report.scenario,
                o.report
                    .topology
                    .diameter_hops
                    .map_or("∞".to_string(), |d| d.to_string())
            ),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0 - pad..x1 + pad, y0 - pad..y1 + pad)?;
    chart
        .configure_mesh()
        .x_desc("metres")
        .y_desc("metres")
        .draw()?;
    let sens = o.report.topology.sensitivity_dbm;
    for &(a, b, rssi) in &o.report.topology.links {
        // Darker for a stronger link.
        let margin = ((rssi - sens) / 20.0).clamp(0.0, 1.0);
        let grey = (200.0 - 180.0 * margin) as u8;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(pos[a][0], pos[a][1]), (pos[b][0], pos[b][1])],
            RGBColor(grey, grey, grey).stroke_width(1),
        )))?;
    }
    chart.draw_series(pos.iter().enumerate().map(|(i, p)| {
        EmptyElement::at((p[0], p[1]))
            + Circle::new((0, 0), 6, COLOURS[0].filled())
            + Text::new(i.to_string(), (8, -12), ("sans-serif", 14))
    }))?;
    Ok(())
}
