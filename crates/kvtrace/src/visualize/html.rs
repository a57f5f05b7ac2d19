//! The dashboard: one self-contained HTML page per selection, inline CSS and
//! inline SVG only (no script, no external URL), readable at 1280×800. Charts:
//! input tokens per request (simulated vs API split), output tokens, context composition
//! coloured hit/miss, hit rate over time, context size over time with agent lanes, cache
//! vs TTL (hit rate, peak working set, prefills), working set over time, and the report.
//!
//! Long selections are drawn in bars of 2, 5, 10, 20, … consecutive requests (at most
//! [`MAX_COLUMNS`] bars), and the charts then say so ("per 10 requests"), so the page
//! stays a few hundred KB. Time charts share one left margin (room for the lane labels)
//! so their axes line up; they mark at most [`MAX_PAUSE_MARKS`] pauses (the longest, over
//! a round threshold). The context chart draws up to [`MAX_LANES`] lanes (one per
//! conversation in `combined`, one per agent otherwise) and grows with them.

use std::fmt::Write as _;

use super::cache::SimResult;
use super::select::{Part, Selection};
use rustc_hash::FxHashMap;

use super::svg::{
    duration, ellipsize, esc, short, text_width, ticks, Frame, Key, Px, Swatch, TimeAxis, TICK_PX,
};
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
const PAUSE: &str = "#888";
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
    let cols = Columns::new(n);
    let lanes = Lanes::new(sel);
    let _ = write!(
        o,
        "<h2 id=\"tokens\">Input and output tokens per {}</h2><p class=\"note\">Left bar of each pair: simulated split (cl100k tokens); right bar, lighter: the API's own usage. Green = cache read, orange = cache creation, grey = uncached.{}</p>",
        cols.unit(),
        cols.note()
    );
    o.push_str(&tokens_chart(d, &cols));
    o.push_str(&output_chart(d, &cols));
    let _ = write!(
        o,
        "<h2 id=\"composition\">What the context is made of</h2><p class=\"note\">Each column is {}, from its first token (bottom) to its last; solid = simulated cache hit, pale = miss (prefilled).</p>",
        if cols.per == 1 {
            "one request's context".to_owned()
        } else {
            format!(
                "the context of one request in {p}: the last of each {p} consecutive requests",
                p = cols.per
            )
        }
    );
    o.push_str(&composition_chart(d, &cols));
    o.push_str("<h2 id=\"hitrate\">Cache hit rate over time</h2>");
    o.push_str(&hit_rate_chart(d, &lanes));
    let _ = write!(
        o,
        "<h2 id=\"context\">Context size over time</h2><p class=\"note\">{}</p>",
        lanes.note(sel)
    );
    o.push_str(&context_chart(d, &lanes));
    o.push_str("<h2 id=\"ttl\">Cache vs TTL</h2><p class=\"note\">The same requests simulated under each TTL (∞ = never expires).</p>");
    o.push_str(&ttl_charts(d));
    o.push_str("<h2 id=\"working\">Working set over time</h2><p class=\"note\">Blocks alive (used within the TTL) × block size, for several TTLs.</p>");
    o.push_str(&working_chart(d, &lanes));
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

/// Requests per bar: the smallest of 1, 2, 5, 10, 20, 50, … that keeps the bars at most
/// [`MAX_COLUMNS`], so "per 10 requests" is a round, truthful label.
pub fn bucket_size(n: usize) -> usize {
    let raw = n.div_ceil(MAX_COLUMNS).max(1);
    let mut mag = 1usize;
    loop {
        for m in [1usize, 2, 5] {
            let size = m.saturating_mul(mag);
            if size >= raw {
                return size;
            }
        }
        mag = mag.saturating_mul(10);
    }
}

/// Request index ranges drawn as one bar each.
struct Columns {
    /// Requests per bar (the last bar may hold fewer).
    per: usize,
    ranges: Vec<std::ops::Range<usize>>,
}

impl Columns {
    fn new(n: usize) -> Columns {
        let per = bucket_size(n);
        Columns {
            per,
            ranges: (0..n.div_ceil(per))
                .map(|i| i * per..((i + 1) * per).min(n))
                .collect(),
        }
    }

    /// `request` or `10 requests`.
    fn unit(&self) -> String {
        if self.per == 1 {
            "request".into()
        } else {
            format!("{} requests", self.per)
        }
    }

