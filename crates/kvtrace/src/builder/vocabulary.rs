//! What `--anonymize` keeps of a trace's words (spec §4.8, docs/trace-format.md).
//!
//! Only public vocabulary survives: Anthropic model ids, Claude Code's built-in sub-agent
//! types, the API's stop reasons and content-block types, and the sub-agent result
//! statuses. Any other value (a custom model id, a user-defined agent's name, a status no
//! version of Claude Code writes) becomes `<kind>-<8 hex>`, the start of a salted SHA-256
//! of the value: stable within a run (and across runs with the same salt), so equal
//! values stay equal, but not reversible without the salt. The sub-agent counters
//! (`duration_ms`, `total_tokens`, `tool_use_count`) keep numbers only.

use sha2::{Digest, Sha256};

use crate::encode::blocks::Salt;
use crate::trace::doc::TraceDoc;
use crate::trace::json::J;

/// Claude Code's built-in sub-agent types.
const AGENT_TYPES: &[&str] = &[
    "general-purpose",
    "Explore",
    "Plan",
    "statusline-setup",
    "output-style-setup",
    "claude-code-guide",
];

/// Values of `toolUseResult.status`.
const STATUSES: &[&str] = &[
    "completed",
    "async_launched",
    "failed",
    "error",
    "killed",
    "interrupted",
    "running",
    "unknown",
];

