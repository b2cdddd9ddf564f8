//! Small SVG line charts for the benchmark report, in the style of
//! `docs/broadcast-rate.svg`: white background, grey grid, ours as blue-ish
//! lines with round markers, py2p as squares (hollow when the reference lost
//! messages), a legend in a column on the right.
//!
//! Axes are linear or logarithmic; ticks are powers of ten (log), "nice"
//! steps of 1, 2 or 5 times a power of ten (linear), or given explicitly
//! (e.g. the node counts 2, 4, ..., 64 of a mesh).

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Abscissa, in data units.
    pub x: f64,
    /// Ordinate, in data units.
    pub y: f64,
    /// Drawn hollow: the measure behind it is incomplete (e.g. messages were lost).
    pub hollow: bool,
}

impl Point {
    /// A filled point.
    pub fn new(x: f64, y: f64) -> Point {
        Point {
            x,
            y,
            hollow: false,
        }
    }
}

/// The marker drawn at every point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A disc (our measures).
    Circle,
    /// A square (the reference's measures).
    Square,
}

/// A named line of points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// SVG colour of the line and the markers.
    pub color: &'static str,
    /// Dashed line (the reference) rather than solid (ours).
    pub dashed: bool,
    /// Marker of the points.
    pub marker: Marker,
    /// The points, in drawing order; points that cannot be drawn (not finite, or
    /// not positive on a log axis) are skipped.
    pub points: Vec<Point>,
}

/// One axis.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Axis title.
    pub label: String,
    /// Logarithmic scale.
    pub log: bool,
    /// Tick positions; empty: chosen from the data.
    pub ticks: Vec<f64>,
    /// Formats a tick value.
    pub format: fn(f64) -> String,
}

/// A chart: title, axes and series.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title, at the top.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The lines.
    pub series: Vec<Series>,
    /// Extra legend lines under the series (notes such as "hollow: lost messages").
    pub notes: Vec<String>,
}

