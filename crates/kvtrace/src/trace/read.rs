//! Reading trace files back (for validation, statistics and exports).
//!
//! Accepts what build-minimal-traces writes (spec §4.5–§4.7) and the reference's traces;
//! anything else is a [`TraceError`] naming the problem, never a panic.

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TraceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a trace ({why})")]
    NotATrace { path: PathBuf, why: String },
}

/// One request record: the same type the builder writes.
pub type TraceRequest = super::doc::Record;

/// A sub-agent entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSubagent {
    pub t: f64,
    pub agent_id: String,
    pub subagent_type: Option<String>,
    pub requests: Vec<TraceRequest>,
    pub tool_tokens: u64,
    pub system_tokens: u64,
}

/// An entry of a trace's `requests` list.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Request(TraceRequest),
    Subagent(TraceSubagent),
}

/// A trace document.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub path: PathBuf,
    pub id: String,
    pub block_size: u64,
    /// `"global"` or `"local"`.
    pub scope: String,
    pub tool_tokens: u64,
    pub system_tokens: u64,
    pub items: Vec<Item>,
}

impl Trace {
    /// Parent requests in order.
    pub fn parents(&self) -> impl Iterator<Item = &TraceRequest> {
        self.items.iter().filter_map(|i| match i {
            Item::Request(r) => Some(r),
            Item::Subagent(_) => None,
        })
    }

    pub fn subagents(&self) -> impl Iterator<Item = &TraceSubagent> {
        self.items.iter().filter_map(|i| match i {
            Item::Subagent(s) => Some(s),
            Item::Request(_) => None,
        })
    }

    pub fn read(path: &Path) -> Result<Trace, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.to_owned(),
            source,
        })?;
        Trace::parse(&text)
            .map_err(|why| TraceError::NotATrace {
                path: path.to_owned(),
                why,
            })
            .map(|mut t| {
                t.path = path.to_owned();
                t
            })
    }

    pub fn parse(text: &str) -> Result<Trace, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .ok_or("no string `id`")?;
        let block_size = obj
            .get("block_size")
            .and_then(Value::as_u64)
            .ok_or("no integer `block_size`")?;
        if block_size == 0 {
            return Err("`block_size` is 0".into());
        }
        let reqs = obj
            .get("requests")
            .and_then(Value::as_array)
            .ok_or("no `requests` list")?;
        let mut items = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let item = if r.get("type").and_then(Value::as_str) == Some("subagent") {
                let sub = r
                    .get("requests")
                    .and_then(Value::as_array)
                    .ok_or(format!("request {i}: sub-agent without `requests`"))?;
                Item::Subagent(TraceSubagent {
                    t: num(r, "t").ok_or(format!("request {i}: no `t`"))?,
                    agent_id: r
                        .get("agent_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    subagent_type: r
                        .get("subagent_type")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    requests: sub
                        .iter()
                        .enumerate()
                        .map(|(j, s)| request(s).map_err(|e| format!("request {i}.{j}: {e}")))
                        .collect::<Result<_, _>>()?,
                    tool_tokens: r.get("tool_tokens").and_then(Value::as_u64).unwrap_or(0),
                    system_tokens: r.get("system_tokens").and_then(Value::as_u64).unwrap_or(0),
                })
            } else {
                Item::Request(request(r).map_err(|e| format!("request {i}: {e}"))?)
            };
            items.push(item);
        }
        Ok(Trace {
            path: PathBuf::new(),
            id: id.to_owned(),
            block_size,
            scope: obj
                .get("hash_id_scope")
                .and_then(Value::as_str)
                .unwrap_or("global")
                .to_owned(),
            tool_tokens: obj.get("tool_tokens").and_then(Value::as_u64).unwrap_or(0),
            system_tokens: obj
                .get("system_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            items,
        })
    }
}

