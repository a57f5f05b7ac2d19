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

fn keep_or_replace(v: &mut J, salt: &Salt, kind: &str, public: &dyn Fn(&str) -> bool) {
    if let J::Str(s) = v {
        if !public(s) {
            *s = placeholder(salt, kind, s);
        }
    }
}

fn in_list(list: &'static [&'static str]) -> impl Fn(&str) -> bool {
    move |s| list.contains(&s)
}

/// Scrub every word of an assembled trace (§4.8): see the module docs.
pub fn scrub(trace: &mut J, salt: &Salt) {
    let J::Obj(fields) = trace else { return };
    for (k, v) in fields.iter_mut() {
        match *k {
            "model" => keep_or_replace(v, salt, "model", &is_public_model),
            "models" => {
                if let J::List(items) = v {
                    for m in items.iter_mut() {
                        keep_or_replace(m, salt, "model", &is_public_model);
                    }
                    items.sort_by(|a, b| match (a, b) {
                        (J::Str(x), J::Str(y)) => x.cmp(y),
                        _ => std::cmp::Ordering::Equal,
                    });
                    items.dedup();
                }
            }
            "stop" => keep_or_replace(v, salt, "stop", &in_list(STOP_REASONS)),
            "output_types" => {
                if let J::List(items) = v {
                    for t in items.iter_mut() {
                        keep_or_replace(t, salt, "block", &in_list(BLOCK_TYPES));
                    }
                    items.sort_by(|a, b| match (a, b) {
                        (J::Str(x), J::Str(y)) => x.cmp(y),
                        _ => std::cmp::Ordering::Equal,
                    });
                    items.dedup();
                }
            }
            "subagent_type" => keep_or_replace(v, salt, "agent-type", &in_list(AGENT_TYPES)),
            "status" => keep_or_replace(v, salt, "status", &in_list(STATUSES)),
            "duration_ms" | "total_tokens" | "tool_use_count"
                if !matches!(v, J::Int(_) | J::Float(_) | J::Null) =>
            {
                *v = J::Null;
            }
            "requests" => {
                if let J::List(items) = v {
                    for item in items.iter_mut() {
                        scrub(item, salt);
                    }
                }
            }
            _ => {}
        }
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
