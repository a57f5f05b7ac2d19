//! Sub-agent ↔ parent links: which recovered conversation a parent's `Task`/`Agent` call
//! started, and what its tool result said.
//!
//! Evidence, all in the capture: the spawning call is a `tool_use` block of the parent
//! turn's reply, whose `input.prompt` is, verbatim, a text of the first user message of
//! the sub-agent's first request (Claude Code may put reminders before it in the same
//! message). Conversations are visited in the order they start; each takes the unclaimed
//! call with that prompt made latest at or before its first request, in another
//! conversation that is not itself a sub-agent (and, when both carry a session id, of
//! the same session: a sub-agent's requests carry their parent's). The call's
//! `tool_result` comes back in a later request of the parent (usually the next): its text
//! names the agent id on current Claude Code (`agentId: …`) and says whether it was
//! launched in the background.

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use super::scan::RowInfo;
use crate::capture::{Capture, CaptureError};
use crate::pyjson;

/// A spawning call in a turn's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnCall {
    pub tool_use_id: String,
    /// `Task` or `Agent`, as the reply named the tool.
    pub name: String,
    pub prompt: String,
    pub subagent_type: Option<String>,
    pub description: Option<String>,
}

/// The spawning calls of a stored reply (tool_use blocks named `Task` or `Agent` with a
/// string `input.prompt`). Cheap for the replies that mention neither name.
pub fn spawn_calls(response: &str) -> Vec<SpawnCall> {
    if !(response.contains("Task") || response.contains("Agent")) {
        return Vec::new();
    }
    crate::capture::envelope::reply_tool_uses(response)
        .into_iter()
        .filter(|t| t.name == "Task" || t.name == "Agent")
        .filter_map(|t| {
            let text = |k: &str| t.input.get(k).and_then(Value::as_str).map(str::to_owned);
            Some(SpawnCall {
                prompt: text("prompt")?,
                subagent_type: text("subagent_type"),
                description: text("description"),
                tool_use_id: t.id,
                name: t.name,
            })
        })
        .collect()
}

/// What the parent's `tool_result` for a spawning call says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFacts {
    /// Position, in the parent's turns, of the request that carries the result.
    pub turn: usize,
    /// `async_launched` (the text says the agent runs in the background), `completed`
    /// (a result naming the agent, as Claude Code 2.0 and later write it), else `unknown`
    /// (1.0.x results, errors).
    pub status: &'static str,
    /// `agentId: …` in the text (Claude Code 2.0.x and later).
    pub agent_id: Option<String>,
    /// `total_tokens`, `tool_uses`, `duration_ms` of a `<usage>` block in the text.
    pub total_tokens: Option<u64>,
    pub tool_uses: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// A sub-agent conversation linked to the parent turn that spawned it.
#[derive(Debug, Clone)]
pub struct Link {
    /// Conversation (index) of the sub-agent.
    pub child: usize,
    /// Conversation of the parent and the position of the spawning turn in it.
    pub parent: usize,
    pub turn: usize,
    /// Position of the call among the turn's spawning calls.
    pub call_index: usize,
    pub call: SpawnCall,
    pub result: Option<ResultFacts>,
    /// The agent id the files use: the result's, else derived from the sub-agent's first
    /// request id; unique within the parent.
    pub agent_id: String,
}

/// Requests after the spawning turn searched for its tool result.
const RESULT_HORIZON: usize = 4;