    /// X-axis label of the request charts.
    fn xlabel(&self, what: &str) -> String {
        if self.per == 1 {
            "request (in time order)".into()
        } else {
            format!("request (in time order); {what}")
        }
    }

    /// What the bars hold, for the notes: "" when one bar is one request.
    fn note(&self) -> String {
        let last = self.ranges.last().map_or(0, |r| r.len());
        match (self.per, last == self.per) {
            (1, _) => String::new(),
            (p, true) => format!(" Each bar sums {p} consecutive requests."),
            (p, false) => format!(" Each bar sums {p} consecutive requests (the last one {last})."),
        }
    }
}

fn range_label(r: &std::ops::Range<usize>) -> String {
    if r.len() == 1 {
        format!("request {}", r.start + 1)
    } else {
        format!("requests {}–{}", r.start + 1, r.end)
    }
}

/// Ticks at round request numbers (1, then multiples of a round step), each on the bar
/// holding that request.
fn request_axis(cols: &Columns, n: usize) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for v in ticks(0.0, n.max(1) as f64, 10) {
        if v.fract() != 0.0 || v < 0.0 {
            continue;
        }
        let req = (v as usize).max(1);
        if req > n || out.last().is_some_and(|(_, l)| *l == req.to_string()) {
            continue;
        }
        out.push((((req - 1) / cols.per) as f64 + 0.5, req.to_string()));
    }
    out
}

fn tokens_chart(d: &Dashboard<'_>, cols: &Columns) -> String {
    let sel = d.sel;
    let mut stacks = Vec::new();
    let mut ymax: f64 = 1.0;
    for b in &cols.ranges {
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
    let n_cols = cols.ranges.len().max(1);
    let mut f = Frame::new(W, 320.0, (0.0, n_cols as f64), (0.0, ymax * 1.05));
    let mut o = f.open(
        &format!("Input tokens per {}: simulated vs API", cols.unit()),
        &[
            Key::boxed(READ, "cache read"),
            Key::boxed(CREATE, "cache creation"),
            Key::boxed(UNCACHED, "uncached"),
        ],
    );
    o.push_str(&f.axes(
        &request_axis(cols, sel.requests.len()),
        &f.y_ticks(""),
        &cols.xlabel(&format!("one pair of bars = {}", cols.unit())),
        &if cols.per == 1 {
            "input tokens".to_owned()
        } else {
            format!("input tokens per {}", cols.unit())
        },
    ));
    let cw = f.plot_w() / n_cols as f64;
    for (k, (b, (s, a))) in cols.ranges.iter().zip(&stacks).enumerate() {
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
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"{opacity}\"/>",
                    Px(x + cw * (0.05 + bar * 0.9)),
                    Px(y0),
                    Px((cw * 0.42).max(0.4)),
                    Px((y1 - y0).max(0.3))
                );
            }
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    o
}

fn output_chart(d: &Dashboard<'_>, cols: &Columns) -> String {
    let sel = d.sel;
    let vals: Vec<u64> = cols
        .ranges
        .iter()
        .map(|b| sel.requests[b.clone()].iter().map(|r| r.out).sum())
        .collect();
    let ymax = vals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n_cols = cols.ranges.len().max(1);
    let mut f = Frame::new(W, 200.0, (0.0, n_cols as f64), (0.0, ymax * 1.05));
    let mut o = f.open(&format!("Output tokens per {}", cols.unit()), &[]);
    o.push_str(&f.axes(
        &request_axis(cols, sel.requests.len()),
        &f.y_ticks(""),
        &cols.xlabel(&format!("one bar = {}", cols.unit())),
        &if cols.per == 1 {
            "output tokens".to_owned()
        } else {
            format!("output tokens per {}", cols.unit())
        },
    ));
    let cw = f.plot_w() / n_cols as f64;
    for (k, (b, v)) in cols.ranges.iter().zip(&vals).enumerate() {
        let y = f.sy(*v as f64);
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"#5e35b1\"><title>{}: {} output tokens</title></rect>",
            Px(f.sx(k as f64) + cw * 0.1),
            Px(y),
            Px((cw * 0.8).max(0.4)),
            Px((f.sy(0.0) - y).max(0.3)),
            range_label(b),
            v
        );
    }
    o.push_str("</svg>");
    o
}

