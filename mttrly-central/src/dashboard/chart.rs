//! A server's metrics history as inline SVG, drawn here, server-side: no script, no `style=`
//! (the CSP forbids both; colours come from classes in `app.css`). Two small charts: CPU, memory
//! and the fullest disk on one percent scale, and the 1-minute load on its own scale. Each is an
//! `img` with a `<title>` and a `<desc>` that says the latest, lowest and highest values, and the
//! numbers themselves follow in a table inside `<details>` for anyone who cannot see the lines.
//!
//! A gap in the samples (an agent offline) breaks the line instead of bridging it; a lone sample
//! is a dot.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};

use super::show;
use crate::db::metrics::{MINUTE_MS, MetricSample};

/// The drawing's size, in its own units (it scales to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 150.0;
/// The plot area inside it: room on the left for the scale, below for the times.
const LEFT: f64 = 44.0;
const RIGHT: f64 = 592.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 128.0;

/// Samples further apart than this are not joined by a line.
const GAP_MS: i64 = 3 * MINUTE_MS;

/// One line of a chart.
struct Line {
    /// Its name in the legend and the description.
    name: &'static str,
    /// Its class (the colour, in `app.css`).
    class: &'static str,
    /// What it reads from a sample.
    value: fn(&MetricSample) -> Option<f64>,
    /// How a value reads (`12%`, `0.52`).
    unit: Unit,
}

#[derive(Clone, Copy)]
enum Unit {
    Percent,
    Load,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Self::Percent => format!("{v:.1}%"),
            Self::Load => format!("{v:.2}"),
        }
    }

    /// A scale mark: `50%`, `2.5`.
    fn tick(self, v: f64) -> String {
        match self {
            Self::Percent => format!("{v:.0}%"),
            Self::Load => format!("{v:.1}"),
        }
    }
}

const PERCENT_LINES: [Line; 3] = [
    Line { name: "CPU", class: "cpu", value: |s| s.cpu_percent, unit: Unit::Percent },
    Line { name: "Memory", class: "memory", value: |s| s.memory_percent, unit: Unit::Percent },
    Line { name: "Fullest disk", class: "disk", value: |s| s.disk_percent, unit: Unit::Percent },
];

const LOAD_LINES: [Line; 1] = [Line { name: "Load (1 min)", class: "load", value: |s| s.load_1m, unit: Unit::Load }];

