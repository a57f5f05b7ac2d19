//! Turning a gathered conversation into trace documents (spec §4.1, §4.4–§4.8, §4.9).
//!
//! Sequential by design: integer hash ids are handed out in the processing order of
//! §4.4 (conversations by file name; parent requests of all kept segments in row order;
//! then sub-agents by spawn time), so this runs after the parallel gathering.

use rustc_hash::FxHashSet;

use crate::conversation::{Gathered, GatheredAgent};
use crate::encode::blocks::IdMap;
use crate::encode::{is_context_reset, Processed};
use crate::pyjson::py_round;
use crate::stamp::Stamp;
use crate::trace::doc::{Analysis, Entry, Record, SubagentEntry, Tokens, Totals, TraceDoc};
use crate::trace::json::J;

/// Options that shape traces.
#[derive(Debug, Clone)]
pub struct Shape {
    pub block_size: usize,
    pub min_requests: usize,
    pub split_at_gap: Option<f64>,
    pub include_subagents: bool,
    pub anonymize: bool,
    pub local_ids: bool,
}

/// One trace, ready to write.
#[derive(Debug, Clone)]
pub struct BuiltTrace {
    /// The trace's `id` (before anonymization renumbers it).
    pub id: String,
    pub doc: TraceDoc,
    pub parent_requests: usize,
    pub subagent_requests: usize,
    pub subagents: usize,
    pub unique_blocks: usize,
    /// The document's file text, once laid out ([`crate::builder::build_with`] lays it
    /// out on the pool while the next trace is assembled).
    pub layout: Option<String>,
}

/// Per-stream record state (§4.5): each segment and each sub-agent has its own.
struct RecordState {
    origin: Stamp,
    first: bool,
    prev_stop: String,
    prev_ids: Vec<u64>,
    last_completed: Option<Stamp>,
}

impl RecordState {
    fn new(origin: Stamp) -> Self {
        RecordState {
            origin,
            first: true,
            prev_stop: String::new(),
            prev_ids: Vec::new(),
            last_completed: None,
        }
    }

    fn record(&mut self, p: &Processed, ids: Vec<u64>) -> Record {
        let input_types: Vec<String> = if self.first {
            vec!["text".into()]
        } else if is_context_reset(&self.prev_ids, &ids) {
            p.message_types.clone()
        } else if self.prev_stop == "tool_use" {
            vec!["tool_result".into()]
        } else {
            vec!["text".into()]
        };
        let resp = p.response.as_ref();
        let stop = resp.map(|r| r.stop()).unwrap_or_default();
        let think = match self.last_completed {
            Some(done) => Some(p.ts.seconds_since(&done).max(0.0)),
            // Equal instants (Python compares aware datetimes by instant).
            None if p.ts.micros == self.origin.micros => Some(0.0),
            None => None,
        };
        let record = Record {
            t: py_round(p.ts.seconds_since(&self.origin), 1),
            streaming: p.streaming,
            model: p.model.clone(),
            input: p.tokens_in as u64,
            output: p.out(),
            hash_ids: ids,
            input_types,
            output_types: resp.map(|r| r.output_types()).unwrap_or_default(),
            stop: stop.clone(),
            api_time: resp
                .and_then(|r| r.response_time_ms)
                .map(|ms| py_round(ms / 1000.0, 2)),
            ttft: resp
                .filter(|_| p.streaming)
                .and_then(|r| r.ttft_ms)
                .map(|ms| py_round(ms / 1000.0, 2)),
            think_time: think.map(|secs| py_round(secs, 2)),
        };
        if let Some(done) = resp.and_then(|r| r.completed_at) {
            self.last_completed = Some(done);
        }
        self.first = false;
        self.prev_stop = stop;
        self.prev_ids.clone_from(&record.hash_ids);
        record
    }
}

fn models_of(reqs: &[Processed]) -> Vec<String> {
    let mut models: Vec<String> = reqs.iter().map(|p| p.model.clone()).collect();
    models.sort();
    models.dedup();
    models
}

