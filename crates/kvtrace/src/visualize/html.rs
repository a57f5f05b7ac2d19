//! The dashboard: one self-contained HTML page per selection, inline CSS and
//! inline SVG only (no script, no external URL), readable at 1280×800. Charts:
//! input tokens per request (simulated vs API split), output tokens, context composition
//! coloured hit/miss, hit rate over time, context size over time with agent lanes, cache
//! vs TTL (hit rate, peak working set, prefills), working set over time, and the report.
//!
//! Long selections are drawn in buckets of consecutive requests (at most [`MAX_COLUMNS`]
//! columns) so the page stays a few hundred KB.

use std::fmt::Write as _;

use super::cache::SimResult;
use super::select::{Part, Selection};
use super::svg::{esc, short, ticks, Frame, TimeAxis};
use super::text::{Section, TTLS};
use crate::report::table::Cell;
use crate::report::units::{clock, ttl_text};

/// Most request columns drawn; longer selections are bucketed.
pub const MAX_COLUMNS: usize = 300;
const W: f64 = 1180.0;

const READ: &str = "#2e7d32";
const CREATE: &str = "#ef6c00";
const UNCACHED: &str = "#9e9e9e";
const SIM: &str = "#1565c0";
const API: &str = "#d84315";
const LANES: [&str; 10] = [
    "#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457", "#5d4037",
    "#9e9d24", "#455a64",
];

fn part_colour(p: Part) -> &'static str {
    match p {
        Part::Tools => "#6a1b9a",
        Part::System => "#1565c0",
        Part::UserText => "#00897b",
        Part::AssistantText => "#9e9d24",
        Part::ToolUse => "#ef6c00",
        Part::ToolResult => "#6d4c41",
    }
}