fn composition_chart(d: &Dashboard<'_>, cols: &Columns) -> String {
    let sel = d.sel;
    // A bar of several requests is drawn as its last request (a context is not a sum).
    let reps: Vec<usize> = cols.ranges.iter().map(|b| b.end - 1).collect();
    let ymax = reps
        .iter()
        .map(|&i| sel.requests[i].tokens_in)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n_cols = cols.ranges.len().max(1);
    let mut f = Frame::new(W, 360.0, (0.0, n_cols as f64), (0.0, ymax * 1.05));
    let title = if cols.per == 1 {
        "Context composition per request, hit (solid) or miss (pale)".to_owned()
    } else {
        format!(
            "Context composition of 1 request in {} (the last of each bar), hit (solid) or miss (pale)",
            cols.per
        )
    };
    let legend: Vec<Key> = Part::ALL
        .iter()
        .map(|p| Key::boxed(part_colour(*p), p.name()))
        .collect();
    let mut o = f.open(&title, &legend);
    o.push_str(&f.axes(
        &request_axis(cols, sel.requests.len()),
        &f.y_ticks(""),
        &cols.xlabel(&format!(
            "one column = the last of {} consecutive requests",
            cols.per
        )),
        "context position (tokens)",
    ));
    let cw = f.plot_w() / n_cols as f64;
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
                "<rect x=\"{:.1}\" y=\"{:.0}\" width=\"{:.2}\" height=\"{:.0}\" fill=\"{}\"{}/>",
                Px(f.sx(k as f64) + cw * 0.08),
                Px(yb),
                Px((cw * 0.84).max(0.4)),
                Px(ya - yb),
                part_colour(part),
                if h { "" } else { " fill-opacity=\"0.3\"" }
            );
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    o
}

/// Most lanes drawn one by one. Beyond, the lanes with the fewest requests share the
/// last lane, whose label says how many it holds.
pub const MAX_LANES: usize = 100;
/// Lane labels get at most this much room (px); longer ones are ellipsized.
const MAX_LABEL_W: f64 = 160.0;

/// The agent lanes of a selection (and the left margin of every time chart, so their
/// time axes line up).
struct Lanes {
    /// Shown label and tooltip of each lane, in drawing order.
    labels: Vec<(String, String)>,
    /// Lane of each source (`None`: the source has no request).
    of_source: Vec<Option<usize>>,
    /// Groups sharing the last lane (0: none).
    lumped: usize,
    /// `combined`: one lane per conversation, its sub-agents in it.
    by_conversation: bool,
    /// Left margin fitting the widest label.
    left: f64,
}

/// Requests of one would-be lane.
struct Group {
    label: String,
    conversation: String,
    requests: usize,
    /// Sources with requests, and how many of those are sub-agents.
    agents: usize,
    subagents: usize,
    /// Smallest source index (agent lanes keep source order: parent, SA1, SA2, …).
    first_source: usize,
}

