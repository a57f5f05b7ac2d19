//! Exports of trace sets to other tools' formats (export-traces; docs/exports.md).
//!
//! The format-independent part lives here: every request of every trace (sub-agent
//! requests included) is placed on one timeline, its hash ids are moved into one id space
//! and optionally re-blocked to a larger block size. Each format renders the resulting
//! [`ExportRecord`]s in its own file ([`mooncake`]).
//!
//! Decisions, all documented in docs/exports.md:
//! - trace `i` (in file-name order, counting only traces that were read) starts at
//!   `i × stagger` seconds; a request happens at that start plus its time on the trace's
//!   own timeline ([`simulate::timeline`]: sub-agent requests at entry `t` + own `t`);
//! - timestamps are that time in milliseconds, rounded to the nearest integer with ties
//!   to even; if any is negative (a sub-agent spawned before its segment's first request),
//!   every timestamp is shifted by the same amount so the earliest is 0;
//! - lines are sorted by timestamp, stably: ties keep trace order, then in-trace order;
//! - global-scope ids are kept; each local-scope trace's ids are offset past every id
//!   used before it (all global traces, then earlier local traces), so two traces never
//!   share an id by accident;
//! - re-blocking to `B = m × block_size` keeps, per request, the id of every `m`-th small
//!   block (chained ids name the whole prefix, so this is exact) and renumbers the kept
//!   ids 1, 2, 3, … by first appearance in output order; `m = 1` leaves ids untouched.

pub mod mooncake;

use std::path::{Path, PathBuf};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use thiserror::Error;

use crate::simulate;
use crate::trace::read::{trace_files, Item, Trace, TraceError};
use crate::trace::write_atomic;

/// Largest timestamp, in ms, written as an exact integer (2^53: f64 stays exact).
const MAX_MS: f64 = 9_007_199_254_740_992.0;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{0}")]
    TraceFiles(std::io::Error),
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("{path}: no trace files")]
    NoTraces { path: PathBuf },
    #[error(
        "traces have different block sizes ({first} in {first_path}, {other} in {other_path}); export them separately"
    )]
    MixedBlockSizes {
        first: u64,
        first_path: PathBuf,
        other: u64,
        other_path: PathBuf,
    },
    #[error(
        "block size {target} is not a positive multiple of the traces' block size {block_size}"
    )]
    NotAMultiple { target: u64, block_size: u64 },
    #[error(
        "the traces' block size {block_size} does not divide {target}, the block size {format} replayers assume (AIPerf's default); give an output block size that is a multiple of {block_size}"
    )]
    DefaultNotAMultiple {
        format: &'static str,
        target: u64,
        block_size: u64,
    },
    #[error("the stagger must be a finite number of seconds >= 0 (got {0})")]
    BadStagger(f64),
    #[error("{path}: request times out of range for millisecond timestamps")]
    TimeOutOfRange { path: PathBuf },
    #[error("{path}: hash ids too large to give local-scope traces distinct ids")]
    IdOverflow { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Mooncake-style JSONL (AIPerf's `mooncake_trace` dataset type).
    Mooncake,
}

impl ExportFormat {
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Mooncake => "mooncake",
        }
    }

    /// The block size the format's replayers assume when none is given: AIPerf's
    /// `mooncake_trace` loader decodes every hash id as 512 tokens unless told otherwise.
    pub fn default_block_size(self) -> u64 {
        match self {
            ExportFormat::Mooncake => 512,
        }
    }

    /// The file contents for `records`, in their order.
    pub fn render(self, records: &[ExportRecord]) -> String {
        match self {
            ExportFormat::Mooncake => mooncake::render(records),
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mooncake" => Ok(ExportFormat::Mooncake),
            other => Err(format!("unknown export format {other:?} (mooncake)")),
        }
    }
}

/// One request of the export, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecord {
    /// Milliseconds since the start of the combined timeline.
    pub timestamp_ms: u64,
    /// The record's `in`.
    pub input_length: u64,
    /// The record's `out`.
    pub output_length: u64,
    /// Ids of the full output blocks.
    pub hash_ids: Vec<u64>,
}

/// What an export produced (the `--json` summary).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportSummary {
    pub format: &'static str,
    pub traces: usize,
    /// All requests, sub-agent requests included.
    pub requests: usize,
    pub subagent_requests: usize,
    /// Lines written: one per request.
    pub lines: usize,
    pub block_size_in: u64,
    pub block_size_out: u64,
    /// Hash ids read (small blocks).
    pub blocks_in: u64,
    /// Hash ids written.
    pub blocks_out: u64,
    /// Distinct hash ids written.
    pub distinct_blocks_out: u64,
    /// Timestamp of the last line.
    pub duration_ms: u64,
    /// Milliseconds added to every timestamp to make the earliest 0 (0 when none was
    /// negative).
    pub shift_ms: u64,
}

