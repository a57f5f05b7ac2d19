//! The statistics report of a dashboard: counts, the input split under the
//! chosen TTL beside the API's, output, per-model figures, context length and growth,
//! timing, and the TTL table. Built once as sections of [`Table`]s, rendered as aligned
//! text (`--text-only`, `<base>_stats.txt`) or as HTML tables (html.rs).

use std::fmt::Write as _;

use rustc_hash::FxHashMap;

use super::cache::SimResult;
use super::select::Selection;
use crate::conversations::aligned;
use crate::report::table::{Cell, Table};
use crate::report::units::{duration_text, ttl_text};
use crate::stats::percentile;

/// TTLs of the TTL table and chart: (label, seconds).
pub const TTLS: [(&str, f64); 14] = [
    ("1 min", 60.0),
    ("2 min", 120.0),
    ("3 min", 180.0),
    ("4 min", 240.0),
    ("5 min", 300.0),
    ("10 min", 600.0),
    ("15 min", 900.0),
    ("30 min", 1800.0),
    ("1 h", 3600.0),
    ("2 h", 7200.0),
    ("4 h", 14400.0),
    ("8 h", 28800.0),
    ("24 h", 86400.0),
    ("72 h", 259200.0),
];

/// One titled table with optional note lines under it.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub table: Table,
    pub notes: Vec<String>,
}

fn pct(part: f64, whole: f64) -> Cell {
    if whole > 0.0 {
        Cell::Num(part / whole * 100.0, 1, true)
    } else {
        Cell::Empty
    }
}

fn num(x: f64, d: usize) -> Cell {
    Cell::Num(x, d, false)
}

/// Mean, P25, P50, P75, P90, max of a sample; empty cells when there is none.
fn spread(mut v: Vec<f64>, d: usize) -> Vec<Cell> {
    if v.is_empty() {
        return vec![Cell::Empty; 6];
    }
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let mut cells = vec![num(mean, d)];
    for p in [25.0, 50.0, 75.0, 90.0] {
        cells.push(num(percentile(&v, p), d));
    }
    cells.push(num(v[v.len() - 1], d));
    cells
}