/// Everything a dashboard shows.
pub struct Dashboard<'a> {
    pub title: &'a str,
    pub sel: &'a Selection,
    /// Under the chosen TTL.
    pub main: &'a SimResult,
    /// Per [`TTLS`], then the infinite cache.
    pub by_ttl: &'a [SimResult],
    /// Working set series: (label, simulation).
    pub working: &'a [(&'a str, SimResult)],
    pub sections: &'a [Section],
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1240px;padding:12px 20px;color:#222;background:#fff}\
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:26px 0 4px}h3{font-size:15px;margin:16px 0 4px}\
p.note{color:#555;margin:2px 0 8px}svg{display:block;margin:4px 0 10px;background:#fcfcfc;border:1px solid #e3e3e3}\
.ct{font-size:15px;font-weight:600;fill:#222}.tk{font-size:11px;fill:#555}.al{font-size:12px;fill:#333}.lg{font-size:12px;fill:#333}\
.g{stroke:#e6e6e6}.a{stroke:#888}table{border-collapse:collapse;margin:4px 0 8px}td,th{border:1px solid #ddd;padding:3px 8px}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f2f2f2}nav a{margin-right:12px}";

/// The page.
pub fn render(d: &Dashboard<'_>) -> String {
    let sel = d.sel;
    let mut o = String::with_capacity(256 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>",
        t = esc(d.title)
    );
    let n = sel.requests.len();
    let _ = write!(
        o,
        "<p class=\"note\">{n} requests, block size {} tokens, cache model: longest cached prefix of blocks, {}. Hover a mark for its values.</p>",
        sel.block_size,
        ttl_text(d.main.ttl)
    );
    o.push_str("<nav><a href=\"#tokens\">Tokens</a><a href=\"#composition\">Composition</a><a href=\"#hitrate\">Hit rate</a><a href=\"#context\">Context</a><a href=\"#ttl\">TTL</a><a href=\"#working\">Working set</a><a href=\"#report\">Report</a></nav>");
    o.push_str("<h2 id=\"tokens\">Input and output tokens per request</h2><p class=\"note\">Left bar of each pair: simulated split (cl100k tokens); right bar, lighter: the API's own usage. Green = cache read, orange = cache creation, grey = uncached.</p>");
    o.push_str(&tokens_chart(d));
    o.push_str(&output_chart(d));
    o.push_str("<h2 id=\"composition\">What the context is made of</h2><p class=\"note\">Each column is one request's context from its first token (bottom) to its last; solid = simulated cache hit, pale = miss (prefilled).</p>");
    o.push_str(&composition_chart(d));
    o.push_str("<h2 id=\"hitrate\">Cache hit rate over time</h2>");
    o.push_str(&hit_rate_chart(d));
    o.push_str("<h2 id=\"context\">Context size over time</h2>");
    o.push_str(&context_chart(d));
    o.push_str("<h2 id=\"ttl\">Cache vs TTL</h2><p class=\"note\">The same requests simulated under each TTL (∞ = never expires).</p>");
    o.push_str(&ttl_charts(d));
    o.push_str("<h2 id=\"working\">Working set over time</h2><p class=\"note\">Blocks alive (used within the TTL) × block size, for several TTLs.</p>");
    o.push_str(&working_chart(d));
    o.push_str("<h2 id=\"report\">Statistics</h2>");
    for s in d.sections {
        o.push_str(&section_html(s));
    }
    o.push_str("</body></html>\n");
    o
}

fn section_html(s: &Section) -> String {
    let mut o = format!("<h3>{}</h3><table><tr>", esc(&s.title));
    for h in &s.table.header {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>");
    for (label, cells) in &s.table.rows {
        let _ = write!(o, "<tr><td>{}</td>", esc(label));
        for c in cells {
            let class = if matches!(c, Cell::Num(..)) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(o, "<td{class}>{}</td>", esc(&c.human()));
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
    for n in &s.notes {
        let _ = write!(o, "<p class=\"note\">{}</p>", esc(n));
    }
    o
}

/// Request index ranges drawn as one column each.
fn buckets(n: usize) -> Vec<std::ops::Range<usize>> {
    let per = n.div_ceil(MAX_COLUMNS).max(1);
    (0..n.div_ceil(per))
        .map(|i| i * per..((i + 1) * per).min(n))
        .collect()
}

fn range_label(r: &std::ops::Range<usize>) -> String {
    if r.len() == 1 {
        format!("request {}", r.start + 1)
    } else {
        format!("requests {}–{}", r.start + 1, r.end)
    }
}

fn request_axis(f: &Frame, cols: usize, n: usize) -> Vec<(f64, String)> {
    let per = n.div_ceil(MAX_COLUMNS).max(1);
    ticks(0.0, cols as f64, 10)
        .into_iter()
        .filter(|v| *v < cols as f64)
        .map(|v| (v + 0.5, format!("{}", v as usize * per + 1)))
        .filter(|(v, _)| f.sx(*v).is_finite())
        .collect()
}

fn tokens_chart(d: &Dashboard<'_>) -> String {
    let sel = d.sel;
    let cols = buckets(sel.requests.len());
    let mut stacks = Vec::new();
    let mut ymax: f64 = 1.0;
    for b in &cols {
        let (mut s, mut a) = ([0u64; 3], [0u64; 3]);
        for i in b.clone() {
            let r = &sel.requests[i];
            let h = d.main.per_request.get(i).copied().unwrap_or_default();
            s[0] += h.read_tokens as u64;
            s[1] += h.write_tokens as u64;
            a[0] += r.usage.cache_read.unwrap_or(0);
            a[1] += r.usage.cache_creation.unwrap_or(0);
            a[2] += r.usage.input.unwrap_or(0);
        }
        ymax = ymax
            .max(s.iter().sum::<u64>() as f64)
            .max(a.iter().sum::<u64>() as f64);
        stacks.push((s, a));
    }
    let f = Frame::new(
        W,
        320.0,
        (0.0, cols.len().max(1) as f64),
        (0.0, ymax * 1.05),
    );
    let mut o = f.open("Input tokens per request: simulated vs API");
    o.push_str(&f.legend(&[
        (READ, "cache read", 1.0),
        (CREATE, "cache creation", 1.0),
        (UNCACHED, "uncached", 1.0),
    ]));
    o.push_str(&f.axes(
        &request_axis(&f, cols.len(), sel.requests.len()),
        &f.y_ticks(""),
        "request (in time order)",
        "input tokens",
    ));
    let cw = f.plot_w() / cols.len().max(1) as f64;
    for (k, (b, (s, a))) in cols.iter().zip(&stacks).enumerate() {
        let x = f.sx(k as f64);
        let _ = write!(
            o,
            "<g><title>{}: simulated read {} / creation {}; API read {} / creation {} / uncached {}</title>",
            range_label(b),
            s[0], s[1], a[0], a[1], a[2]
        );
        for (bar, vals, opacity) in [(0.0, s, 1.0), (0.5, a, 0.55)] {
            let mut base = 0u64;
            for (j, colour) in [READ, CREATE, UNCACHED].into_iter().enumerate() {
                if vals[j] == 0 {
                    continue;
                }
                let y1 = f.sy(base as f64);
                base += vals[j];
                let y0 = f.sy(base as f64);
                let _ = write!(
                    o,
                    "<rect x=\"{:.1}\" y=\"{y0:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"{opacity}\"/>",
                    x + cw * (0.05 + bar * 0.9),
                    (cw * 0.42).max(0.4),
                    (y1 - y0).max(0.3)
                );
            }
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    o
}

fn output_chart(d: &Dashboard<'_>) -> String {
    let sel = d.sel;
    let cols = buckets(sel.requests.len());
    let vals: Vec<u64> = cols
        .iter()
        .map(|b| sel.requests[b.clone()].iter().map(|r| r.out).sum())
        .collect();
    let ymax = vals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let f = Frame::new(
        W,
        200.0,
        (0.0, cols.len().max(1) as f64),
        (0.0, ymax * 1.05),
    );
    let mut o = f.open("Output tokens per request");
    o.push_str(&f.axes(
        &request_axis(&f, cols.len(), sel.requests.len()),
        &f.y_ticks(""),
        "request (in time order)",
        "output tokens",
    ));
    let cw = f.plot_w() / cols.len().max(1) as f64;
    for (k, (b, v)) in cols.iter().zip(&vals).enumerate() {
        let y = f.sy(*v as f64);
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"#5e35b1\"><title>{}: {} output tokens</title></rect>",
            f.sx(k as f64) + cw * 0.1,
            (cw * 0.8).max(0.4),
            (f.sy(0.0) - y).max(0.3),
            range_label(b),
            v
        );
    }
    o.push_str("</svg>");
    o
}

fn composition_chart(d: &Dashboard<'_>) -> String {
    let sel = d.sel;
    let cols = buckets(sel.requests.len());
    // A bucket is drawn as its last request.
    let reps: Vec<usize> = cols.iter().map(|b| b.end - 1).collect();
    let ymax = reps
        .iter()
        .map(|&i| sel.requests[i].tokens_in)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let f = Frame::new(
        W,
        360.0,
        (0.0, cols.len().max(1) as f64),
        (0.0, ymax * 1.05),
    );
    let mut o = f.open("Context composition per request, hit (solid) or miss (pale)");
    let legend: Vec<(&str, &str, f64)> = Part::ALL
        .iter()
        .map(|p| (part_colour(*p), p.name(), 1.0))
        .collect();
    o.push_str(&f.legend(&legend));
    o.push_str(&f.axes(
        &request_axis(&f, cols.len(), sel.requests.len()),
        &f.y_ticks(""),
        "request (in time order)",
        "context position (tokens)",
    ));
    let cw = f.plot_w() / cols.len().max(1) as f64;
    for (k, &i) in reps.iter().enumerate() {
        let r = &sel.requests[i];
        let hit = d.main.per_request.get(i).map_or(0, |h| h.read_tokens);
        // Runs split at the hit boundary, snapped to whole pixels, then merged.
        let mut cells: Vec<(f64, f64, Part, bool)> = Vec::new();
        let mut pos = 0usize;
        for &(part, len) in &r.parts {
            let end = pos + len;
            let mut pieces = vec![];
            if pos < hit && hit < end {
                pieces.push((pos, hit, true));
                pieces.push((hit, end, false));
            } else {
                pieces.push((pos, end, end <= hit));
            }
            for (a, b, h) in pieces {
                let (ya, yb) = (f.sy(a as f64).round(), f.sy(b as f64).round());
                if ya - yb < 1.0 {
                    continue;
                }
                match cells.last_mut() {
                    Some(c) if c.2 == part && c.3 == h && (c.1 - ya).abs() < 1.5 => c.1 = yb,
                    _ => cells.push((ya, yb, part, h)),
                }
            }
            pos = end;
        }
        let _ = write!(
            o,
            "<g><title>request {}: {} tokens, {} hit ({:.1}%); tools {}, system {}</title>",
            i + 1,
            r.tokens_in,
            hit,
            if r.tokens_in > 0 {
                hit as f64 / r.tokens_in as f64 * 100.0
            } else {
                0.0
            },
            r.tool_tokens,
            r.system_tokens
        );
        for (ya, yb, part, h) in cells {
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{yb:.0}\" width=\"{:.2}\" height=\"{:.0}\" fill=\"{}\"{}/>",
                f.sx(k as f64) + cw * 0.08,
                (cw * 0.84).max(0.4),
                ya - yb,
                part_colour(part),
                if h { "" } else { " fill-opacity=\"0.3\"" }
            );
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    o
}

/// Pauses longer than this are drawn this long on time axes.
const PAUSE_SHOWN_S: f64 = 120.0;
const TIME_LABEL: &str =
    "elapsed time since the first request (pauses over 2 min shortened to 2 min: dashed lines)";

fn time_frame(d: &Dashboard<'_>, h: f64, y: (f64, f64)) -> (Frame, TimeAxis) {
    let times: Vec<f64> = d.sel.requests.iter().map(|r| r.t).collect();
    let ax = TimeAxis::new(&times, PAUSE_SHOWN_S);
    let end = ax.end().max(1.0);
    (Frame::new(W, h, (0.0, end * 1.02), y), ax)
}

/// Dashed lines where a pause was shortened, with its real length on hover.
fn pause_marks(f: &Frame, ax: &TimeAxis) -> String {
    let mut o = String::new();
    for (x, len) in ax.breaks() {
        let x = f.sx(x);
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"3 3\"><title>pause of {}</title></line>",
            f.top,
            f.top + f.plot_h(),
            clock(len)
        );
    }
    o
}

fn hit_rate_chart(d: &Dashboard<'_>) -> String {
    let sel = d.sel;
    let (f, ax) = time_frame(d, 320.0, (0.0, 100.0));
    let mut o = f.open("Cache hit rate per request over time");
    o.push_str(&f.legend(&[
        (SIM, "simulated", 1.0),
        (API, "API (cache read share)", 1.0),
        ("#222", "simulated, cumulative", 1.0),
    ]));
    o.push_str(&f.axes(&ax.ticks(10), &f.y_ticks("%"), TIME_LABEL, "hit rate (%)"));
    o.push_str(&pause_marks(&f, &ax));
    let (mut cum_read, mut cum_in) = (0u64, 0u64);
    let mut path = String::new();
    for (i, r) in sel.requests.iter().enumerate() {
        let h = d.main.per_request.get(i).copied().unwrap_or_default();
        let x = f.sx(ax.map(r.t));
        let sim = if r.tokens_in > 0 {
            h.read_tokens as f64 / r.tokens_in as f64 * 100.0
        } else {
            0.0
        };
        cum_read += h.read_tokens as u64;
        cum_in += r.tokens_in as u64;
        let cum = if cum_in > 0 {
            cum_read as f64 / cum_in as f64 * 100.0
        } else {
            0.0
        };
        let _ = write!(
            path,
            "{}{x:.1},{:.1}",
            if i == 0 { "M" } else { "L" },
            f.sy(cum)
        );
        let _ = write!(
            o,
            "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{SIM}\"><title>request {} at {}: simulated {sim:.1}%</title></circle>",
            f.sy(sim),
            i + 1,
            clock(r.t)
        );
        if let Some(a) = r.api_read_pct() {
            let y = f.sy(a);
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"4\" height=\"4\" fill=\"{API}\"><title>request {}: API {a:.1}%</title></rect>",
                x - 2.0,
                y - 2.0,
                i + 1
            );
        }
    }
    let _ = write!(
        o,
        "<path d=\"{path}\" fill=\"none\" stroke=\"#222\" stroke-width=\"1.2\"/></svg>"
    );
    o
}

fn context_chart(d: &Dashboard<'_>) -> String {
    let sel = d.sel;
    // Lanes: sources with requests, at most 24 (the rest share the last lane).
    let mut lanes: Vec<usize> = Vec::new();
    for r in &sel.requests {
        if !lanes.contains(&r.source) {
            lanes.push(r.source);
        }
    }
    lanes.sort();
    let shown = lanes.len().min(24);
    let lane_of = |s: usize| lanes.iter().position(|&l| l == s).unwrap_or(0).min(23);
    let ymax = sel
        .requests
        .iter()
        .map(|r| r.tokens_in)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let lane_h = 16.0;
    let plot_h = 220.0;
    let total_h = 40.0 + plot_h + 34.0 + shown as f64 * lane_h + 30.0;
    let (mut f, ax) = time_frame(d, total_h, (0.0, ymax * 1.05));
    f.bottom = total_h - f.top - plot_h;
    let mut o = f.open("Context size (input tokens) per request over time, by agent");
    let mut items: Vec<(&str, &str, f64)> = Vec::new();
    for (k, &s) in lanes.iter().take(shown).enumerate() {
        if k < 8 {
            items.push((LANES[k % LANES.len()], sel.sources[s].label.as_str(), 1.0));
        }
    }
    o.push_str(&f.legend(&items));
    o.push_str(&f.axes(&ax.ticks(10), &f.y_ticks(""), TIME_LABEL, "input tokens"));
    o.push_str(&pause_marks(&f, &ax));
    let mut paths: Vec<String> = vec![String::new(); shown];
    for (i, r) in sel.requests.iter().enumerate() {
        let k = lane_of(r.source);
        let colour = LANES[k % LANES.len()];
        let (x, y) = (f.sx(ax.map(r.t)), f.sy(r.tokens_in as f64));
        let p = &mut paths[k];
        let _ = write!(p, "{}{x:.1},{y:.1}", if p.is_empty() { "M" } else { "L" });
        let _ = write!(
            o,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.4\" fill=\"{colour}\"><title>request {} ({}) at {}: {} tokens in</title></circle>",
            i + 1,
            esc(&sel.sources[r.source].label),
            clock(r.t),
            r.tokens_in
        );
    }
    for (k, p) in paths.iter().enumerate() {
        let _ = write!(
            o,
            "<path d=\"{p}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1\" stroke-opacity=\"0.6\"/>",
            LANES[k % LANES.len()]
        );
    }
    // Lanes.
    let lane_top = f.top + f.plot_h() + 34.0;
    for (k, &s) in lanes.iter().take(shown).enumerate() {
        let y = lane_top + k as f64 * lane_h;
        let label = if k == 23 && lanes.len() > 24 {
            "others"
        } else {
            sel.sources[s].label.as_str()
        };
        let _ = write!(
            o,
            "<text class=\"tk\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><line class=\"g\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            f.left - 6.0,
            y + 11.0,
            esc(label),
            f.left,
            f.left + f.plot_w(),
            y + lane_h - 1.0,
            y + lane_h - 1.0
        );
    }
    for r in &sel.requests {
        let k = lane_of(r.source);
        let x = f.sx(ax.map(r.t));
        let w = (f.sx(ax.map(r.t + r.api_time.unwrap_or(0.0))) - x).max(2.0);
        let _ = write!(
            o,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.0}\" fill=\"{}\"/>",
            lane_top + k as f64 * lane_h + 2.0,
            lane_h - 5.0,
            LANES[k % LANES.len()]
        );
    }
    o.push_str("</svg>");
    o
}

fn ttl_charts(d: &Dashboard<'_>) -> String {
    let labels: Vec<&str> = TTLS.iter().map(|t| t.0).chain(["∞"]).collect();
    let n = d.by_ttl.len().min(labels.len());
    let series: [(&str, &str, Vec<f64>, &str); 3] = [
        (
            "Hit rate vs TTL",
            "hit rate (%)",
            d.by_ttl.iter().map(SimResult::hit_rate).collect(),
            "%",
        ),
        (
            "Peak working set vs TTL",
            "peak working set (tokens)",
            d.by_ttl
                .iter()
                .map(|s| (s.peak_blocks * d.sel.block_size) as f64)
                .collect(),
            "",
        ),
        (
            "Prefills per distinct block vs TTL",
            "prefills per block",
            d.by_ttl.iter().map(SimResult::prefills_per_block).collect(),
            "",
        ),
    ];
    let mut o = String::new();
    for (title, ylabel, vals, suffix) in series {
        let ymax = vals.iter().copied().fold(0.0f64, f64::max);
        let ymax = if suffix == "%" {
            100.0
        } else {
            (ymax * 1.1).max(1.0)
        };
        let f = Frame::new(W, 260.0, (-0.5, n as f64 - 0.5), (0.0, ymax));
        o.push_str(&f.open(title));
        let xt: Vec<(f64, String)> = labels
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, l)| (i as f64, l.to_string()))
            .collect();
        o.push_str(&f.axes(&xt, &f.y_ticks(suffix), "TTL", ylabel));
        let mut path = String::new();
        for (i, v) in vals.iter().take(n).enumerate() {
            let (x, y) = (f.sx(i as f64), f.sy(*v));
            let _ = write!(path, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" });
            let shown = if suffix == "%" {
                format!("{v:.1}%")
            } else if *v < 100.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.0}")
            };
            let _ = write!(
                o,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{SIM}\"><title>TTL {}: {shown}</title></circle><text class=\"tk\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                labels[i],
                y - 8.0,
                if suffix == "%" { format!("{v:.0}%") } else { short(*v) }
            );
        }
        let _ = write!(
            o,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{SIM}\" stroke-width=\"1.5\"/></svg>"
        );
    }
    o
}

fn working_chart(d: &Dashboard<'_>) -> String {
    let bs = d.sel.block_size as f64;
    let ymax = d
        .working
        .iter()
        .map(|(_, s)| s.peak_blocks as f64 * bs)
        .fold(1.0, f64::max);
    let (f, ax) = time_frame(d, 320.0, (0.0, ymax * 1.05));
    let mut o = f.open("Working set over time (blocks alive × block size)");
    let items: Vec<(&str, &str, f64)> = d
        .working
        .iter()
        .enumerate()
        .map(|(k, (l, _))| (LANES[k % LANES.len()], *l, 1.0))
        .collect();
    o.push_str(&f.legend(&items));
    o.push_str(&f.axes(
        &ax.ticks(10),
        &f.y_ticks(""),
        TIME_LABEL,
        "working set (tokens)",
    ));
    o.push_str(&pause_marks(&f, &ax));
    let cols = f.plot_w().round().max(1.0) as usize;
    for (k, (label, s)) in d.working.iter().enumerate() {
        // Per pixel column: the most blocks alive within it (peaks stay visible).
        let mut colmax: Vec<Option<usize>> = vec![None; cols + 1];
        let mut cur = 0usize;
        let mut ev = s.working_set.iter().peekable();
        for (c, slot) in colmax.iter_mut().enumerate() {
            let x_end = f.x.0 + (c as f64 + 1.0) / cols as f64 * (f.x.1 - f.x.0);
            let mut m = cur;
            while let Some(&&(t, v)) = ev.peek() {
                if ax.map(t) > x_end {
                    break;
                }
                cur = v;
                m = m.max(v);
                ev.next();
            }
            *slot = Some(m);
        }
        let mut path = String::new();
        for (c, v) in colmax.iter().enumerate() {
            let Some(v) = v else { continue };
            let x = f.left + c as f64;
            let y = f.sy(*v as f64 * bs);
            let _ = write!(path, "{}{x:.0},{y:.1}", if c == 0 { "M" } else { "L" });
        }
        let _ = write!(
            o,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.4\"><title>TTL {label}: peak {} tokens</title></path>",
            LANES[k % LANES.len()],
            (s.peak_blocks as f64 * bs) as u64
        );
    }
    o.push_str("</svg>");
    o
}

/// index.html of `all`: one link per dashboard with its headline numbers.
pub fn index(rows: &[(String, String, usize, f64)]) -> String {
    let mut o = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cache dashboards</title><style>{CSS}</style></head><body><h1>Cache dashboards</h1><table><tr><th>conversation</th><th>requests</th><th>simulated hit rate</th></tr>"
    );
    for (id, file, n, rate) in rows {
        let _ = write!(
            o,
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"n\">{n}</td><td class=\"n\">{rate:.1}%</td></tr>",
            esc(file),
            esc(id)
        );
    }
    o.push_str("</table></body></html>\n");
    o
}