impl Lanes {
    fn new(sel: &Selection) -> Lanes {
        let by_conversation = sel.name == "combined";
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: Vec<Option<usize>> = vec![None; sel.sources.len()];
        let mut by_key: FxHashMap<&str, usize> = FxHashMap::default();
        for r in &sel.requests {
            let Some(src) = sel.sources.get(r.source) else {
                continue;
            };
            let g = match group_of[r.source] {
                Some(g) => g,
                None => {
                    let existing = if by_conversation {
                        by_key.get(src.conversation.as_str()).copied()
                    } else {
                        None
                    };
                    let g = existing.unwrap_or_else(|| {
                        let label = if by_conversation && !src.conversation.is_empty() {
                            src.conversation.chars().take(8).collect()
                        } else {
                            src.label.clone()
                        };
                        groups.push(Group {
                            label,
                            conversation: src.conversation.clone(),
                            requests: 0,
                            agents: 0,
                            subagents: 0,
                            first_source: r.source,
                        });
                        by_key.insert(src.conversation.as_str(), groups.len() - 1);
                        groups.len() - 1
                    });
                    group_of[r.source] = Some(g);
                    groups[g].agents += 1;
                    groups[g].subagents += usize::from(src.subagent);
                    groups[g].first_source = groups[g].first_source.min(r.source);
                    g
                }
            };
            groups[g].requests += 1;
        }
        // Drawing order: conversations by first request, rows of no conversation last;
        // agents in source order.
        let mut order: Vec<usize> = (0..groups.len()).collect();
        if by_conversation {
            order.sort_by_key(|&g| groups[g].conversation.is_empty());
        } else {
            order.sort_by_key(|&g| groups[g].first_source);
        }
        let mut lumped_groups: Vec<usize> = Vec::new();
        if order.len() > MAX_LANES {
            let mut by_size = order.clone();
            by_size.sort_by_key(|&g| std::cmp::Reverse(groups[g].requests));
            lumped_groups = by_size.split_off(MAX_LANES - 1);
            order.retain(|g| !lumped_groups.contains(g));
        }
        let mut lane_of_group = vec![0usize; groups.len()];
        let mut labels: Vec<(String, String)> = Vec::new();
        for (k, &g) in order.iter().enumerate() {
            lane_of_group[g] = k;
            let gr = &groups[g];
            let tip = if by_conversation && gr.conversation.is_empty() {
                format!(
                    "{}: {} requests named in no session log (quota checks, titles, …)",
                    gr.label, gr.requests
                )
            } else if by_conversation {
                format!(
                    "conversation {}: {} requests, {} sub-agent{} with requests",
                    gr.conversation,
                    gr.requests,
                    gr.subagents,
                    if gr.subagents == 1 { "" } else { "s" }
                )
            } else {
                format!("{}: {} requests", gr.label, gr.requests)
            };
            labels.push((gr.label.clone(), tip));
        }
        let lumped = lumped_groups.len();
        if lumped > 0 {
            let requests: usize = lumped_groups.iter().map(|&g| groups[g].requests).sum();
            let what = if by_conversation {
                "conversations"
            } else {
                "agents"
            };
            for &g in &lumped_groups {
                lane_of_group[g] = labels.len();
            }
            labels.push((
                format!("{lumped} others"),
                format!("{lumped} {what} with the fewest requests ({requests} requests) share this lane"),
            ));
        }
        let of_source = group_of
            .iter()
            .map(|g| g.map(|g| lane_of_group[g]))
            .collect();
        let widest = labels
            .iter()
            .map(|(l, _)| text_width(l, TICK_PX, false))
            .fold(0.0, f64::max)
            .min(MAX_LABEL_W);
        let labels = labels
            .into_iter()
            .map(|(l, tip)| (ellipsize(&l, TICK_PX, MAX_LABEL_W), tip))
            .collect();
        Lanes {
            labels,
            of_source,
            lumped,
            by_conversation,
            left: (widest + 16.0).max(70.0),
        }
    }

    fn lane(&self, source: usize) -> usize {
        self.of_source.get(source).copied().flatten().unwrap_or(0)
    }

    fn colour(k: usize) -> &'static str {
        LANES[k % LANES.len()]
    }

    /// The note above the context chart.
    fn note(&self, sel: &Selection) -> String {
        let n = self.labels.len();
        let mut o = if self.by_conversation {
            format!("{n} lane{} below the chart: one per conversation, in order of its first request; tall bars are the conversation's own requests, short bars its sub-agents'. Lane <code>other</code>: rows no session log names.", if n == 1 { "" } else { "s" })
        } else {
            format!(
                "{n} lane{} below the chart: one per agent (parent, then sub-agents in spawn order).",
                if n == 1 { "" } else { "s" }
            )
        };
        if self.lumped > 0 {
            let what = if self.by_conversation {
                "conversations"
            } else {
                "agents"
            };
            let _ = write!(
                o,
                " Only {MAX_LANES} lanes are drawn: the {} {what} with the fewest requests share the last one.",
                self.lumped
            );
        }
        let _ = write!(
            o,
            " Lines join the requests of one agent{}. A lane bar is as wide as the request's API time (at least 2 px).",
            if sel.name == "combined" {
                " (never across conversations, and not the rows of no conversation)"
            } else {
                ""
            }
        );
        o
    }
}

/// Pauses longer than this are drawn this long on time axes.
const PAUSE_SHOWN_S: f64 = 120.0;
/// Most pause markers per chart: only the pauses over a round threshold are marked.
pub const MAX_PAUSE_MARKS: usize = 12;
const TIME_LABEL: &str =
    "elapsed time since the first request (every pause over 2 min is shortened to 2 min)";

fn time_frame(d: &Dashboard<'_>, lanes: &Lanes, h: f64, y: (f64, f64)) -> (Frame, TimeAxis) {
    let times: Vec<f64> = d.sel.requests.iter().map(|r| r.t).collect();
    let ax = TimeAxis::new(&times, PAUSE_SHOWN_S);
    let end = ax.end().max(1.0);
    let mut f = Frame::new(W, h, (0.0, end * 1.02), y);
    f.left = lanes.left;
    (f, ax)
}

