//! `--timeline`: one line per request in time order, e.g.
//! `STREAM  opus    25,407 tokens in →   205 out | cache: 83.6% | api: 5.8s | think: 4.0s | stop: tool_use  <- SA1`,
//! with a blank line between phases: where the parent fans out to sub-agents, where it
//! resumes from them, and after a user pause of more than 60 s.

use std::fmt::Write as _;

use super::select::{Request, Selection};
use crate::report::units::group_thousands;

/// A pause longer than this (seconds, from the previous request's end) starts a phase.
pub const PAUSE_S: f64 = 60.0;

/// `opus`, `sonnet`, `haiku` or `other`.
pub fn family(model: &str) -> &'static str {
    let m = model.to_ascii_lowercase();
    ["opus", "sonnet", "haiku"]
        .into_iter()
        .find(|f| m.contains(f))
        .unwrap_or("other")
}

/// When the previous request ended: completedAt, else start + api time, else start.
fn end_of(r: &Request, t0_micros: i64) -> f64 {
    match (r.completed_at, r.api_time) {
        (Some(c), _) => (c.micros - t0_micros) as f64 / 1e6,
        (None, Some(a)) => r.t + a,
        _ => r.t,
    }
}

/// Whether `cur` starts a new phase after `prev`.
pub fn new_phase(sel: &Selection, prev: &Request, cur: &Request, t0_micros: i64) -> bool {
    let sub = |r: &Request| sel.sources[r.source].subagent;
    let same_conv = sel.sources[prev.source].conversation == sel.sources[cur.source].conversation;
    (same_conv && sub(prev) != sub(cur)) || cur.t - end_of(prev, t0_micros) > PAUSE_S
}

/// One line for a request.
pub fn line(sel: &Selection, r: &Request) -> String {
    let mut o = format!(
        "{}  {:<6}{:>8} tokens in → {:>5} out",
        if r.streaming { "STREAM" } else { "NONSTR" },
        family(&r.model),
        group_thousands(&r.tokens_in.to_string()),
        group_thousands(&r.out.to_string()),
    );
    match r.api_read_pct() {
        Some(p) => {
            let _ = write!(o, " | cache: {p:.1}%");
        }
        None => o.push_str(" | cache: n/a"),
    }
    if let Some(a) = r.api_time {
        let _ = write!(o, " | api: {a:.1}s");
    }
    if let Some(t) = r.think {
        let _ = write!(o, " | think: {t:.1}s");
    }
    if !r.stop.is_empty() {
        let _ = write!(o, " | stop: {}", r.stop);
    }
    let src = &sel.sources[r.source];
    if src.subagent || sel.name == "combined" {
        let _ = write!(o, "  <- {}", src.label);
    }
    o
}

/// The whole timeline.
pub fn timeline(sel: &Selection) -> String {
    let mut o = String::new();
    let t0 = sel.requests.first().map_or(0, |r| r.ts.micros);
    for (i, r) in sel.requests.iter().enumerate() {
        if i > 0 && new_phase(sel, &sel.requests[i - 1], r, t0) {
            o.push('\n');
        }
        o.push_str(&line(sel, r));
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family("claude-opus-4-6"), "opus");
        assert_eq!(family("claude-3-5-Sonnet"), "sonnet");
        assert_eq!(family("claude-haiku-4-5-20251001"), "haiku");
        assert_eq!(family("gpt-4"), "other");
    }
}
