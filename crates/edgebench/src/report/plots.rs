//! SVG plots with plotters' SVG backend. No font files are needed: text is
//! written as SVG `<text>` (escaped by plotters) and the browser picks the
//! font. The plots take plain data, not cells, so they know nothing of SQL.
//!
//! Log axes are drawn as linear axes over log10(x) with our own ticks at
//! 1, 2 and 5 × 10^k: plotters' log ticks skip the first decade and repeat
//! the labels at decade ends.

use super::format::num;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Okabe–Ito colours (distinguishable with colour-blindness); the first is
/// the native baseline's.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0x33, 0x33, 0x33),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
];

pub fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// One row of a strip or bar plot.
pub struct Row {
    pub label: String,
    pub color: usize,
    /// Strip plot: every value. Bar plot: [value, low, high].
    pub values: Vec<f64>,
}

/// One line of an ECDF plot; `values` sorted.
pub struct Curve {
    pub label: String,
    pub color: usize,
    pub values: Vec<f64>,
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

const WIDTH: u32 = 760;
const FONT: &str = "sans-serif";
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

/// The x axis: linear, or log10 when values span more than `log_from`×.
#[derive(Clone, Copy)]
struct Scale {
    log: bool,
}

impl Scale {
    fn new(lo: f64, hi: f64, log_from: f64) -> Scale {
        Scale { log: lo > 0.0 && hi / lo >= log_from }
    }

    fn x(self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    /// The plotted range (in axis units), padded.
    fn range(self, lo: f64, hi: f64, from_zero: bool) -> Range<f64> {
        if self.log {
            let (a, b) = (lo.log10(), hi.log10());
            let pad = (b - a).max(0.1) * 0.04;
            a - pad..b + pad
        } else {
            let pad = (hi - lo).max(hi.abs() * 0.05) * 0.06;
            let start = if from_zero { 0.0 } else { (lo - pad).max(0.0) };
            start..hi + pad
        }
    }

    fn describe(self, x_desc: &str) -> String {
        if self.log {
            format!("{x_desc} (log scale)")
        } else {
            x_desc.to_string()
        }
    }
}

/// Ticks of a log axis within [lo, hi] (data units): 1, 2, 5 × 10^k.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = m * decade;
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn label_area(rows: &[Row]) -> u32 {
    let chars = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0) as u32;
    (chars * 8 + 16).clamp(60, 420)
}

fn render(size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(Into::into).and_then(|_| draw(&root))
    };
    match result {
        Ok(()) => svg,
        Err(e) => format!("<p class=\"error\">plot failed: {}</p>", super::format::html(&e.to_string())),
    }
}

/// Axes: plotters' mesh for linear x; for log x, our own grid and labels.
fn axes(root: &Area, chart: &mut Chart, scale: Scale, x_desc: &str, y_desc: Option<&str>) -> DrawResult {
    let mut mesh = chart.configure_mesh();
    mesh.label_style((FONT, 13)).axis_desc_style((FONT, 13)).x_desc(scale.describe(x_desc)).max_light_lines(1);
    match y_desc {
        Some(y) => mesh.y_desc(y).y_labels(6),
        None => mesh.disable_y_mesh().y_labels(0),
    };
    if scale.log {
        mesh.disable_x_mesh().x_labels(0);
    } else {
        mesh.x_labels(8).x_label_formatter(&|v| num(*v));
    }
    mesh.draw()?;
    if scale.log {
        let (x_range, y_range) = (chart.x_range(), chart.y_range());
        let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        for t in log_ticks(10f64.powf(x_range.start), 10f64.powf(x_range.end)) {
            let x = t.log10();
            chart.draw_series(std::iter::once(PathElement::new(vec![(x, y_range.start), (x, y_range.end)], GRID)))?;
            let (px, py) = chart.backend_coord(&(x, y_range.start));
            root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK))?;
            root.draw(&Text::new(num(t), (px, py + 8), style.clone()))?;
        }
    }
    Ok(())
}

fn row_labels(root: &Area, chart: &Chart, x_left: f64, rows: &[Row]) -> DrawResult {
    let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, r) in rows.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(x_left, row_y(i, rows.len())));
        root.draw(&Text::new(r.label.clone(), (x - 8, y), style.clone()))?;
    }
    Ok(())
}

/// Rows from top to bottom.
fn row_y(i: usize, count: usize) -> f64 {
    (count - 1 - i) as f64
}