/// Pause markers: (their legend key, the marked pauses). Only the pauses over a round
/// threshold chosen so that at most [`MAX_PAUSE_MARKS`] remain (or, when the next round
/// threshold leaves none, the [`MAX_PAUSE_MARKS`] longest).
fn pauses(ax: &TimeAxis) -> (Option<Key>, Vec<(f64, f64)>) {
    let p = ax.marked_breaks(MAX_PAUSE_MARKS);
    if p.marked.is_empty() {
        return (None, p.marked);
    }
    let m = p.marked.len();
    let label = if m == p.all {
        format!("pause over {}, shortened", duration(PAUSE_SHOWN_S))
    } else if p.longest_only {
        format!(
            "the {m} longest pauses (all over {}; {} over {})",
            duration(p.over),
            p.all,
            duration(PAUSE_SHOWN_S)
        )
    } else {
        format!(
            "pause over {} ({m} of {} pauses over {})",
            duration(p.over),
            p.all,
            duration(PAUSE_SHOWN_S)
        )
    };
    (Some(Key::new(Swatch::Dash, PAUSE, &label)), p.marked)
}

/// Dashed lines at the marked pauses, with the real length on hover.
fn pause_marks(f: &Frame, marked: &[(f64, f64)]) -> String {
    let mut o = String::new();
    for (x, len) in marked {
        let x = f.sx(*x);
        let _ = write!(
            o,
            "<line class=\"pause\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{PAUSE}\" stroke-dasharray=\"3 3\"><title>pause of {}</title></line>",
            f.top,
            f.top + f.plot_h(),
            clock(*len)
        );
    }
    o
}

fn hit_rate_chart(d: &Dashboard<'_>, lanes: &Lanes) -> String {
    let sel = d.sel;
    let (mut f, ax) = time_frame(d, lanes, 320.0, (0.0, 100.0));
    let (pause_key, marked) = pauses(&ax);
    let mut keys = vec![
        Key::new(Swatch::Dot, SIM, "simulated"),
        Key::boxed(API, "API (cache read share)"),
        Key::new(Swatch::Line, "#222", "simulated, cumulative"),
    ];
    keys.extend(pause_key);
    let mut o = f.open("Cache hit rate per request over time", &keys);
    o.push_str(&f.axes(&ax.ticks(&f), &f.y_ticks("%"), TIME_LABEL, "hit rate (%)"));
    o.push_str(&pause_marks(&f, &marked));
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
        let (px, simp) = (Px(x), Px(sim));
        let _ = write!(
            path,
            "{}{px:.1},{:.1}",
            if i == 0 { "M" } else { "L" },
            Px(f.sy(cum))
        );
        let _ = write!(
            o,
            "<circle cx=\"{px:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{SIM}\"><title>request {} at {}: simulated {simp:.1}%</title></circle>",
            Px(f.sy(sim)),
            i + 1,
            clock(r.t)
        );
        if let Some(a) = r.api_read_pct() {
            let y = f.sy(a);
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"4\" height=\"4\" fill=\"{API}\"><title>request {}: API {:.1}%</title></rect>",
                Px(x - 2.0),
                Px(y - 2.0),
                i + 1,
                Px(a)
            );
        }
    }
    let _ = write!(
        o,
        "<path d=\"{path}\" fill=\"none\" stroke=\"#222\" stroke-width=\"1.2\"/></svg>"
    );
    o
}