/// The Messages API's `stop_reason` values (and `""`: none).
const STOP_REASONS: &[&str] = &[
    "",
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

/// The Messages API's content-block types.
const BLOCK_TYPES: &[&str] = &[
    "text",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
    "image",
    "document",
    "search_result",
];

/// An Anthropic model id as the API (or Bedrock / Vertex) names it: `claude-` then
/// dash-separated parts that are version numbers, a family (`opus`, `sonnet`, `haiku`,
/// `instant`), `v2`-style versions or an 8-digit date; `claude-2`/`claude-2.1`; an
/// optional `[1m]` context suffix, Bedrock's `us.anthropic.` prefix and `:0` suffix,
/// Vertex's `@20241022`.
pub fn is_public_model(id: &str) -> bool {
    let id = id.strip_suffix("[1m]").unwrap_or(id);
    // Bedrock: `anthropic.` after an optional cross-region prefix.
    let id = match id.split_once("anthropic.") {
        Some((
            "" | "us." | "eu." | "apac." | "global." | "jp." | "au." | "ca." | "us-gov.",
            rest,
        )) => rest,
        _ => id,
    };
    let id = id.split_once(':').map_or(id, |(a, b)| {
        if b.bytes().all(|c| c.is_ascii_digit()) && !b.is_empty() {
            a
        } else {
            id
        }
    });
    let id = id.split_once('@').map_or(id, |(a, date)| {
        if date.len() == 8 && date.bytes().all(|c| c.is_ascii_digit()) {
            a
        } else {
            id
        }
    });
    let Some(rest) = id.strip_prefix("claude-") else {
        return false;
    };
    let number = |p: &str| {
        !p.is_empty()
            && p.split('.')
                .all(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
    };
    let mut families = 0;
    for part in rest.split('-') {
        match part {
            "opus" | "sonnet" | "haiku" | "instant" => families += 1,
            p if number(p) => {}
            p if p.len() >= 2
                && p.starts_with('v')
                && p[1..].bytes().all(|c| c.is_ascii_digit()) => {}
            _ => return false,
        }
    }
    families == 1 || (families == 0 && number(rest))
}

/// `<kind>-<8 hex>` for a value that is not public vocabulary.
fn placeholder(salt: &Salt, kind: &str, value: &str) -> String {
    let h = Sha256::digest(format!("{}:{kind}:{value}", salt.expose()).as_bytes());
    let hex: String = h[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}-{hex}")
}

/// The value itself when public, else its placeholder.
fn word(s: &mut String, salt: &Salt, kind: &str, public: &dyn Fn(&str) -> bool) {
    if !public(s) {
        *s = placeholder(salt, kind, s);
    }
}

/// Every word of a list, then sorted and deduplicated (two values may share a
/// placeholder's place in the order, never its text).
fn words(list: &mut Vec<String>, salt: &Salt, kind: &str, public: &dyn Fn(&str) -> bool) {
    for s in list.iter_mut() {
        word(s, salt, kind, public);
    }
    list.sort();
    list.dedup();
}

fn in_list(list: &'static [&'static str]) -> impl Fn(&str) -> bool {
    move |s| list.contains(&s)
}

/// Anonymize an assembled trace (§4.8): its id becomes `trace_<number>` (four digits at
/// least), its agents `agent_001`, … in order of appearance, and every word not public
/// vocabulary a salted placeholder: see the module docs.
pub fn anonymize(doc: &mut TraceDoc, number: usize, salt: &Salt) {
    doc.id = format!("trace_{number:04}");
    words(&mut doc.models, salt, "model", &is_public_model);
    for r in doc.records_mut() {
        word(&mut r.model, salt, "model", &is_public_model);
        word(&mut r.stop, salt, "stop", &in_list(STOP_REASONS));
        words(&mut r.output_types, salt, "block", &in_list(BLOCK_TYPES));
    }
    for (n, a) in doc.subagents_mut().enumerate() {
        a.agent_id = format!("agent_{:03}", n + 1);
        if let Some(t) = &mut a.subagent_type {
            word(t, salt, "agent-type", &in_list(AGENT_TYPES));
        }
        if let J::Str(s) = &mut a.status {
            word(s, salt, "status", &in_list(STATUSES));
        }
        for counter in [
            &mut a.duration_ms,
            &mut a.total_tokens,
            &mut a.tool_use_count,
        ] {
            if !matches!(counter, J::Int(_) | J::Float(_) | J::Null) {
                *counter = J::Null;
            }
        }
        words(&mut a.models, salt, "model", &is_public_model);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_model_ids_and_others() {
        for id in [
            "claude-opus-4-6",
            "claude-opus-4-1-20250805",
            "claude-sonnet-4-5-20250929",
            "claude-3-5-haiku-20241022",
            "claude-3-opus-20240229",
            "claude-3-5-sonnet-v2@20241022",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "claude-sonnet-4-5[1m]",
            "claude-instant-1.2",
            "claude-2.1",
            "claude-2",
        ] {
            assert!(is_public_model(id), "{id}");
        }
        for id in [
            "claude-secret-project",
            "claude-opus-sonnet",
            "gpt-4",
            "my-model",
            "claude-",
            "claude-opus-4-6-acme",
            "acme.anthropic.claude-opus-4",
            "claude-opus-4:prod",
            "",
        ] {
            assert!(!is_public_model(id), "{id}");
        }
    }

    #[test]
    fn anonymize_replaces_fields_not_public_vocabulary() {
        use crate::trace::doc::{Entry, Record, SubagentEntry};
        let salt = Salt::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let rec = |model: &str, stop: &str| Record {
            t: 0.0,
            streaming: true,
            model: model.into(),
            input: 1,
            output: 1,
            hash_ids: vec![1],
            input_types: vec!["text".into()],
            output_types: vec!["text".into(), "acme_block".into()],
            stop: stop.into(),
            api_time: None,
            ttft: None,
            think_time: None,
        };
        let agent = |id: &str, kind: &str, status: J| {
            Entry::Subagent(SubagentEntry {
                t: 1.0,
                agent_id: id.into(),
                subagent_type: Some(kind.into()),
                duration_ms: J::Str("12".into()),
                total_tokens: J::Int(5),
                tool_use_count: J::Bool(true),
                status,
                requests: vec![rec("acme-model", "end_turn")],
                models: vec!["acme-model".into()],
                tool_tokens: 0,
                system_tokens: 0,
            })
        };
        let mut doc = TraceDoc {
            id: "5f0c9e2a-7b1".into(),
            models: vec!["claude-opus-4-6".into(), "acme-model".into()],
            block_size: 64,
            scope: "local",
            source: None,
            tool_tokens: 0,
            system_tokens: 0,
            entries: vec![
                Entry::Request(rec("claude-opus-4-6", "my_stop")),
                agent("a1b2", "Explore", J::Str("completed".into())),
                agent("c3d4", "my-reviewer", J::Str("weird".into())),
            ],
            totals: None,
            start_ts: None,
            analysis: None,
        };
        anonymize(&mut doc, 7, &salt);
        assert_eq!(doc.id, "trace_0007");
        let model = placeholder(&salt, "model", "acme-model");
        assert_eq!(
            doc.models,
            vec!["claude-opus-4-6".to_owned(), model.clone()]
        );
        let Entry::Request(r) = &doc.entries[0] else {
            panic!()
        };
        assert_eq!(r.stop, placeholder(&salt, "stop", "my_stop"));
        assert!(r
            .output_types
            .contains(&placeholder(&salt, "block", "acme_block")));
        let agents: Vec<&SubagentEntry> = doc
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Subagent(s) => Some(s),
                Entry::Request(_) => None,
            })
            .collect();
        assert_eq!(agents[0].agent_id, "agent_001");
        assert_eq!(agents[1].agent_id, "agent_002");
        assert_eq!(agents[0].subagent_type.as_deref(), Some("Explore"));
        assert_eq!(
            agents[1].subagent_type,
            Some(placeholder(&salt, "agent-type", "my-reviewer"))
        );
        assert_eq!(agents[0].status, J::Str("completed".into()));
        assert_eq!(
            agents[1].status,
            J::Str(placeholder(&salt, "status", "weird"))
        );
        assert_eq!(
            (
                &agents[0].duration_ms,
                &agents[0].total_tokens,
                &agents[0].tool_use_count
            ),
            (&J::Null, &J::Int(5), &J::Null)
        );
        assert_eq!(agents[0].requests[0].model, model);
        assert_eq!(agents[0].models, vec![model]);
    }

    #[test]
    fn placeholders_are_stable_and_salted() {
        let a = Salt::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let b = Salt::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        let p = placeholder(&a, "model", "acme-internal");
        assert_eq!(p, placeholder(&a, "model", "acme-internal"));
        assert_ne!(p, placeholder(&b, "model", "acme-internal"));
        assert!(p.starts_with("model-") && p.len() == "model-".len() + 8);
        assert!(!p.contains("acme"));
    }
}