/// Build the report. `main` is the simulation under the chosen TTL; `by_ttl` follows
/// [`TTLS`] and ends with the infinite cache.
pub fn report(sel: &Selection, main: &SimResult, by_ttl: &[SimResult]) -> Vec<Section> {
    let reqs = &sel.requests;
    let mut out = Vec::new();

    let mut t = Table::new(&["", "count"]);
    let streaming = reqs.iter().filter(|r| r.streaming).count();
    t.push("Requests", vec![num(reqs.len() as f64, 0)]);
    t.push("Streaming", vec![num(streaming as f64, 0)]);
    t.push(
        "Non-streaming",
        vec![num((reqs.len() - streaming) as f64, 0)],
    );
    let used: std::collections::BTreeSet<usize> = reqs.iter().map(|r| r.source).collect();
    let subs = used.iter().filter(|&&s| sel.sources[s].subagent).count();
    t.push("Sub-agents with requests", vec![num(subs as f64, 0)]);
    if sel.pairs_merged > 0 {
        t.push(
            "Old-proxy pairs counted once",
            vec![num(sel.pairs_merged as f64, 0)],
        );
    }
    t.push("Rows skipped", vec![num(sel.skipped as f64, 0)]);
    let span = reqs.last().map_or(0.0, |r| r.t);
    t.push("Span", vec![Cell::Text(duration_text(span))]);
    out.push(Section {
        title: "Requests".into(),
        table: t,
        notes: vec![],
    });

    // Input split: simulated (cl100k tokens) beside the API's own usage.
    let sim_read = main.read_tokens as f64;
    let sim_total = main.input_tokens as f64;
    let (mut api_read, mut api_create, mut api_unc, mut api_cache) = (0u64, 0u64, 0u64, false);
    for r in reqs {
        api_read += r.usage.cache_read.unwrap_or(0);
        api_create += r.usage.cache_creation.unwrap_or(0);
        api_unc += r.usage.input.unwrap_or(0);
        api_cache |= r.usage.has_cache_fields();
    }
    let api_total = (api_read + api_create + api_unc) as f64;
    let mut t = Table::new(&["Input tokens", "simulated", "share", "API", "share"]);
    let rows = [
        ("Cache read", sim_read, api_read as f64),
        ("Cache creation", sim_total - sim_read, api_create as f64),
        ("Uncached", 0.0, api_unc as f64),
        ("Total", sim_total, api_total),
    ];
    for (label, s, a) in rows {
        t.push(
            label,
            vec![num(s, 0), pct(s, sim_total), num(a, 0), pct(a, api_total)],
        );
    }
    let mut notes = Vec::new();
    if api_total > 0.0 {
        notes.push(format!(
            "Total accuracy: {:.1}% (simulated total / API total; the tokenizers differ)",
            sim_total / api_total * 100.0
        ));
    }
    if api_cache && api_total > 0.0 && api_read > 0 {
        let sim_rate = sim_read / sim_total.max(1.0);
        let api_rate = api_read as f64 / api_total;
        notes.push(format!(
            "Cache-read accuracy: {:.1}% (simulated read share {:.1}% / API read share {:.1}%)",
            sim_rate / api_rate * 100.0,
            sim_rate * 100.0,
            api_rate * 100.0
        ));
    } else {
        notes.push("Cache-read accuracy: n/a (the API reported no cache reads)".into());
    }
    notes.push(
        "The model writes every missed block, so nothing stays uncached in the simulation.".into(),
    );
    out.push(Section {
        title: format!("Input tokens under {}", ttl_text(main.ttl)),
        table: t,
        notes,
    });

    let out_total: u64 = reqs.iter().map(|r| r.out).sum();
    let mut t = Table::new(&["Output", "value"]);
    t.push("Output tokens", vec![num(out_total as f64, 0)]);
    t.push(
        "Output tokens per request (mean)",
        vec![if reqs.is_empty() {
            Cell::Empty
        } else {
            num(out_total as f64 / reqs.len() as f64, 0)
        }],
    );
    let ratio = |x: f64| {
        if out_total > 0 {
            num(x / out_total as f64, 1)
        } else {
            Cell::Empty
        }
    };
    t.push(
        "Input/output ratio (simulated input)",
        vec![ratio(sim_total)],
    );
    t.push("Input/output ratio (API input)", vec![ratio(api_total)]);
    out.push(Section {
        title: "Output tokens".into(),
        table: t,
        notes: vec![],
    });

    let mut models: Vec<(String, usize, u64, u64)> = Vec::new();
    let mut at: FxHashMap<&str, usize> = FxHashMap::default();
    for r in reqs {
        let i = *at.entry(r.model.as_str()).or_insert_with(|| {
            models.push((r.model.clone(), 0, 0, 0));
            models.len() - 1
        });
        models[i].1 += 1;
        models[i].2 += r.tokens_in as u64;
        models[i].3 += r.out;
    }
    models.sort();
    let mut t = Table::new(&["Model", "requests", "input tokens", "output tokens"]);
    for (m, n, i, o) in models {
        t.push(
            &m,
            vec![num(n as f64, 0), num(i as f64, 0), num(o as f64, 0)],
        );
    }
    out.push(Section {
        title: "Per model".into(),
        table: t,
        notes: vec![],
    });

    let header = ["", "mean", "P25", "P50", "P75", "P90", "max"];
    let mut t = Table::new(&header);
    t.push(
        "Context length (tokens)",
        spread(reqs.iter().map(|r| r.tokens_in as f64).collect(), 0),
    );
    let mut prev: FxHashMap<usize, usize> = FxHashMap::default();
    let mut growth = Vec::new();
    for r in reqs {
        if let Some(p) = prev.insert(r.source, r.tokens_in) {
            growth.push(r.tokens_in as f64 - p as f64);
        }
    }
    t.push("Growth per turn (tokens)", spread(growth, 0));
    out.push(Section {
        title: "Context length per request".into(),
        table: t,
        notes: vec!["Growth per turn: change from the previous request of the same agent (negative after a compaction).".into()],
    });

    let mut t = Table::new(&header);
    let gaps: Vec<f64> = reqs.windows(2).map(|w| w[1].t - w[0].t).collect();
    t.push("Time between requests (s)", spread(gaps, 1));
    t.push(
        "Think time (s)",
        spread(reqs.iter().filter_map(|r| r.think).collect(), 1),
    );
    t.push(
        "API time (s)",
        spread(reqs.iter().filter_map(|r| r.api_time).collect(), 1),
    );
    out.push(Section {
        title: "Timing".into(),
        table: t,
        notes: vec![],
    });

    let mut t = Table::new(&[
        "TTL",
        "hit rate",
        "peak working set (tokens)",
        "prefills per block",
        "prefilled once",
    ]);
    for (i, s) in by_ttl.iter().enumerate() {
        let label = TTLS.get(i).map_or("infinite", |x| x.0);
        t.push(
            label,
            vec![
                Cell::Num(s.hit_rate(), 1, true),
                num((s.peak_blocks * sel.block_size) as f64, 0),
                num(s.prefills_per_block(), 2),
                Cell::Num(s.once_pct(), 1, true),
            ],
        );
    }
    out.push(Section {
        title: "Cache by TTL".into(),
        table: t,
        notes: vec![format!(
            "Block size {} tokens. Peak working set: most blocks alive at one moment × block size. Prefills per block: block writes / distinct blocks (1.00 = each block computed once).",
            sel.block_size
        )],
    });
    out
}

/// The report as aligned plain text.
pub fn text(title: &str, sections: &[Section]) -> String {
    let mut o = format!("{title}\n{}\n", "=".repeat(title.chars().count()));
    for s in sections {
        let _ = write!(
            o,
            "\n{}\n{}\n",
            s.title,
            "-".repeat(s.title.chars().count())
        );
        o.push_str(&aligned(&s.table));
        for n in &s.notes {
            let _ = writeln!(o, "{n}");
        }
    }
    o
}