/// Records in output order and their summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub records: Vec<ExportRecord>,
    pub summary: ExportSummary,
}

/// What `export-traces` asks for.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// A trace file or a directory of `*.json` traces.
    pub path: PathBuf,
    pub format: ExportFormat,
    /// Output block size; the traces' own when `None`.
    pub block_size: Option<u64>,
    /// Seconds between the starts of consecutive traces.
    pub stagger: f64,
    pub output: PathBuf,
}

/// Read the traces under `opts.path`, build the export and write it atomically.
pub fn export(opts: &ExportOptions) -> Result<ExportSummary, ExportError> {
    check_stagger(opts.stagger)?;
    let files = trace_files(&opts.path).map_err(ExportError::TraceFiles)?;
    // Every trace is required: skipping one would silently move the stagger slots and id
    // offsets of the traces after it.
    let traces = files
        .iter()
        .map(|f| Trace::read(f))
        .collect::<Result<Vec<_>, _>>()?;
    if traces.is_empty() {
        return Err(ExportError::NoTraces {
            path: opts.path.clone(),
        });
    }
    let built = build(&traces, opts.block_size, opts.stagger, opts.format)?;
    write(&opts.output, &opts.format.render(&built.records))?;
    Ok(built.summary)
}

fn write(path: &Path, text: &str) -> Result<(), ExportError> {
    write_atomic(path, text.as_bytes()).map_err(|source| ExportError::Write {
        path: path.to_owned(),
        source,
    })
}

fn check_stagger(stagger: f64) -> Result<(), ExportError> {
    if stagger.is_finite() && stagger >= 0.0 {
        Ok(())
    } else {
        Err(ExportError::BadStagger(stagger))
    }
}

/// A request on the combined timeline, before re-blocking.
struct Line<'a> {
    ms: f64,
    input: u64,
    output: u64,
    ids: &'a [u64],
    offset: u64,
}

/// Build the export of `traces` (in the given order; trace `i` starts at `i × stagger`).
pub fn build(
    traces: &[Trace],
    block_size: Option<u64>,
    stagger: f64,
    format: ExportFormat,
) -> Result<Export, ExportError> {
    check_stagger(stagger)?;
    let small = common_block_size(traces)?;
    let target = match block_size {
        Some(b) => b,
        None => {
            let target = format.default_block_size();
            if target % small != 0 {
                return Err(ExportError::DefaultNotAMultiple {
                    format: format.name(),
                    target,
                    block_size: small,
                });
            }
            target
        }
    };
    if target == 0 || target % small != 0 {
        return Err(ExportError::NotAMultiple {
            target,
            block_size: small,
        });
    }
    let m = usize::try_from(target / small).map_err(|_| ExportError::NotAMultiple {
        target,
        block_size: small,
    })?;
    let offsets = id_offsets(traces)?;

    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut subagent_requests = 0;
    for (i, (trace, &offset)) in traces.iter().zip(&offsets).enumerate() {
        let start = i as f64 * stagger;
        // Both scopes flatten: in local scope a trace's sub-agents share its id space.
        for p in simulate::timeline(trace, true) {
            let ms = ((start + p.time) * 1000.0).round_ties_even();
            if !ms.is_finite() || ms.abs() > MAX_MS {
                return Err(ExportError::TimeOutOfRange {
                    path: trace.path.clone(),
                });
            }
            subagent_requests += usize::from(p.subagent.is_some());
            lines.push(Line {
                ms,
                input: p.request.input,
                output: p.request.output,
                ids: &p.request.hash_ids,
                offset,
            });
        }
    }
    // Stable: equal timestamps keep trace order, then the trace's own timeline order.
    lines.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    let earliest = lines.first().map_or(0.0, |l| l.ms);
    let shift = if earliest < 0.0 { -earliest } else { 0.0 };

    let mut newid: FxHashMap<u64, u64> = FxHashMap::default();
    let mut distinct: FxHashSet<u64> = FxHashSet::default();
    let mut blocks_in = 0u64;
    let mut blocks_out = 0u64;
    let mut records = Vec::with_capacity(lines.len());
    for l in &lines {
        blocks_in += l.ids.len() as u64;
        let hash_ids: Vec<u64> = if m == 1 {
            l.ids.iter().map(|&id| id + l.offset).collect()
        } else {
            l.ids
                .chunks_exact(m)
                .map(|chunk| {
                    // The last small id of each full large block names the whole prefix.
                    let small_id = chunk[m - 1] + l.offset;
                    let next = newid.len() as u64 + 1;
                    *newid.entry(small_id).or_insert(next)
                })
                .collect()
        };
        blocks_out += hash_ids.len() as u64;
        distinct.extend(hash_ids.iter().copied());
        // In range: |ms| ≤ 2^53 and the shift makes it non-negative.
        records.push(ExportRecord {
            timestamp_ms: (l.ms + shift) as u64,
            input_length: l.input,
            output_length: l.output,
            hash_ids,
        });
    }
    let summary = ExportSummary {
        format: format.name(),
        traces: traces.len(),
        requests: records.len(),
        subagent_requests,
        lines: records.len(),
        block_size_in: small,
        block_size_out: target,
        blocks_in,
        blocks_out,
        distinct_blocks_out: distinct.len() as u64,
        duration_ms: records.last().map_or(0, |r| r.timestamp_ms),
        shift_ms: shift as u64,
    };
    Ok(Export { records, summary })
}