/// Canvas and margins (pixels).
const W: f64 = 820.0;
const H: f64 = 430.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 260.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// Escapes text for SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether `v` can be placed on an axis.
fn drawable(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

/// A step of 1, 2 or 5 times a power of ten giving about `target` intervals over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target;
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

/// The data range of an axis `(lo, hi)`, widened to its ticks, and the ticks.
/// Linear axes start at 0 when all values are positive (sizes, memory).
pub fn axis_range(axis: &Axis, values: &[f64]) -> (f64, f64, Vec<f64>) {
    let vals: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| drawable(*v, axis.log))
        .collect();
    let explicit: Vec<f64> = axis
        .ticks
        .iter()
        .copied()
        .filter(|v| drawable(*v, axis.log))
        .collect();
    let min = vals
        .iter()
        .chain(&explicit)
        .copied()
        .fold(f64::INFINITY, f64::min);
    let max = vals
        .iter()
        .chain(&explicit)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if axis.log {
        let (lo, hi) = if min.is_finite() {
            (min.log10(), max.log10())
        } else {
            (0.0, 1.0)
        };
        if !explicit.is_empty() {
            // Explicit ticks: a margin of a fifth of the smallest gap, in log units.
            let pad = ((hi - lo) * 0.06).max(0.05);
            return (lo - pad, hi + pad, explicit);
        }
        let (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
        let ticks = (lo as i32..=hi as i32).map(|d| 10f64.powi(d)).collect();
        (lo, hi, ticks)
    } else {
        let (mut lo, mut hi) = if min.is_finite() {
            (min.min(0.0), max)
        } else {
            (0.0, 1.0)
        };
        if hi <= lo {
            hi = lo + 1.0;
        }
        if !explicit.is_empty() {
            let pad = (hi - lo) * 0.04;
            return (lo - pad, hi + pad, explicit);
        }
        let step = nice_step(hi - lo, 5.0);
        lo = (lo / step).floor() * step;
        hi = (hi / step).ceil() * step;
        let n = ((hi - lo) / step).round() as usize;
        let ticks = (0..=n).map(|i| lo + i as f64 * step).collect();
        (lo, hi, ticks)
    }
}

/// Renders the chart as SVG text.
pub fn render(chart: &Chart) -> String {
    let xs: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .collect();
    let ys: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.y))
        .collect();
    let (x_lo, x_hi, x_ticks) = axis_range(&chart.x, &xs);
    let (y_lo, y_hi, y_ticks) = axis_range(&chart.y, &ys);
    let tx = |v: f64| if chart.x.log { v.log10() } else { v };
    let ty = |v: f64| if chart.y.log { v.log10() } else { v };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let px = |v: f64| LEFT + (tx(v) - x_lo) / (x_hi - x_lo) * plot_w;
    let py = |v: f64| TOP + (y_hi - ty(v)) / (y_hi - y_lo) * plot_h;

    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    ));
    s.push_str("<!-- Generated by `cargo xtask bench`; do not edit. -->\n");
    s.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"
    ));
    s.push_str(&format!(
        "<text x=\"{:.1}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        LEFT + plot_w / 2.0,
        escape(&chart.title)
    ));
    for &t in &x_ticks {
        let x = px(t);
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            H - BOTTOM,
            H - BOTTOM + 18.0,
            escape(&(chart.x.format)(t))
        ));
    }
    for &t in &y_ticks {
        let y = py(t);
        s.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LEFT + plot_w,
            LEFT - 8.0,
            y + 4.0,
            escape(&(chart.y.format)(t))
        ));
    }
    s.push_str(&format!(
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w:.1}\" height=\"{plot_h:.1}\" \
         fill=\"none\" stroke=\"#444\"/>\n"
    ));
    s.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
        LEFT + plot_w / 2.0,
        H - 14.0,
        escape(&chart.x.label)
    ));
    let mid = TOP + plot_h / 2.0;
    s.push_str(&format!(
        "<text x=\"18\" y=\"{mid:.1}\" text-anchor=\"middle\" \
         transform=\"rotate(-90 18 {mid:.1})\">{}</text>\n",
        escape(&chart.y.label)
    ));

    for series in &chart.series {
        let pts: Vec<&Point> = series
            .points
            .iter()
            .filter(|p| drawable(p.x, chart.x.log) && drawable(p.y, chart.y.log))
            .collect();
        if pts.len() > 1 {
            let path: Vec<String> = pts
                .iter()
                .map(|p| format!("{:.1},{:.1}", px(p.x), py(p.y)))
                .collect();
            s.push_str(&format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n",
                path.join(" "),
                series.color,
                if series.dashed {
                    " stroke-dasharray=\"6 4\""
                } else {
                    ""
                }
            ));
        }
        for p in pts {
            let title = format!(
                "{}: {} → {}{}",
                series.label,
                (chart.x.format)(p.x),
                (chart.y.format)(p.y),
                if p.hollow { " (incomplete)" } else { "" }
            );
            s.push_str(&marker(
                series.marker,
                px(p.x),
                py(p.y),
                series.color,
                p.hollow,
                Some(&title),
            ));
        }
    }

    // Legend, in the column right of the plot.
    let lx = LEFT + plot_w + 16.0;
    let mut ly = TOP + 10.0;
    for series in &chart.series {
        s.push_str(&format!(
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" \
             stroke-width=\"2\"{}/>\n",
            lx + 24.0,
            series.color,
            if series.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            }
        ));
        s.push_str(&marker(
            series.marker,
            lx + 12.0,
            ly,
            series.color,
            false,
            None,
        ));
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            lx + 32.0,
            ly + 4.0,
            escape(&series.label)
        ));
        ly += 20.0;
    }
    for note in &chart.notes {
        ly += 4.0;
        s.push_str(&format!(
            "<text x=\"{lx:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\">{}</text>\n",
            ly + 4.0,
            escape(note)
        ));
        ly += 14.0;
    }
    s.push_str("</svg>\n");
    s
}

