//! The trace document as the builder makes it: typed fields, anonymized as fields
//! (`--anonymize`, spec §4.8), then turned into the output value model ([`J`]) in the
//! reference's key order (spec §4.5–§4.7) only when written.

use super::json::J;

/// One request record (spec §4.5).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub t: f64,
    pub streaming: bool,
    pub model: String,
    pub input: u64,
    pub output: u64,
    pub hash_ids: Vec<u64>,
    pub input_types: Vec<String>,
    pub output_types: Vec<String>,
    pub stop: String,
    pub api_time: Option<f64>,
    pub ttft: Option<f64>,
    pub think_time: Option<f64>,
}

/// A sub-agent entry (spec §4.7). The counters and the status are copied from the
/// session log's tool result as they were written (any JSON value).
#[derive(Debug, Clone, PartialEq)]
pub struct SubagentEntry {
    pub t: f64,
    pub agent_id: String,
    pub subagent_type: Option<String>,
    pub duration_ms: J,
    pub total_tokens: J,
    pub tool_use_count: J,
    pub status: J,
    pub requests: Vec<Record>,
    pub models: Vec<String>,
    pub tool_tokens: u64,
    pub system_tokens: u64,
}

/// An item of a trace's `requests` list.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Request(Record),
    Subagent(SubagentEntry),
}

/// Input and output token sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// The `totals` object (with sub-agents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub parent: Tokens,
    pub subagent: Tokens,
    pub subagent_count: usize,
}

/// The `_analysis` object (without `--anonymize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Analysis {
    pub indexed: usize,
    pub total: usize,
    pub unique_blocks: usize,
}

/// A trace document.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceDoc {
    pub id: String,
    pub models: Vec<String>,
    pub block_size: usize,
    /// `"local"` or `"global"`.
    pub scope: &'static str,
    /// Where the requests come from when not from a capture (`--logs-only`).
    pub source: Option<&'static str>,
    pub tool_tokens: u64,
    pub system_tokens: u64,
    pub entries: Vec<Entry>,
    pub totals: Option<Totals>,
    pub start_ts: Option<String>,
    pub analysis: Option<Analysis>,
}

fn strs(v: &[String]) -> J {
    J::List(v.iter().map(|s| J::Str(s.clone())).collect())
}

fn int(n: u64) -> J {
    J::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
impl Record {
    /// A streaming request of model `m` with these sizes and ids (unit tests).
    pub(crate) fn example(t: f64, input: u64, output: u64, hash_ids: &[u64]) -> Record {
        Record {
            t,
            streaming: true,
            model: "m".into(),
            input,
            output,
            hash_ids: hash_ids.to_vec(),
            input_types: Vec::new(),
            output_types: Vec::new(),
            stop: String::new(),
            api_time: None,
            ttft: None,
            think_time: None,
        }
    }
}

impl Record {
    fn to_json(&self) -> J {
        let mut f: Vec<(&'static str, J)> = vec![
            ("t", J::Float(self.t)),
            (
                "type",
                J::Str(if self.streaming { "s" } else { "n" }.into()),
            ),
            ("model", J::Str(self.model.clone())),
            ("in", int(self.input)),
            ("out", int(self.output)),
            ("hash_ids", J::Ids(self.hash_ids.clone())),
            ("input_types", strs(&self.input_types)),
            ("output_types", strs(&self.output_types)),
            ("stop", J::Str(self.stop.clone())),
        ];
        let optional = [
            ("api_time", self.api_time),
            ("ttft", self.ttft),
            ("think_time", self.think_time),
        ];
        f.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| v.map(|x| (k, J::Float(x)))),
        );
        J::Obj(f)
    }
}

impl SubagentEntry {
    fn to_json(&self) -> J {
        J::Obj(vec![
            ("t", J::Float(self.t)),
            ("type", J::Str("subagent".into())),
            ("agent_id", J::Str(self.agent_id.clone())),
            (
                "subagent_type",
                self.subagent_type.clone().map_or(J::Null, J::Str),
            ),
            ("duration_ms", self.duration_ms.clone()),
            ("total_tokens", self.total_tokens.clone()),
            ("tool_use_count", self.tool_use_count.clone()),
            ("status", self.status.clone()),
            (
                "requests",
                J::List(self.requests.iter().map(Record::to_json).collect()),
            ),
            ("models", strs(&self.models)),
            ("tool_tokens", int(self.tool_tokens)),
            ("system_tokens", int(self.system_tokens)),
        ])
    }
}

impl TraceDoc {
    /// The output value, in the reference's key order.
    pub fn to_json(&self) -> J {
        let mut h: Vec<(&'static str, J)> = vec![
            ("id", J::Str(self.id.clone())),
            ("models", strs(&self.models)),
            ("block_size", int(self.block_size as u64)),
            ("hash_id_scope", J::Str(self.scope.into())),
        ];
        if let Some(source) = self.source {
            h.push(("source", J::Str(source.into())));
        }
        h.extend([
            ("tool_tokens", int(self.tool_tokens)),
            ("system_tokens", int(self.system_tokens)),
            (
                "requests",
                J::List(
                    self.entries
                        .iter()
                        .map(|e| match e {
                            Entry::Request(r) => r.to_json(),
                            Entry::Subagent(s) => s.to_json(),
                        })
                        .collect(),
                ),
            ),
        ]);
        if let Some(t) = &self.totals {
            let pair = |x: Tokens| J::Obj(vec![("input", int(x.input)), ("output", int(x.output))]);
            let combined = Tokens {
                input: t.parent.input + t.subagent.input,
                output: t.parent.output + t.subagent.output,
            };
            h.push((
                "totals",
                J::Obj(vec![
                    ("parent_tokens", pair(t.parent)),
                    ("subagent_tokens", pair(t.subagent)),
                    ("combined_tokens", pair(combined)),
                    ("subagent_count", int(t.subagent_count as u64)),
                ]),
            ));
        }
        if let Some(ts) = &self.start_ts {
            h.push(("_start_ts", J::Str(ts.clone())));
        }
        if let Some(a) = &self.analysis {
            h.push((
                "_analysis",
                J::Obj(vec![
                    ("indexed", int(a.indexed as u64)),
                    ("total", int(a.total as u64)),
                    ("unique_blocks", int(a.unique_blocks as u64)),
                ]),
            ));
        }
        J::Obj(h)
    }

    /// Every request record, the sub-agents' included.
    pub fn records_mut(&mut self) -> impl Iterator<Item = &mut Record> {
        self.entries.iter_mut().flat_map(|e| match e {
            Entry::Request(r) => std::slice::from_mut(r).iter_mut(),
            Entry::Subagent(s) => s.requests.iter_mut(),
        })
    }

    /// The sub-agent entries.
    pub fn subagents_mut(&mut self) -> impl Iterator<Item = &mut SubagentEntry> {
        self.entries.iter_mut().filter_map(|e| match e {
            Entry::Subagent(s) => Some(s),
            Entry::Request(_) => None,
        })
    }
}