/// Every value of each row as a point, over a box from the first to the
/// third quartile with the median marked: cold-start distributions.
pub fn strip(title: &str, x_desc: &str, rows: &[Row]) -> String {
    let Some((lo, hi)) = finite_range(rows.iter().flat_map(|r| r.values.iter().copied())) else {
        return super::html::no_data("no values to plot");
    };
    let scale = Scale::new(lo, hi, 20.0);
    render((WIDTH, 90 + 30 * rows.len() as u32), |root| {
        let x_range = scale.range(lo, hi, false);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 19))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(label_area(rows))
            .build_cartesian_2d(x_range.clone(), -0.6f64..(rows.len() as f64 - 0.4))?;
        axes(root, &mut chart, scale, x_desc, None)?;
        for (i, row) in rows.iter().enumerate() {
            let y = row_y(i, rows.len());
            let c = color(row.color);
            let mut sorted: Vec<f64> = row.values.iter().copied().filter(|v| v.is_finite()).collect();
            if sorted.is_empty() {
                continue;
            }
            sorted.sort_by(f64::total_cmp);
            let q = |p| scale.x(super::stats::quantile(&sorted, p));
            chart.draw_series(std::iter::once(Rectangle::new(
                [(q(0.25), y - 0.28), (q(0.75), y + 0.28)],
                c.mix(0.18).filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(q(0.5), y - 0.34), (q(0.5), y + 0.34)],
                c.stroke_width(3),
            )))?;
            // A fixed, deterministic jitter so that equal values stay visible.
            chart.draw_series(row.values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(k, v)| {
                let jitter = ((k * 7) % 11) as f64 / 11.0 * 0.4 - 0.2;
                Circle::new((scale.x(*v), y + jitter), 3, c.mix(0.75).filled())
            }))?;
        }
        row_labels(root, &chart, x_range.start, rows)
    })
}

/// Horizontal bars (value) with interval whiskers (low, high), the value
/// written at the bar's end: memory with its 95% interval.
pub fn bars(title: &str, x_desc: &str, rows: &[Row]) -> String {
    let Some((_, hi)) = finite_range(rows.iter().flat_map(|r| r.values.iter().copied())) else {
        return super::html::no_data("no values to plot");
    };
    let scale = Scale { log: false };
    render((WIDTH, 90 + 26 * rows.len() as u32), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 19))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(label_area(rows))
            .build_cartesian_2d(0.0..hi * 1.18, -0.6f64..(rows.len() as f64 - 0.4))?;
        axes(root, &mut chart, scale, x_desc, None)?;
        let value_style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, row) in rows.iter().enumerate() {
            let y = row_y(i, rows.len());
            let c = color(row.color);
            let [value, low, high] = [0, 1, 2].map(|k| row.values.get(k).copied().unwrap_or(f64::NAN));
            if !value.is_finite() {
                continue;
            }
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.32), (value, y + 0.32)],
                c.mix(0.7).filled(),
            )))?;
            if low.is_finite() && high.is_finite() {
                chart
                    .draw_series(std::iter::once(PathElement::new(vec![(low, y), (high, y)], BLACK.stroke_width(1))))?;
                for x in [low, high] {
                    chart.draw_series(std::iter::once(PathElement::new(vec![(x, y - 0.15), (x, y + 0.15)], BLACK)))?;
                }
            }
            let end = if high.is_finite() { high.max(value) } else { value };
            chart.draw_series(std::iter::once(Text::new(num(value), (end + hi * 0.01, y), value_style.clone())))?;
        }
        row_labels(root, &chart, 0.0, rows)
    })
}

/// Empirical cumulative distribution, one line per curve: request latency.
pub fn ecdf(title: &str, x_desc: &str, curves: &[Curve]) -> String {
    let Some((lo, hi)) = finite_range(curves.iter().flat_map(|c| c.values.iter().copied())) else {
        return super::html::no_data("no values to plot");
    };
    let scale = Scale::new(lo, hi, 5.0);
    render((580, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 19))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(scale.range(lo, hi, false), 0.0..1.0)?;
        axes(root, &mut chart, scale, x_desc, Some("fraction ≤ x"))?;
        for curve in curves.iter().filter(|c| !c.values.is_empty()) {
            let c = color(curve.color);
            let points = ecdf_points(&curve.values).into_iter().map(|(x, y)| (scale.x(x), y));
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))?
                .label(curve.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xbb, 0xbb, 0xbb))
            .label_font((FONT, 15))
            .draw()?;
        Ok(())
    })
}

/// How a series of an x–y plot is drawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mark {
    /// A line through the points, each point a dot.
    Line,
    /// A dashed line through the points, no dots.
    Dashed,
    /// Small pale dots, no line: every raw value behind a summary line.
    Dots,
}