/// One marker at `(x, y)`, with a tooltip when `title` is given.
fn marker(m: Marker, x: f64, y: f64, color: &str, hollow: bool, title: Option<&str>) -> String {
    let fill = if hollow { "white" } else { color };
    let inner = title.map_or(String::new(), |t| format!("<title>{}</title>", escape(t)));
    match m {
        Marker::Circle => format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{fill}\" stroke=\"{color}\" \
             stroke-width=\"1.5\">{inner}</circle>\n"
        ),
        Marker::Square => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{fill}\" \
             stroke=\"{color}\" stroke-width=\"2\">{inner}</rect>\n",
            x - 4.0,
            y - 4.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: f64) -> String {
        format!("{v}")
    }

    fn axis(log: bool, ticks: Vec<f64>) -> Axis {
        Axis {
            label: "a".into(),
            log,
            ticks,
            format: plain,
        }
    }

    /// Every `attr="number"` of the given attribute in the SVG text.
    fn attr_values(svg: &str, attr: &str) -> Vec<f64> {
        let needle = format!(" {attr}=\"");
        svg.match_indices(&needle)
            .filter_map(|(i, _)| {
                let rest = &svg[i + needle.len()..];
                rest[..rest.find('"')?].parse().ok()
            })
            .collect()
    }

    #[test]
    fn linear_ticks_are_nice_and_cover_the_data() {
        let (lo, hi, ticks) = axis_range(&axis(false, vec![]), &[3.0, 870.0]);
        assert_eq!((lo, hi), (0.0, 1000.0));
        assert_eq!(ticks, [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        let (lo, hi, ticks) = axis_range(&axis(false, vec![]), &[0.3, 2.6]);
        assert_eq!((lo, hi), (0.0, 3.0));
        assert_eq!(ticks, [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn log_ticks_are_decades_and_skip_non_positive_values() {
        let (lo, hi, ticks) = axis_range(&axis(true, vec![]), &[0.0, -1.0, 0.4, 37.0]);
        assert_eq!((lo, hi), (-1.0, 2.0));
        assert_eq!(ticks, [0.1, 1.0, 10.0, 100.0]);
        // A single decade still gets two ticks.
        let (_, _, ticks) = axis_range(&axis(true, vec![]), &[10.0]);
        assert_eq!(ticks, [10.0, 100.0]);
    }

    #[test]
    fn explicit_ticks_are_kept() {
        let (lo, hi, ticks) = axis_range(&axis(true, vec![2.0, 64.0]), &[4.0, 8.0]);
        assert_eq!(ticks, [2.0, 64.0]);
        assert!(lo < 2f64.log10() && hi > 64f64.log10());
    }

    #[test]
    fn points_land_inside_the_plot_and_bad_ones_are_skipped() {
        let chart = Chart {
            title: "t <&>".into(),
            x: axis(true, vec![]),
            y: axis(false, vec![]),
            series: vec![
                Series {
                    label: "ours".into(),
                    color: "#1f77b4",
                    dashed: false,
                    marker: Marker::Circle,
                    points: vec![
                        Point::new(16.0, 5.0),
                        Point::new(1e6, 250.0),
                        Point::new(0.0, 3.0), // not drawable on a log axis
                        Point::new(100.0, f64::NAN),
                    ],
                },
                Series {
                    label: "py2p".into(),
                    color: "#d62728",
                    dashed: true,
                    marker: Marker::Square,
                    points: vec![Point {
                        x: 256.0,
                        y: 1.0,
                        hollow: true,
                    }],
                },
            ],
            notes: vec!["hollow: lost messages".into()],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;&amp;&gt;"));
        // Two drawable circles plus the legend's.
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("stroke-dasharray").count(), 1); // py2p: legend only (one point)
        assert!(svg.contains("fill=\"white\" stroke=\"#d62728\""));
        let plot = |v: &f64, lo: f64, hi: f64| *v >= lo - 0.01 && *v <= hi + 0.01;
        for cx in attr_values(&svg, "cx") {
            assert!(plot(&cx, LEFT, W), "cx {cx}");
        }
        let circles: Vec<f64> = attr_values(&svg, "cy");
        for cy in &circles[..2] {
            assert!(plot(cy, TOP, H - BOTTOM), "cy {cy}");
        }
    }
}