/// The charts and the numbers for `samples` between `from_ms` and `to_ms`.
pub(super) fn history(samples: &[MetricSample], from_ms: i64, to_ms: i64) -> Markup {
    let load_max = samples.iter().filter_map(|s| s.load_1m).fold(0.0_f64, f64::max);
    let load_top = nice_ceiling(load_max);
    html! {
        @if samples.is_empty() {
            p.empty { "No samples in this window yet: an online agent's metrics are sampled once a minute." }
        } @else {
            div.charts {
                (chart("chart-percent", "CPU, memory and fullest disk (%)", &PERCENT_LINES, samples, 100.0, from_ms, to_ms))
                (chart("chart-load", "Load average over 1 minute", &LOAD_LINES, samples, load_top, from_ms, to_ms))
            }
            details.numbers {
                summary { "The numbers (" (samples.len()) " samples)" }
                div.scroll {
                    table.servers.samples {
                        thead { tr {
                            th scope="col" { "Time" } th scope="col" { "CPU" } th scope="col" { "Memory" }
                            th scope="col" { "Fullest disk" } th scope="col" { "Load (1 min)" }
                        } }
                        tbody {
                            @for s in samples.iter().rev() {
                                tr {
                                    th scope="row" { (show::time(s.at_ms)) }
                                    @for line in PERCENT_LINES.iter().chain(&LOAD_LINES) {
                                        td { ((line.value)(s).map_or_else(|| "—".to_owned(), |v| line.unit.show(v))) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `v` (at least 1): a load scale's top.
fn nice_ceiling(v: f64) -> f64 {
    let mut decade = 1.0;
    while decade < 1e6 {
        for m in [1.0, 2.0, 5.0] {
            if m * decade >= v {
                return m * decade;
            }
        }
        decade *= 10.0;
    }
    decade
}

/// `HH:MM UTC`: the ends of the time axis.
fn clock(ms: i64) -> String {
    let at = crate::db::timestamp(ms).to_string();
    format!("{} UTC", at.get(11..16).unwrap_or(&at))
}

fn x_of(at_ms: i64, from_ms: i64, to_ms: i64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // milliseconds within a day fit an f64 exactly
    let share = (at_ms - from_ms) as f64 / (to_ms - from_ms).max(1) as f64;
    LEFT + share.clamp(0.0, 1.0) * (RIGHT - LEFT)
}

fn y_of(v: f64, top: f64) -> f64 {
    BOTTOM - (v / top).clamp(0.0, 1.0) * (BOTTOM - TOP)
}

/// One chart: the scale, the time axis, a line per series, and its description.
fn chart(
    id: &str,
    title: &str,
    lines: &[Line],
    samples: &[MetricSample],
    top: f64,
    from_ms: i64,
    to_ms: i64,
) -> Markup {
    let unit = lines.first().map_or(Unit::Percent, |l| l.unit);
    let desc = describe(lines, samples);
    let ticks = [0.0, top / 2.0, top];
    html! {
        figure.chart {
            svg role="img" aria-labelledby=(format!("{id}-title {id}-desc")) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) xmlns="http://www.w3.org/2000/svg" {
                title id=(format!("{id}-title")) { (title) }
                desc id=(format!("{id}-desc")) { (desc) }
                @for t in ticks {
                    @let y = y_of(t, top);
                    line.grid x1=(LEFT) x2=(RIGHT) y1=(fmt(y)) y2=(fmt(y)) {}
                    text.scale x=(LEFT - 4.0) y=(fmt(y + 4.0)) text-anchor="end" { (unit.tick(t)) }
                }
                text.scale x=(LEFT) y=(HEIGHT - 4.0) text-anchor="start" { (clock(from_ms)) }
                text.scale x=(RIGHT) y=(HEIGHT - 4.0) text-anchor="end" { (clock(to_ms)) }
                @for line in lines {
                    g.(line.class) {
                        @for segment in segments(samples, line.value) {
                            @if segment.len() == 1 {
                                circle r="2.5" cx=(fmt(x_of(segment[0].0, from_ms, to_ms))) cy=(fmt(y_of(segment[0].1, top))) {}
                            } @else {
                                polyline fill="none" points=(points(&segment, top, from_ms, to_ms)) {}
                            }
                        }
                    }
                }
            }
            figcaption {
                ul.legend {
                    @for line in lines {
                        li { span.swatch.(line.class) aria-hidden="true" {} (line.name) }
                    }
                }
            }
        }
    }
}

/// `12.3`: one decimal is finer than a pixel.
fn fmt(v: f64) -> PreEscaped<String> {
    PreEscaped(format!("{v:.1}"))
}

/// The runs of consecutive samples (no gap longer than [`GAP_MS`]) that have a value.
fn segments(samples: &[MetricSample], value: fn(&MetricSample) -> Option<f64>) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut last: Option<i64> = None;
    for s in samples {
        let Some(v) = value(s) else {
            last = None;
            continue;
        };
        match (out.last_mut(), last) {
            (Some(run), Some(prev)) if s.at_ms - prev <= GAP_MS => run.push((s.at_ms, v)),
            _ => out.push(vec![(s.at_ms, v)]),
        }
        last = Some(s.at_ms);
    }
    out
}

fn points(segment: &[(i64, f64)], top: f64, from_ms: i64, to_ms: i64) -> String {
    let mut out = String::with_capacity(segment.len() * 12);
    for (at, v) in segment {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{:.1},{:.1}", x_of(*at, from_ms, to_ms), y_of(*v, top));
    }
    out
}

/// What the lines show, in words: each series' latest, lowest and highest value.
fn describe(lines: &[Line], samples: &[MetricSample]) -> String {
    let mut parts = Vec::new();
    for line in lines {
        let values: Vec<f64> = samples.iter().filter_map(line.value).collect();
        let Some(latest) = values.last() else {
            parts.push(format!("{}: no data", line.name));
            continue;
        };
        let (low, high) = values.iter().fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        parts.push(format!(
            "{}: latest {}, lowest {}, highest {}",
            line.name,
            line.unit.show(*latest),
            line.unit.show(low),
            line.unit.show(high)
        ));
    }
    format!("{} samples. {}.", samples.len(), parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: i64, cpu: Option<f64>) -> MetricSample {
        MetricSample {
            at_ms: minute * MINUTE_MS,
            cpu_percent: cpu,
            memory_percent: Some(50.0),
            disk_percent: None,
            load_1m: Some(0.7),
        }
    }

    #[test]
    fn gaps_break_lines_and_lone_samples_are_dots() {
        let samples = [
            sample(0, Some(10.0)),
            sample(1, Some(20.0)),
            sample(10, Some(30.0)),
            sample(11, None),
            sample(12, Some(5.0)),
        ];
        let runs = segments(&samples, |s| s.cpu_percent);
        assert_eq!(runs.len(), 3, "{runs:?}");
        assert_eq!(runs[0].len(), 2);
        let html = history(&samples, 0, 12 * MINUTE_MS).into_string();
        assert_eq!(html.matches("<polyline").count(), 5, "CPU's first run, memory's and load's two each: {html}");
        assert!(html.contains("<circle"), "the lone samples are dots");
        assert!(html.contains("<title id=\"chart-percent-title\">"));
        assert!(html.contains("CPU: latest 5.0%, lowest 5.0%, highest 30.0%"), "{html}");
        assert!(html.contains("Fullest disk: no data"));
        assert!(!html.contains("style="), "the CSP forbids inline styles");
        assert_eq!(html.matches("<tr>").count(), 6, "a header and a row per sample");
    }

    #[test]
    fn points_land_inside_the_plot() {
        assert!((x_of(0, 0, 100) - LEFT).abs() < 1e-9);
        assert!((x_of(100, 0, 100) - RIGHT).abs() < 1e-9);
        assert!((y_of(100.0, 100.0) - TOP).abs() < 1e-9);
        assert!((y_of(250.0, 100.0) - TOP).abs() < 1e-9, "clamped");
        assert!((y_of(0.0, 100.0) - BOTTOM).abs() < 1e-9);
        assert!((nice_ceiling(0.3) - 1.0).abs() < 1e-9);
        assert!((nice_ceiling(1.5) - 2.0).abs() < 1e-9);
        assert!((nice_ceiling(3.1) - 5.0).abs() < 1e-9);
        assert!((nice_ceiling(7.0) - 10.0).abs() < 1e-9);
    }
}