/// Link sub-agent conversations to their parents' spawning turns. `convs` hold row
/// indices in time order. Reads the first request of each conversation and the requests
/// after each spawning turn (nothing when no reply spawned anything).
pub fn link(
    cap: &Capture,
    rows: &[RowInfo],
    convs: &[Vec<usize>],
) -> Result<Vec<Link>, CaptureError> {
    type CallKey = (usize, usize, usize);
    let mut by_prompt: FxHashMap<&str, Vec<CallKey>> = FxHashMap::default();
    for (c, members) in convs.iter().enumerate() {
        for (k, &r) in members.iter().enumerate() {
            for (j, call) in rows[r].spawns.iter().enumerate() {
                by_prompt
                    .entry(call.prompt.as_str())
                    .or_default()
                    .push((c, k, j));
            }
        }
    }
    if by_prompt.is_empty() {
        return Ok(Vec::new());
    }
    let mut order: Vec<usize> = (0..convs.len()).filter(|&c| !convs[c].is_empty()).collect();
    order.sort_by_key(|&c| (rows[convs[c][0]].started.micros, rows[convs[c][0]].order));
    // Rows are read and parsed in parallel (one pooled connection per task); the choices
    // below are made in order, as before.
    let caps = crate::capture::Pool::new(Capture::open(cap.path())?);
    let first_texts: Vec<Vec<String>> = order
        .par_iter()
        .map(|&c| {
            let first = &rows[convs[c][0]];
            Ok(caps
                .get()?
                .with_row(&first.id, |row| row.body.map(first_message_texts))?
                .flatten()
                .unwrap_or_default())
        })
        .collect::<Result<_, CaptureError>>()?;
    let mut claimed: FxHashSet<CallKey> = FxHashSet::default();
    let mut is_child = vec![false; convs.len()];
    let mut found: Vec<(usize, CallKey)> = Vec::new();
    for (c, texts) in order.into_iter().zip(first_texts) {
        let first = &rows[convs[c][0]];
        let mut best: Option<(i64, CallKey)> = None;
        for key in texts
            .iter()
            .filter_map(|t| by_prompt.get(t.as_str()))
            .flatten()
        {
            let &(p, k, _) = key;
            let spawner = &rows[convs[p][k]];
            let at = spawner.started.micros;
            if p == c || is_child[p] || claimed.contains(key) || at > first.started.micros {
                continue;
            }
            // A sub-agent's requests carry its parent's session id (current Claude Code).
            if spawner.session.is_some()
                && first.session.is_some()
                && spawner.session != first.session
            {
                continue;
            }
            // The latest call wins; among calls of one instant, the first made.
            if best.is_none_or(|(t, b)| at > t || (at == t && *key < b)) {
                best = Some((at, *key));
            }
        }
        if let Some((_, key)) = best {
            claimed.insert(key);
            is_child[c] = true;
            found.push((c, key));
        }
    }
    // Each call's result, looked for in the spawning turn's next requests: the calls of
    // one turn (siblings share those requests) in one task, in parallel.
    let mut by_turn: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    {
        let mut slot: FxHashMap<(usize, usize), usize> = FxHashMap::default();
        for (n, (_, (parent, turn, _))) in found.iter().enumerate() {
            let g = *slot.entry((*parent, *turn)).or_insert_with(|| {
                by_turn.push(((*parent, *turn), Vec::new()));
                by_turn.len() - 1
            });
            by_turn[g].1.push(n);
        }
    }
    let looked_up: Vec<Vec<(usize, Option<ResultFacts>)>> = by_turn
        .par_iter()
        .map(|&((parent, turn), ref calls)| {
            let cap = caps.get()?;
            let mut results: FxHashMap<usize, FxHashMap<String, ResultFacts>> =
                FxHashMap::default();
            let mut out = Vec::with_capacity(calls.len());
            for &n in calls {
                let (_, (_, _, j)) = found[n];
                let call = &rows[convs[parent][turn]].spawns[j];
                let mut result = None;
                let after = convs[parent].iter().enumerate().skip(turn + 1);
                for (later, &r) in after.take(RESULT_HORIZON) {
                    let facts = match results.entry(r) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => e.insert(
                            cap.with_row(&rows[r].id, |row| {
                                row.body.map(|b| tool_results(b, later))
                            })?
                            .flatten()
                            .unwrap_or_default(),
                        ),
                    };
                    if let Some(f) = facts.get(&call.tool_use_id) {
                        result = Some(f.clone());
                        break;
                    }
                }
                out.push((n, result));
            }
            Ok(out)
        })
        .collect::<Result<_, CaptureError>>()?;
    let mut results: Vec<Option<ResultFacts>> = vec![None; found.len()];
    for (n, r) in looked_up.into_iter().flatten() {
        results[n] = r;
    }
    let mut links = Vec::with_capacity(found.len());
    let mut used: FxHashSet<(usize, String)> = FxHashSet::default();
    for ((child, (parent, turn, j)), result) in found.into_iter().zip(results) {
        let call = rows[convs[parent][turn]].spawns[j].clone();
        let named = result.as_ref().and_then(|f| f.agent_id.clone());
        let agent_id = match named.filter(|id| !used.contains(&(parent, id.clone()))) {
            Some(id) => id,
            None => derived_agent_id(&rows[convs[child][0]].id),
        };
        used.insert((parent, agent_id.clone()));
        links.push(Link {
            child,
            parent,
            turn,
            call_index: j,
            call,
            result,
            agent_id,
        });
    }
    // Links in the order of the calls: siblings spawned together keep it.
    links.sort_by_key(|l| (l.parent, l.turn, l.call_index));
    Ok(links)
}