/// Ids of a request's blocks. Where its digests repeat the previous request's (the usual
/// growing context), the previous ids are copied: those digests are already in the map, so
/// looking them up again could not allocate and would only cost time.
fn ids_for(prev: Option<(&Processed, &[u64])>, p: &Processed, ids: &mut IdMap) -> Vec<u64> {
    let shared = prev.map_or(0, |(pp, pids)| {
        pp.digests
            .iter()
            .zip(&p.digests)
            .take_while(|(a, b)| a == b)
            .count()
            .min(pids.len())
    });
    let mut out = Vec::with_capacity(p.digests.len());
    if let Some((_, pids)) = prev {
        out.extend_from_slice(&pids[..shared]);
    }
    out.extend(p.digests[shared..].iter().map(|&d| ids.id(d)));
    out
}

/// Split rows where consecutive timestamps are more than `gap` seconds apart.
fn segments(reqs: &[Processed], gap: Option<f64>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..reqs.len() {
        if let Some(gap) = gap {
            if reqs[i].ts.seconds_since(&reqs[i - 1].ts) > gap {
                out.push(start..i);
                start = i;
            }
        }
    }
    if !reqs.is_empty() {
        out.push(start..reqs.len());
    }
    out
}

/// Build the traces of one gathered conversation, allocating ids from `ids`.
pub fn assemble(g: &Gathered, shape: &Shape, ids: &mut IdMap) -> Vec<BuiltTrace> {
    let reqs = &g.requests;
    if reqs.is_empty() || reqs.len() < shape.min_requests {
        return Vec::new();
    }
    let segs = segments(reqs, shape.split_at_gap);
    let kept: Vec<bool> = segs.iter().map(|s| s.len() >= shape.min_requests).collect();

    // Each sub-agent belongs to the segment whose span holds its spawn time (§4.9.3).
    let mut agents_of: Vec<Vec<&GatheredAgent>> = vec![Vec::new(); segs.len()];
    if shape.include_subagents {
        let mut ordered: Vec<(usize, &GatheredAgent)> = g.agents.iter().enumerate().collect();
        // Spawn-time order, ties by link order (§4.4); unknown spawn times sort last.
        ordered.sort_by_key(|(i, a)| (a.spawn.map_or(i64::MAX, |s| s.micros), *i));
        for (_, a) in ordered {
            let Some(spawn) = a.spawn else { continue };
            let seg = segs
                .iter()
                .rposition(|s| reqs[s.start].ts.micros <= spawn.micros)
                .unwrap_or(0);
            agents_of[seg].push(a);
        }
    }

    // Ids: parent requests of all kept segments in row order, then their sub-agents.
    let mut parent_ids: Vec<Vec<u64>> = vec![Vec::new(); reqs.len()];
    for (s, seg) in segs.iter().enumerate() {
        if kept[s] {
            for i in seg.clone() {
                let prev = (i > seg.start).then(|| (&reqs[i - 1], parent_ids[i - 1].as_slice()));
                parent_ids[i] = ids_for(prev, &reqs[i], ids);
            }
        }
    }
    let mut agent_sequence: Vec<(usize, &GatheredAgent)> = Vec::new();
    for (s, list) in agents_of.iter().enumerate() {
        if kept[s] {
            agent_sequence.extend(list.iter().map(|a| (s, *a)));
        }
    }
    agent_sequence.sort_by_key(|(_, a)| a.spawn.map_or(i64::MAX, |s| s.micros));
    let mut agent_ids: Vec<(usize, &GatheredAgent, Vec<Vec<u64>>)> = Vec::new();
    for (s, a) in agent_sequence {
        let mut per_req: Vec<Vec<u64>> = Vec::with_capacity(a.requests.len());
        for (k, p) in a.requests.iter().enumerate() {
            let prev = (k > 0).then(|| (&a.requests[k - 1], per_req[k - 1].as_slice()));
            let next = ids_for(prev, p, ids);
            per_req.push(next);
        }
        agent_ids.push((s, a, per_req));
    }

    let mut traces = Vec::new();
    for (s, seg) in segs.iter().enumerate() {
        if !kept[s] {
            continue;
        }
        let seg_reqs = &reqs[seg.clone()];
        let origin = seg_reqs[0].ts;
        let mut state = RecordState::new(origin);
        let mut unique: FxHashSet<u64> = FxHashSet::default();
        let mut parent_in = 0u64;
        let mut parent_out = 0u64;
        let mut records: Vec<(f64, Entry)> = Vec::new();
        for (k, p) in seg_reqs.iter().enumerate() {
            let rec_ids = parent_ids[seg.start + k].clone();
            unique.extend(rec_ids.iter().copied());
            parent_in += p.tokens_in as u64;
            parent_out += p.out();
            let t = py_round(p.ts.seconds_since(&origin), 1);
            records.push((t, Entry::Request(state.record(p, rec_ids))));
        }
        let mut entries: Vec<(f64, Entry)> = Vec::new();
        let mut sub_in = 0u64;
        let mut sub_out = 0u64;
        let mut sub_reqs = 0usize;
        for (seg_of, a, per_req) in &agent_ids {
            if *seg_of != s {
                continue;
            }
            let Some(spawn) = a.spawn else { continue };
            let mut st = RecordState::new(a.requests[0].ts);
            let mut recs = Vec::new();
            for (p, rids) in a.requests.iter().zip(per_req) {
                unique.extend(rids.iter().copied());
                sub_in += p.tokens_in as u64;
                sub_out += p.out();
                recs.push(st.record(p, rids.clone()));
            }
            sub_reqs += a.requests.len();
            // A spawn before the segment's first request (its spawning request is not in
            // the capture) is placed at 0.0, after that first request: a trace never
            // starts with a sub-agent and never has a negative `t` (replayers need a
            // parent request first; docs/differences.md).
            let t = py_round(spawn.seconds_since(&origin), 1);
            let t = if t > 0.0 { t } else { 0.0 };
            let entry = Entry::Subagent(SubagentEntry {
                t,
                agent_id: a.agent_id.clone(),
                subagent_type: a.subagent_type.clone(),
                duration_ms: J::from_serde(&a.link.duration_ms),
                total_tokens: J::from_serde(&a.link.total_tokens),
                tool_use_count: J::from_serde(&a.link.tool_use_count),
                status: J::from_serde(&a.link.status),
                requests: recs,
                models: models_of(&a.requests),
                tool_tokens: a.requests[0].tool_tokens as u64,
                system_tokens: a.requests[0].system_tokens as u64,
            });
            entries.push((t, entry));
        }
        let subagents = entries.len();
        let merged = merge_by_time(records, entries);

        let mut id: String = g.id.chars().take(12).collect();
        if segs.len() > 1 {
            id.push_str(&format!("_s{}", s + 1));
        }
        let doc = TraceDoc {
            id: id.clone(),
            models: models_of(seg_reqs),
            block_size: shape.block_size,
            scope: if shape.local_ids { "local" } else { "global" },
            source: None,
            tool_tokens: seg_reqs[0].tool_tokens as u64,
            system_tokens: seg_reqs[0].system_tokens as u64,
            entries: merged,
            totals: shape.include_subagents.then_some(Totals {
                parent: Tokens {
                    input: parent_in,
                    output: parent_out,
                },
                subagent: Tokens {
                    input: sub_in,
                    output: sub_out,
                },
                subagent_count: subagents,
            }),
            start_ts: (!shape.anonymize).then(|| origin.isoformat()),
            analysis: (!shape.anonymize).then_some(Analysis {
                indexed: g.indexed,
                total: seg_reqs.len(),
                unique_blocks: unique.len(),
            }),
        };
        traces.push(BuiltTrace {
            id,
            doc,
            parent_requests: seg_reqs.len(),
            subagent_requests: sub_reqs,
            subagents,
            unique_blocks: unique.len(),
            layout: None,
        });
    }
    traces
}

/// Parent records and sub-agent entries by `t`; a parent record first on ties.
fn merge_by_time(parents: Vec<(f64, Entry)>, agents: Vec<(f64, Entry)>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(parents.len() + agents.len());
    let mut agents = agents.into_iter().peekable();
    for (t, rec) in parents {
        while let Some((_, entry)) = agents.next_if(|(ta, _)| *ta < t) {
            out.push(entry);
        }
        out.push(rec);
    }
    out.extend(agents.map(|(_, e)| e));
    out
}