/// One series of an x–y plot, points in drawing order.
pub struct Series {
    /// The legend entry; `None` for a series that repeats one already listed.
    pub label: Option<String>,
    pub color: usize,
    pub mark: Mark,
    pub points: Vec<(f64, f64)>,
    /// Points drawn hollow (same length as `points`, or empty for none).
    pub hollow: Vec<bool>,
}

/// A horizontal reference line (an objective), in y units, with its label.
pub struct HLine {
    pub y: f64,
    pub label: String,
}

/// The legend of an [`xy`] plot as HTML (below the plot, so that it never
/// hides a point): one swatch and label per series that has a label.
pub fn legend_html(series: &[Series]) -> String {
    let items: Vec<String> = series
        .iter()
        .filter_map(|s| {
            let label = s.label.as_ref()?;
            let RGBColor(r, g, b) = color(s.color);
            let swatch = match s.mark {
                Mark::Line => "━━●",
                Mark::Dashed => "╺ ╺ ╸",
                Mark::Dots => "· · ·",
            };
            Some(format!(
                "<span class=\"key\"><span style=\"color:#{r:02x}{g:02x}{b:02x}\">{swatch}</span> {}</span>",
                super::format::html(label)
            ))
        })
        .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!("<div class=\"legend\">{}</div>", items.join(" "))
    }
}

/// x tick labels: whole numbers without decimals (instance counts, rates).
fn x_label(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        num(v)
    }
}

/// x–y plot, linear x from zero; y on a log scale with 1-2-5 ticks when the
/// values span at least `log_from`× (and the range holds two ticks), else
/// linear from zero: throughput curves and scaling curves.
pub fn xy(title: &str, x_desc: &str, y_desc: &str, series: &[Series], hline: Option<&HLine>, log_from: f64) -> String {
    let points = || series.iter().flat_map(|s| s.points.iter().copied());
    let (Some((_, x_hi)), Some((y_lo, y_hi))) =
        (finite_range(points().map(|p| p.0)), finite_range(points().map(|p| p.1).chain(hline.map(|h| h.y))))
    else {
        return super::html::no_data("no values to plot");
    };
    let mut y_scale = Scale::new(y_lo, y_hi, log_from);
    if y_scale.log {
        let r = y_scale.range(y_lo, y_hi, false);
        if log_ticks(10f64.powf(r.start), 10f64.powf(r.end)).len() < 2 {
            y_scale = Scale { log: false };
        }
    }
    let x_range = Scale { log: false }.range(0.0, x_hi.max(1e-9), true);
    // Counts on x (K instances): no labels between whole numbers.
    let whole_x = points().all(|p| p.0.fract() == 0.0);
    let x_tick = move |v: &f64| if whole_x && v.fract() != 0.0 { String::new() } else { x_label(*v) };
    let y_range = y_scale.range(y_lo, y_hi, true);
    render((580, 360), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 19))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(62)
            .build_cartesian_2d(x_range.clone(), y_range.clone())?;
        {
            let mut mesh = chart.configure_mesh();
            mesh.label_style((FONT, 13))
                .axis_desc_style((FONT, 13))
                .x_desc(x_desc)
                .y_desc(y_scale.describe(y_desc))
                .max_light_lines(1)
                .x_labels(7)
                .x_label_formatter(&x_tick);
            if y_scale.log {
                mesh.disable_y_mesh().y_labels(0);
            } else {
                mesh.y_labels(6).y_label_formatter(&|v| num(*v));
            }
            mesh.draw()?;
        }
        if y_scale.log {
            let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
            for t in log_ticks(10f64.powf(y_range.start), 10f64.powf(y_range.end)) {
                let y = t.log10();
                chart
                    .draw_series(std::iter::once(PathElement::new(vec![(x_range.start, y), (x_range.end, y)], GRID)))?;
                let (px, py) = chart.backend_coord(&(x_range.start, y));
                root.draw(&PathElement::new(vec![(px - 5, py), (px, py)], BLACK))?;
                root.draw(&Text::new(num(t), (px - 8, py), style.clone()))?;
            }
        }
        if let Some(h) = hline {
            let y = y_scale.x(h.y);
            let red = RGBColor(0xb3, 0x26, 0x1e);
            chart.draw_series(DashedLineSeries::new(
                vec![(x_range.start, y), (x_range.end, y)],
                6,
                4,
                red.stroke_width(2),
            ))?;
            let style = TextStyle::from((FONT, 13).into_font()).color(&red).pos(Pos::new(HPos::Right, VPos::Bottom));
            let (px, py) = chart.backend_coord(&(x_range.end, y));
            root.draw(&Text::new(h.label.clone(), (px - 4, py - 3), style))?;
        }
        for s in series {
            let c = color(s.color);
            let pts: Vec<(f64, f64)> =
                s.points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).map(|p| (p.0, y_scale.x(p.1))).collect();
            match s.mark {
                Mark::Line => {
                    let hollow = |i: usize| s.hollow.get(i).copied().unwrap_or(false);
                    chart.draw_series(pts.iter().enumerate().map(|(i, p)| {
                        if hollow(i) {
                            Circle::new(*p, 4, c.stroke_width(2))
                        } else {
                            Circle::new(*p, 3, c.filled())
                        }
                    }))?;
                    chart.draw_series(LineSeries::new(pts, c.stroke_width(2)))?;
                }
                Mark::Dashed => {
                    chart.draw_series(DashedLineSeries::new(pts, 7, 4, c.stroke_width(2)))?;
                }
                Mark::Dots => {
                    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 2, c.mix(0.4).filled())))?;
                }
            }
        }
        Ok(())
    })
}