/// `a` + 16 hex digits of SHA-256 of the sub-agent's first request id (the shape of
/// Claude Code 2.1's ids).
fn derived_agent_id(request_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(request_id.as_bytes());
    let mut s = String::from("a");
    for b in &h[..8] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The messages of a request body, parsed; `None` for a body that does not split.
fn messages_of(body: &str) -> Option<Vec<Value>> {
    let parts = pyjson::split_body(body).ok()?;
    match pyjson::to_serde(parts.messages?)? {
        Value::Array(m) => Some(m),
        _ => None,
    }
}

/// A content value's texts: the string itself, or each text block's text.
pub fn texts_of(content: &Value) -> Vec<String> {
    match content {
        Value::String(s) => vec![s.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The texts of the first message of a request body (where a sub-agent's prompt is).
fn first_message_texts(body: &str) -> Vec<String> {
    messages_of(body)
        .and_then(|m| m.first().and_then(|f| f.get("content")).map(texts_of))
        .unwrap_or_default()
}

/// Every `tool_result` block of a body whose text can belong to a sub-agent, by
/// `tool_use_id`. The body is parsed only when it holds a tool result at all.
fn tool_results(body: &str, turn: usize) -> FxHashMap<String, ResultFacts> {
    let mut out = FxHashMap::default();
    if !body.contains("tool_result") {
        return out;
    }
    for m in messages_of(body).unwrap_or_default().iter().rev() {
        let Some(Value::Array(blocks)) = m.get("content") else {
            continue;
        };
        for b in blocks {
            if b.get("type").and_then(Value::as_str) != Some("tool_result") {
                continue;
            }
            let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
                continue;
            };
            if out.contains_key(id) {
                continue;
            }
            let text = b
                .get("content")
                .map(texts_of)
                .unwrap_or_default()
                .join("\n");
            let is_error = b.get("is_error") == Some(&Value::Bool(true));
            out.insert(id.to_owned(), result_facts(&text, is_error, turn));
        }
    }
    out
}

/// Read a tool result's text.
fn result_facts(text: &str, is_error: bool, turn: usize) -> ResultFacts {
    let agent_id = text.find("agentId: ").and_then(|i| {
        let rest = &text[i + "agentId: ".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| rest[..end].to_owned())
    });
    // Claude Code 2.0 and later name the agent in the result and log a status; 1.0.x
    // does neither (its logs give no status: "unknown").
    let status = if text.trim_start().starts_with("Async agent launched") {
        "async_launched"
    } else if agent_id.is_some() && !is_error {
        "completed"
    } else {
        "unknown"
    };
    let usage = text.find("<usage>").map(|i| &text[i..]);
    let number = |key: &str| -> Option<u64> {
        let u = usage?;
        let rest = &u[u.find(key)? + key.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    ResultFacts {
        turn,
        status,
        agent_id,
        total_tokens: number("total_tokens:"),
        tool_uses: number("tool_uses:"),
        duration_ms: number("duration_ms:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_calls_from_streamed_and_whole_replies() {
        let whole = r#"{"statusCode":200,"body":{"id":"msg_1","content":[{"type":"text","text":"go"},{"type":"tool_use","id":"toolu_1","name":"Task","input":{"prompt":"look","subagent_type":"Explore"}},{"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"x"}}]}}"#;
        let calls = spawn_calls(whole);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].tool_use_id, "toolu_1");
        assert_eq!(calls[0].prompt, "look");
        assert_eq!(calls[0].subagent_type.as_deref(), Some("Explore"));
        let chunks = [
            r#"data: {"type":"message_start","message":{"id":"msg_2","content":[]}}"#,
            r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_3","name":"Agent","input":{}}}"#,
            r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"prompt\": \"re"}}"#,
            r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"ad it\", \"description\": \"d\"}"}}"#,
            r#"data: {"type":"content_block_stop","index":0}"#,
        ];
        let env = serde_json::json!({"statusCode": 200, "body": {"id": "msg_2", "content": []}, "streamingChunks": chunks});
        let calls = spawn_calls(&env.to_string());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "Agent");
        assert_eq!(calls[0].prompt, "read it");
        assert_eq!(calls[0].description.as_deref(), Some("d"));
        assert_eq!(calls[0].subagent_type, None);
    }

    #[test]
    fn result_texts() {
        let f = result_facts(
            "Async agent launched successfully.\nagentId: ab932e0e0441225d0 (internal ID)",
            false,
            3,
        );
        assert_eq!(f.status, "async_launched");
        assert_eq!(f.agent_id.as_deref(), Some("ab932e0e0441225d0"));
        assert_eq!(f.turn, 3);
        let f = result_facts(
            "Found it.\nagentId: a680dc9 (for resuming)\n<usage>total_tokens: 120\ntool_uses: 2\nduration_ms: 900</usage>",
            false,
            1,
        );
        assert_eq!(f.status, "completed");
        assert_eq!(f.agent_id.as_deref(), Some("a680dc9"));
        assert_eq!(
            (f.total_tokens, f.tool_uses, f.duration_ms),
            (Some(120), Some(2), Some(900))
        );
        let f = result_facts("no such agent", true, 1);
        assert_eq!(
            (f.status, f.agent_id, f.total_tokens),
            ("unknown", None, None)
        );
    }

    #[test]
    fn first_texts_and_results_of_a_body() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>x</system-reminder>"},{"type":"text","text":"do it"}]},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Task","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"done\nagentId: a1 (x)"}]}]}"#;
        assert_eq!(
            first_message_texts(body),
            vec!["<system-reminder>x</system-reminder>", "do it"]
        );
        let r = tool_results(body, 2);
        assert_eq!(r["t1"].agent_id.as_deref(), Some("a1"));
        assert_eq!(r["t1"].status, "completed");
    }
}