/// The block size shared by all traces (64, the default, when there are none).
fn common_block_size(traces: &[Trace]) -> Result<u64, ExportError> {
    let Some(first) = traces.first() else {
        return Ok(64);
    };
    match traces.iter().find(|t| t.block_size != first.block_size) {
        None => Ok(first.block_size),
        Some(other) => Err(ExportError::MixedBlockSizes {
            first: first.block_size,
            first_path: first.path.clone(),
            other: other.block_size,
            other_path: other.path.clone(),
        }),
    }
}

/// Every hash id of a trace, sub-agent requests included.
fn all_ids(trace: &Trace) -> impl Iterator<Item = u64> + '_ {
    trace.items.iter().flat_map(|item| {
        let reqs = match item {
            Item::Request(r) => std::slice::from_ref(r),
            Item::Subagent(s) => s.requests.as_slice(),
        };
        reqs.iter().flat_map(|r| r.hash_ids.iter().copied())
    })
}

/// The number added to each trace's ids: 0 for global scope (one shared id space); for
/// local scope, the largest id used by all global traces and the earlier local traces.
fn id_offsets(traces: &[Trace]) -> Result<Vec<u64>, ExportError> {
    let is_local = |t: &Trace| t.scope == "local";
    let mut next = traces
        .iter()
        .filter(|t| !is_local(t))
        .flat_map(all_ids)
        .max()
        .unwrap_or(0);
    let mut offsets = Vec::with_capacity(traces.len());
    for t in traces {
        if !is_local(t) {
            offsets.push(0);
            continue;
        }
        let max = all_ids(t).max().unwrap_or(0);
        let end = next
            .checked_add(max)
            .ok_or_else(|| ExportError::IdOverflow {
                path: t.path.clone(),
            })?;
        offsets.push(next);
        next = end;
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::read::{TraceRequest, TraceSubagent};

    fn req(t: f64, input: u64, ids: &[u64]) -> TraceRequest {
        TraceRequest::example(t, input, 7, ids)
    }

    fn trace(scope: &str, block_size: u64, items: Vec<Item>) -> Trace {
        Trace {
            path: PathBuf::from(format!("{scope}.json")),
            id: "x".into(),
            block_size,
            scope: scope.into(),
            tool_tokens: 0,
            system_tokens: 0,
            items,
        }
    }

    fn sub(t: f64, requests: Vec<TraceRequest>) -> Item {
        Item::Subagent(TraceSubagent {
            t,
            agent_id: "a".into(),
            subagent_type: None,
            requests,
            tool_tokens: 0,
            system_tokens: 0,
        })
    }

    fn ids(e: &Export) -> Vec<Vec<u64>> {
        e.records.iter().map(|r| r.hash_ids.clone()).collect()
    }

    fn times(e: &Export) -> Vec<u64> {
        e.records.iter().map(|r| r.timestamp_ms).collect()
    }

    #[test]
    fn reblocking_keeps_every_mth_id_and_renumbers() {
        let t = trace(
            "global",
            64,
            vec![
                Item::Request(req(0.0, 400, &[1, 2, 3, 4, 5, 6])),
                Item::Request(req(1.0, 400, &[1, 2, 3, 4, 7, 8])),
                // Five small blocks: the fifth is a tail shorter than 128 and is dropped.
                Item::Request(req(2.0, 330, &[1, 2, 9, 10, 11])),
            ],
        );
        let e = build(&[t], Some(128), 0.0, ExportFormat::Mooncake).unwrap();
        assert_eq!(ids(&e), vec![vec![1, 2, 3], vec![1, 2, 4], vec![1, 5]]);
        assert_eq!((e.summary.blocks_in, e.summary.blocks_out), (17, 8));
        assert_eq!(e.summary.distinct_blocks_out, 5);
    }

    #[test]
    fn block_size_must_be_a_multiple() {
        let t = trace("global", 64, vec![Item::Request(req(0.0, 64, &[1]))]);
        for bad in [96, 0, 32] {
            assert!(matches!(
                build(
                    std::slice::from_ref(&t),
                    Some(bad),
                    0.0,
                    ExportFormat::Mooncake
                ),
                Err(ExportError::NotAMultiple { .. })
            ));
        }
        // Equal block size: m = 1, ids untouched.
        let e = build(&[t], Some(64), 0.0, ExportFormat::Mooncake).unwrap();
        assert_eq!(ids(&e), vec![vec![1]]);
    }

    #[test]
    fn subagents_stagger_and_stable_ties() {
        let a = trace(
            "global",
            64,
            vec![
                Item::Request(req(0.0, 64, &[1])),
                sub(1.5, vec![req(0.0, 64, &[2]), req(2.25, 64, &[3])]),
                Item::Request(req(3.75, 64, &[4])),
            ],
        );
        let b = trace("global", 64, vec![Item::Request(req(0.0, 64, &[5]))]);
        let e = build(
            &[a.clone(), b.clone()],
            Some(64),
            3.75,
            ExportFormat::Mooncake,
        )
        .unwrap();
        // At 3.75 s: a's parent, then a's sub-agent request (the timeline's rule), then b
        // (trace order).
        assert_eq!(times(&e), vec![0, 1500, 3750, 3750, 3750]);
        assert_eq!(ids(&e), vec![vec![1], vec![2], vec![4], vec![3], vec![5]]);
        assert_eq!(e.summary.subagent_requests, 2);
        let e = build(&[a, b], Some(64), 0.0, ExportFormat::Mooncake).unwrap();
        assert_eq!(ids(&e), vec![vec![1], vec![5], vec![2], vec![4], vec![3]]);
    }

    #[test]
    fn rounding_ties_to_even_and_negative_shift() {
        let t = trace(
            "global",
            64,
            vec![
                Item::Request(req(0.0, 0, &[])),
                sub(-0.25, vec![req(0.0, 0, &[])]),
                Item::Request(req(0.0625, 0, &[])),
            ],
        );
        // 62.5 ms rounds to 62 (even); the sub-agent at -250 ms shifts everything by 250.
        let e = build(&[t], Some(64), 0.0, ExportFormat::Mooncake).unwrap();
        assert_eq!(times(&e), vec![0, 250, 312]);
        assert_eq!(e.summary.shift_ms, 250);
    }

    #[test]
    fn local_traces_get_disjoint_ids() {
        let g = trace("global", 64, vec![Item::Request(req(0.0, 128, &[1, 3]))]);
        let l1 = trace(
            "local",
            64,
            vec![
                Item::Request(req(0.0, 128, &[1, 2])),
                sub(1.0, vec![req(0.0, 64, &[4])]),
            ],
        );
        let l2 = trace("local", 64, vec![Item::Request(req(0.0, 128, &[1, 2]))]);
        let e = build(&[l1, g, l2], Some(64), 10.0, ExportFormat::Mooncake).unwrap();
        // Global max 3; l1 gets +3 (ids up to 7), l2 gets +7.
        assert_eq!(ids(&e), vec![vec![4, 5], vec![7], vec![1, 3], vec![8, 9]]);
    }

    #[test]
    fn mixed_block_sizes_and_bad_stagger_are_errors() {
        let a = trace("global", 64, vec![]);
        let b = trace("global", 16, vec![]);
        assert!(matches!(
            build(&[a.clone(), b], Some(64), 0.0, ExportFormat::Mooncake),
            Err(ExportError::MixedBlockSizes { .. })
        ));
        for s in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                build(std::slice::from_ref(&a), None, s, ExportFormat::Mooncake),
                Err(ExportError::BadStagger(_))
            ));
        }
        let huge = trace("global", 64, vec![Item::Request(req(1e300, 0, &[]))]);
        assert!(matches!(
            build(&[huge], Some(64), 0.0, ExportFormat::Mooncake),
            Err(ExportError::TimeOutOfRange { .. })
        ));
    }
}