/// Whether `text` has a trace's outline: a JSON object with a string `id`, a positive
/// integer `block_size` and a `requests` list (the members [`Trace::parse`] requires),
/// the list's items skipped unread. Used to tell an earlier run's traces from other
/// `*.json` files in an output folder without building every trace (a 13 MB folder took
/// ~0.1 s to parse in full, ~9 % of a 1-thread build re-run with `--force`). A file
/// that repeats one of these members is not recognized (left alone, the safe side).
pub fn has_trace_outline(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Outline {
        #[allow(dead_code)]
        id: String,
        block_size: u64,
        #[allow(dead_code)]
        requests: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Outline>(text).is_ok_and(|o| o.block_size > 0)
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

/// A list of strings (its non-string items left out; empty when absent).
fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn request(r: &Value) -> Result<TraceRequest, String> {
    let ids = r
        .get("hash_ids")
        .and_then(Value::as_array)
        .ok_or("no `hash_ids` list")?;
    Ok(TraceRequest {
        t: num(r, "t").ok_or("no numeric `t`")?,
        streaming: r.get("type").and_then(Value::as_str) == Some("s"),
        model: r
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        input: r
            .get("in")
            .and_then(Value::as_u64)
            .ok_or("no integer `in`")?,
        output: r.get("out").and_then(Value::as_u64).unwrap_or(0),
        hash_ids: ids
            .iter()
            .map(|x| x.as_u64().ok_or("non-integer hash id"))
            .collect::<Result<_, _>>()?,
        input_types: strings(r, "input_types"),
        output_types: strings(r, "output_types"),
        stop: r
            .get("stop")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        api_time: num(r, "api_time"),
        ttft: num(r, "ttft"),
        think_time: num(r, "think_time"),
    })
}

/// Trace files under `path`: the file itself, or a directory's `*.json` files by name.
pub fn trace_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        Ok(files)
    } else if path.is_file() {
        Ok(vec![path.to_owned()])
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such file or directory", path.display()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outline_check_agrees_with_the_full_parse() {
        let expected = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/golden/expected"
        );
        let mut texts: Vec<String> = Vec::new();
        for run in std::fs::read_dir(expected).unwrap().filter_map(Result::ok) {
            let Ok(files) = trace_files(&run.path()) else {
                continue;
            };
            texts.extend(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()));
        }
        let odd = [
            "",
            "garbage",
            "{}",
            "[]",
            r#"{"mine": true}"#,
            r#"{"id": "a", "block_size": 64}"#,
            r#"{"id": 7, "block_size": 64, "requests": []}"#,
            r#"{"id": "a", "block_size": 0, "requests": []}"#,
            r#"{"id": "a", "block_size": 6.5, "requests": []}"#,
            r#"{"id": "a", "block_size": -1, "requests": []}"#,
            r#"{"id": "a", "block_size": 64, "requests": {}}"#,
            r#"{"id": "a", "block_size": 64, "requests": [], "extra": [1, {"x": null}]}"#,
            r#"{"id": "a\u00e9", "block_size": 64, "requests": [{"t": 0.0, "in": 3, "hash_ids": [1]}]}"#,
            r#"{"id": "a", "block_size": 64, "requests": [NaN]}"#,
            r#"{"id": "a", "block_size": 64, "requests": []"#,
        ];
        texts.extend(odd.iter().map(|t| (*t).to_owned()));
        let mut traces = 0;
        for t in &texts {
            let full = Trace::parse(t).is_ok();
            traces += usize::from(full);
            assert_eq!(has_trace_outline(t), full, "{}", &t[..t.len().min(200)]);
        }
        assert!(traces > 3, "{traces} traces read");
        // Where the two differ: an outline whose requests do not read. The outline is
        // enough to call it an earlier run's output.
        let broken = r#"{"id": "a", "block_size": 64, "requests": [{"t": "x"}]}"#;
        assert!(has_trace_outline(broken) && Trace::parse(broken).is_err());
    }
}
