//! trace-stats: the summary table replay users expect for a trace set.
//!
//! Distribution rows (Min, P25, Median, P75, Max, Mean; percentiles by linear
//! interpolation between closest ranks, numpy's default) over traces or over parent
//! requests, and token rows (P10, P50, P90, Mean). Hit rates use the conversation-only
//! model: a parent block hits if its id appeared in an earlier parent request of the same
//! trace; the warm variant also counts the first request's share of the shared prefix.

use serde::Serialize;

use crate::report::table::{Cell, Table};
use crate::simulate;
use crate::trace::read::Trace;

/// numpy.percentile(values, p) with the default linear method; `values` sorted.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = p / 100.0 * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// Min, quartiles, max and mean of a sample.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub max: f64,
    pub mean: f64,
}

/// Deciles used for per-request token counts.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Deciles {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub mean: f64,
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

impl Spread {
    pub fn of(values: Vec<f64>) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let v = sorted(values);
        Some(Spread {
            min: v[0],
            p25: percentile(&v, 25.0),
            median: percentile(&v, 50.0),
            p75: percentile(&v, 75.0),
            max: v[v.len() - 1],
            mean: mean(&v),
        })
    }
}

impl Deciles {
    pub fn of(values: Vec<f64>) -> Option<Deciles> {
        if values.is_empty() {
            return None;
        }
        let v = sorted(values);
        Some(Deciles {
            p10: percentile(&v, 10.0),
            p50: percentile(&v, 50.0),
            p90: percentile(&v, 90.0),
            mean: mean(&v),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub requests_per_trace: Option<Spread>,
    pub starting_input_tokens: Option<Spread>,
    pub ending_input_tokens: Option<Spread>,
    pub duration_min: Option<Spread>,
    pub hit_rate_conversation: Option<Spread>,
    pub hit_rate_warm: Option<Spread>,
    pub think_time_s: Option<Spread>,
    pub api_time_s: Option<Spread>,
    pub input_tokens_per_request: Option<Deciles>,
    pub output_tokens_per_request: Option<Deciles>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceSetStats {
    pub traces: usize,
    /// Parent and sub-agent requests.
    pub requests: usize,
    pub traces_with_subagents: usize,
    pub subagents: usize,
    pub metrics: Metrics,
}

/// Compute the statistics of a trace set; `warm` is the warm-prefix fraction.
pub fn trace_set_stats(traces: &[Trace], warm: f64) -> TraceSetStats {
    let mut per_trace_requests = Vec::new();
    let mut start_in = Vec::new();
    let mut end_in = Vec::new();
    let mut duration = Vec::new();
    let mut hit = Vec::new();
    let mut hit_warm = Vec::new();
    let mut think = Vec::new();
    let mut api = Vec::new();
    let mut input = Vec::new();
    let mut output = Vec::new();
    let mut requests = 0;
    let mut subagents = 0;
    let mut with_sub = 0;
    for t in traces {
        let parents: Vec<_> = t.parents().collect();
        let subs = t.subagents().count();
        subagents += subs;
        with_sub += usize::from(subs > 0);
        requests += parents.len() + t.subagents().map(|s| s.requests.len()).sum::<usize>();
        let (Some(first), Some(last)) = (parents.first(), parents.last()) else {
            continue;
        };
        per_trace_requests.push(parents.len() as f64);
        start_in.push(first.input as f64);
        end_in.push(last.input as f64);
        duration.push((last.t - first.t) / 60.0);
        let placed = simulate::timeline(t, false);
        let cold = simulate::simulate(&placed, None, 0);
        if cold.blocks > 0 {
            let warm_blocks = (warm * (t.tool_tokens + t.system_tokens) as f64
                / t.block_size as f64)
                .floor()
                .max(0.0) as usize;
            hit.push(cold.rate());
            hit_warm.push(simulate::simulate(&placed, None, warm_blocks).rate());
        }
        for r in &parents {
            think.extend(r.think_time);
            api.extend(r.api_time);
            input.push(r.input as f64);
            output.push(r.output as f64);
        }
    }
    TraceSetStats {
        traces: traces.len(),
        requests,
        traces_with_subagents: with_sub,
        subagents,
        metrics: Metrics {
            requests_per_trace: Spread::of(per_trace_requests),
            starting_input_tokens: Spread::of(start_in),
            ending_input_tokens: Spread::of(end_in),
            duration_min: Spread::of(duration),
            hit_rate_conversation: Spread::of(hit),
            hit_rate_warm: Spread::of(hit_warm),
            think_time_s: Spread::of(think),
            api_time_s: Spread::of(api),
            input_tokens_per_request: Deciles::of(input),
            output_tokens_per_request: Deciles::of(output),
        },
    }
}

/// How a row's numbers are written.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    OneDecimal,
    Percent,
}

fn cell(x: f64, unit: Unit) -> Cell {
    Cell::Num(
        x,
        match unit {
            Unit::Count => 0,
            Unit::OneDecimal | Unit::Percent => 1,
        },
        matches!(unit, Unit::Percent),
    )
}

/// The two tables of the report: distributions, and tokens per request.
pub fn tables(s: &TraceSetStats, warm: f64) -> (Table, Table) {
    let m = &s.metrics;
    let mut dist = Table::new(&["Metric", "Min", "P25", "Median", "P75", "Max", "Mean"]);
    let warm_label = format!("Cache hit rate, warm prefix {:.0}% (%)", warm * 100.0);
    let rows: [(&str, &Option<Spread>, Unit); 8] = [
        ("Requests per trace", &m.requests_per_trace, Unit::Count),
        (
            "Starting input tokens",
            &m.starting_input_tokens,
            Unit::Count,
        ),
        ("Ending input tokens", &m.ending_input_tokens, Unit::Count),
        (
            "Conversation duration (min)",
            &m.duration_min,
            Unit::OneDecimal,
        ),
        (
            "Cache hit rate, conversation only (%)",
            &m.hit_rate_conversation,
            Unit::Percent,
        ),
        (&warm_label, &m.hit_rate_warm, Unit::Percent),
        (
            "Think time per request (s)",
            &m.think_time_s,
            Unit::OneDecimal,
        ),
        ("API time per request (s)", &m.api_time_s, Unit::OneDecimal),
    ];
    for (label, spread, unit) in rows {
        let cells = match spread {
            Some(x) => [x.min, x.p25, x.median, x.p75, x.max, x.mean]
                .map(|v| cell(v, unit))
                .to_vec(),
            None => vec![Cell::Empty; 6],
        };
        dist.push(label, cells);
    }
    let mut tokens = Table::new(&["Tokens per request", "P10", "P50", "P90", "Mean"]);
    for (label, d) in [
        ("Input tokens", &m.input_tokens_per_request),
        ("Output tokens", &m.output_tokens_per_request),
    ] {
        let cells = match d {
            Some(x) => [x.p10, x.p50, x.p90, x.mean]
                .map(|v| cell(v, Unit::Count))
                .to_vec(),
            None => vec![Cell::Empty; 4],
        };
        tokens.push(label, cells);
    }
    (dist, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [10, 25, 50, 75, 90]) = 1.3, 1.75, 2.5, 3.25, 3.7
        let v = [1.0, 2.0, 3.0, 4.0];
        let got: Vec<f64> = [10.0, 25.0, 50.0, 75.0, 90.0]
            .iter()
            .map(|&p| percentile(&v, p))
            .collect();
        for (g, w) in got.iter().zip([1.3, 1.75, 2.5, 3.25, 3.7]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
    }
}