/// At most this many steps per curve: the SVG stays small, and the tail
/// (the last 2% of values) is always kept in full.
const ECDF_STEPS: usize = 400;

fn ecdf_points(values: &[f64]) -> Vec<(f64, f64)> {
    let n = values.len();
    let tail = n - n / 50;
    let stride = (tail / ECDF_STEPS).max(1);
    let mut points = Vec::new();
    for i in (0..n).filter(|i| i % stride == 0 || *i >= tail || *i + 1 == n) {
        points.push((values[i], i as f64 / n as f64));
        points.push((values[i], (i + 1) as f64 / n as f64));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_svg_with_their_labels_as_text() {
        let rows = vec![
            Row { label: "native (static)".into(), color: 0, values: vec![1.0, 1.2, 7.0] },
            Row { label: "a<b & c".into(), color: 1, values: vec![250.0, 260.0, 240.0] },
        ];
        let svg = strip("Cold start", "ms", &rows);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("\nnative (static)\n"));
        assert!(svg.contains("a&lt;b &amp; c"), "labels are escaped");
        assert!(svg.contains("log scale"), "1 to 260 ms is drawn on a log scale");
        assert!(svg.contains("\n100\n") && svg.contains("\n2.00\n"), "log ticks at 1, 2, 5 × 10^k");
        let bars_svg = bars("Memory", "MiB", &[Row { label: "x".into(), color: 2, values: vec![9.7, 9.5, 9.9] }]);
        assert!(bars_svg.contains("\n9.70\n"), "{bars_svg}");
        let curve = Curve { label: "x".into(), color: 3, values: (1..=1000).map(|i| i as f64 / 100.0).collect() };
        let e = ecdf("Latency", "ms", &[curve]);
        assert!(e.starts_with("<svg") && e.contains("fraction"));
        let line = Series {
            label: Some("native (static)".into()),
            color: 0,
            mark: Mark::Line,
            points: vec![(1000.0, 0.2), (2000.0, 0.3), (4000.0, 30.0)],
            hollow: vec![false, false, true],
        };
        let objective = HLine { y: 10.0, label: "objective".into() };
        let curve = xy("Throughput", "offered req/s", "p99 ms", std::slice::from_ref(&line), Some(&objective), 1.0);
        assert!(curve.starts_with("<svg"), "{curve}");
        assert!(legend_html(&[line]).contains("#333333\">━━●</span> native (static)"));
        assert!(curve.contains("p99 ms (log scale)") && curve.contains("\n10.0\n") && curve.contains("\n0.200\n"));
        assert!(curve.contains("\nobjective\n") && curve.contains("\n4000\n"), "{curve}");
    }

    #[test]
    fn log_ticks_are_one_two_five() {
        assert_eq!(log_ticks(0.15, 12.0), vec![0.2, 0.5, 1.0, 2.0, 5.0, 10.0]);
        assert_eq!(log_ticks(3.0, 4.0), Vec::<f64>::new());
    }

    #[test]
    fn ecdf_keeps_the_tail_and_thins_the_body() {
        let values: Vec<f64> = (0..10_000).map(f64::from).collect();
        let points = ecdf_points(&values);
        assert!(points.len() < 2 * (ECDF_STEPS + 250), "{}", points.len());
        assert_eq!(points.last(), Some(&(9999.0, 1.0)));
    }
}