fn context_chart(d: &Dashboard<'_>, lanes: &Lanes) -> String {
    let sel = d.sel;
    let n_lanes = lanes.labels.len().max(1);
    let ymax = sel
        .requests
        .iter()
        .map(|r| r.tokens_in)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let lane_h = if n_lanes <= 24 { 16.0 } else { 13.0 };
    let plot_h = 240.0;
    let lanes_gap = 30.0;
    let total_h = 40.0 + plot_h + lanes_gap + n_lanes as f64 * lane_h + 34.0;
    let (mut f, ax) = time_frame(d, lanes, total_h, (0.0, ymax * 1.05));
    f.bottom = total_h - f.top - plot_h;
    let (pause_key, marked) = pauses(&ax);
    let mut keys: Vec<Key> = Vec::new();
    if lanes.labels.len() <= 8 && lanes.lumped == 0 {
        for (k, (label, _)) in lanes.labels.iter().enumerate() {
            keys.push(Key::new(Swatch::Dot, Lanes::colour(k), label));
        }
    } else {
        keys.push(Key::new(
            Swatch::Text,
            "#333",
            "colours: as the lane names below",
        ));
    }
    keys.push(Key::new(Swatch::Line, "#777", "one agent's requests"));
    keys.extend(pause_key);
    let mut o = f.open(
        "Context size (input tokens) per request over time, by agent",
        &keys,
    );
    o.push_str(&f.axes(&ax.ticks(&f), &f.y_ticks(""), TIME_LABEL, "input tokens"));
    o.push_str(&pause_marks(&f, &marked));
    // One line per agent; rows of no conversation (combined) are unrelated: dots only.
    let mut paths: Vec<String> = vec![String::new(); sel.sources.len()];
    let mut dots = String::new();
    for (i, r) in sel.requests.iter().enumerate() {
        let k = lanes.lane(r.source);
        let colour = Lanes::colour(k);
        let (x, y) = (Px(f.sx(ax.map(r.t))), Px(f.sy(r.tokens_in as f64)));
        let src = sel.sources.get(r.source);
        let unrelated = sel.name == "combined" && src.is_none_or(|s| s.conversation.is_empty());
        if let (false, Some(p)) = (unrelated, paths.get_mut(r.source)) {
            let _ = write!(p, "{}{x:.1},{y:.1}", if p.is_empty() { "M" } else { "L" });
        }
        let _ = write!(
            dots,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.4\" fill=\"{colour}\"><title>request {} ({}) at {}: {} tokens in</title></circle>",
            i + 1,
            esc(src.map_or("?", |s| s.label.as_str())),
            clock(r.t),
            r.tokens_in
        );
    }
    for (s, p) in paths.iter().enumerate() {
        if p.is_empty() {
            continue;
        }
        let _ = write!(
            o,
            "<path class=\"agent\" d=\"{p}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1\" stroke-opacity=\"0.55\"/>",
            Lanes::colour(lanes.lane(s))
        );
    }
    o.push_str(&dots);
    // Lanes.
    let lane_top = f.top + f.plot_h() + lanes_gap;
    for (k, (label, tip)) in lanes.labels.iter().enumerate() {
        let y = lane_top + k as f64 * lane_h;
        let _ = write!(
            o,
            "<text class=\"tk ln\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:{}\"><title>{}</title>{}</text><line class=\"g\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            f.left - 8.0,
            y + lane_h - 4.0,
            Lanes::colour(k),
            esc(tip),
            esc(label),
            f.left,
            f.left + f.plot_w(),
            y + lane_h - 0.5,
            y + lane_h - 0.5
        );
    }
    let bar_h = lane_h - 4.0;
    for r in &sel.requests {
        let k = lanes.lane(r.source);
        let x = f.sx(ax.map(r.t));
        let w = (f.sx(ax.map(r.t + r.api_time.unwrap_or(0.0))) - x).max(2.0);
        let sub = lanes.by_conversation && sel.sources.get(r.source).is_some_and(|s| s.subagent);
        let (y, h) = if sub {
            (
                lane_top + k as f64 * lane_h + 2.0 + bar_h * 0.5,
                bar_h * 0.5,
            )
        } else {
            (lane_top + k as f64 * lane_h + 2.0, bar_h)
        };
        let _ = write!(
            o,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
            Lanes::colour(k)
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
        let mut f = Frame::new(W, 260.0, (-0.5, n as f64 - 0.5), (0.0, ymax));
        o.push_str(&f.open(title, &[]));
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

fn working_chart(d: &Dashboard<'_>, lanes: &Lanes) -> String {
    let bs = d.sel.block_size as f64;
    let ymax = d
        .working
        .iter()
        .map(|(_, s)| s.peak_blocks as f64 * bs)
        .fold(1.0, f64::max);
    let (mut f, ax) = time_frame(d, lanes, 320.0, (0.0, ymax * 1.05));
    let (pause_key, marked) = pauses(&ax);
    let mut keys: Vec<Key> = d
        .working
        .iter()
        .enumerate()
        .map(|(k, (l, _))| Key::new(Swatch::Line, LANES[k % LANES.len()], &format!("TTL {l}")))
        .collect();
    keys.extend(pause_key);
    let mut o = f.open("Working set over time (blocks alive × block size)", &keys);
    o.push_str(&f.axes(
        &ax.ticks(&f),
        &f.y_ticks(""),
        TIME_LABEL,
        "working set (tokens)",
    ));
    o.push_str(&pause_marks(&f, &marked));
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
            let x = Px(f.left + c as f64);
            let y = Px(f.sy(*v as f64 * bs));
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
