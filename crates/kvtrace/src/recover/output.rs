//! Writing recovered conversations as Claude Code session logs (spec §3 shape), so that
//! build-minimal-traces and validate-trace-cache read them unchanged.
//!
//! One file per conversation, `<12 hex>-recovered.jsonl`, the hex being the first 12
//! characters of SHA-256 of the conversation's first request id (deterministic). Each turn
//! is one `assistant` entry naming the turn's message id and model, timestamped with the
//! row's `timestamp` (UTC, milliseconds, `Z`), chained by `uuid`/`parentUuid`.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::link::SpawnCall;
use crate::stamp::Stamp;

/// One turn as written.
#[derive(Debug, Clone)]
pub struct EntryFacts<'a> {
    pub message_id: &'a str,
    pub model: &'a str,
    pub ts: Stamp,
}

fn sha_hex(text: &str) -> String {
    let h = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(64);
    for b in h {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The file stem (= session id) of a conversation whose first request is `request_id`;
/// `attempt` > 0 re-derives on the (unlikely) collision of two stems.
pub fn stem_for(request_id: &str, attempt: usize) -> String {
    let text = match attempt {
        0 => request_id.to_owned(),
        n => format!("{request_id}#{n}"),
    };
    // The hex comes first: traces are named after the first 12 characters of the session
    // id (spec §4.5), so `recovered-<hex>` would give every trace the same name.
    format!("{}-recovered", &sha_hex(&text)[..12])
}

/// A deterministic UUID-shaped id for entry `k` of session `stem`.
fn entry_uuid(stem: &str, k: usize) -> String {
    let h = sha_hex(&format!("{stem}:{k}"));
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Claude Code's timestamp shape: `2026-03-02T09:00:00.123Z` (UTC, milliseconds).
pub fn claude_timestamp(ts: Stamp) -> String {
    let ms = ts.micros.div_euclid(1000);
    let whole = Stamp {
        micros: ms.div_euclid(1000) * 1_000_000,
        offset_min: Some(0),
    };
    let iso = whole.isoformat();
    // isoformat of a whole second with offset 0: `YYYY-MM-DDTHH:MM:SS+00:00`.
    let head = iso.get(..19).unwrap_or(&iso);
    format!("{head}.{:03}Z", ms.rem_euclid(1000))
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The whole file: one line per turn, each ending in a newline.
pub fn session_text(stem: &str, turns: &[EntryFacts<'_>]) -> String {
    let mut w = SessionWriter::new(stem, None);
    for t in turns {
        w.assistant(t, &[]);
    }
    w.finish()
}

/// What a parent's tool result for a spawning call records (`toolUseResult`).
#[derive(Debug, Clone)]
pub struct LinkEntry<'a> {
    pub tool_use_id: &'a str,
    pub agent_id: &'a str,
    pub status: &'a str,
    pub total_duration_ms: Option<u64>,
    pub total_tokens: Option<u64>,
    pub total_tool_use_count: Option<u64>,
    pub ts: Stamp,
}

/// Writes the entries of one session file, chained by `uuid`/`parentUuid`: a parent
/// file (`agent` = `None`), or a sub-agent's file (sidechain entries with its `agentId`,
/// `sessionId` = the parent's).
pub struct SessionWriter<'a> {
    stem: &'a str,
    agent: Option<&'a str>,
    out: String,
    parent: Option<String>,
    k: usize,
}

impl<'a> SessionWriter<'a> {
    pub fn new(stem: &'a str, agent: Option<&'a str>) -> SessionWriter<'a> {
        SessionWriter {
            stem,
            agent,
            out: String::new(),
            parent: None,
            k: 0,
        }
    }

    /// One entry: `kind` with its `message` object text and any members after it.
    fn entry(&mut self, kind: &str, message: &str, extra: &str, ts: Stamp) {
        let uuid = match self.agent {
            None => entry_uuid(self.stem, self.k),
            Some(a) => entry_uuid(&format!("{}/{a}", self.stem), self.k),
        };
        self.k += 1;
        let parent_text = self.parent.as_deref().map_or("null".to_owned(), quoted);
        let agent = self
            .agent
            .map(|a| format!(",\"agentId\":{}", quoted(a)))
            .unwrap_or_default();
        let _ = writeln!(
            self.out,
            "{{\"parentUuid\":{parent_text},\"isSidechain\":{side},\"userType\":\"external\",\"sessionId\":{sid}{agent},\"type\":\"{kind}\",\"message\":{message}{extra},\"uuid\":{uuid_q},\"timestamp\":{ts}}}",
            side = self.agent.is_some(),
            sid = quoted(self.stem),
            uuid_q = quoted(&uuid),
            ts = quoted(&claude_timestamp(ts)),
        );
        self.parent = Some(uuid);
    }

    /// A turn's reply, with the spawning calls it made (as `tool_use` blocks).
    pub fn assistant(&mut self, t: &EntryFacts<'_>, calls: &[&SpawnCall]) {
        let mut content = String::new();
        for (i, c) in calls.iter().enumerate() {
            let mut input = format!("\"prompt\":{}", quoted(&c.prompt));
            if let Some(d) = &c.description {
                input = format!("\"description\":{},{input}", quoted(d));
            }
            if let Some(k) = &c.subagent_type {
                input.push_str(&format!(",\"subagent_type\":{}", quoted(k)));
            }
            let _ = write!(
                content,
                "{sep}{{\"type\":\"tool_use\",\"id\":{},\"name\":{},\"input\":{{{input}}}}}",
                quoted(&c.tool_use_id),
                quoted(&c.name),
                sep = if i == 0 { "" } else { "," },
            );
        }
        let message = format!(
            "{{\"id\":{},\"type\":\"message\",\"role\":\"assistant\",\"model\":{},\"content\":[{content}]}}",
            quoted(t.message_id),
            quoted(t.model)
        );
        self.entry("assistant", &message, "", t.ts);
    }

    /// A sub-agent's prompt: the first user message of its file.
    pub fn prompt(&mut self, text: &str, ts: Stamp) {
        let message = format!("{{\"role\":\"user\",\"content\":{}}}", quoted(text));
        self.entry("user", &message, "", ts);
    }

    /// The parent's tool result of a spawning call, linking the sub-agent's file.
    pub fn link(&mut self, l: &LinkEntry<'_>) {
        let message = format!(
            "{{\"role\":\"user\",\"content\":[{{\"type\":\"tool_result\",\"tool_use_id\":{}}}]}}",
            quoted(l.tool_use_id)
        );
        let mut result = format!(
            "\"status\":{},\"agentId\":{}",
            quoted(l.status),
            quoted(l.agent_id)
        );
        for (key, v) in [
            ("totalDurationMs", l.total_duration_ms),
            ("totalTokens", l.total_tokens),
            ("totalToolUseCount", l.total_tool_use_count),
        ] {
            if let Some(v) = v {
                let _ = write!(result, ",\"{key}\":{v}");
            }
        }
        self.entry(
            "user",
            &message,
            &format!(",\"toolUseResult\":{{{result}}}"),
            l.ts,
        );
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_stems() {
        let ts = Stamp::parse("2026-03-02T10:00:01.123456+01:00").unwrap();
        assert_eq!(claude_timestamp(ts), "2026-03-02T09:00:01.123Z");
        let s = stem_for("req-1", 0);
        assert_eq!(s.len(), 12 + "-recovered".len());
        assert!(s.ends_with("-recovered") && s[..12].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(s, stem_for("req-1", 0));
        assert_ne!(s, stem_for("req-1", 1));
    }

    #[test]
    fn session_lines_parse_back() {
        let ts = Stamp::parse("2026-03-02 09:00:00").unwrap();
        let turns = [
            EntryFacts {
                message_id: "msg_a",
                model: "m",
                ts,
            },
            EntryFacts {
                message_id: "msg_b",
                model: "m",
                ts,
            },
        ];
        let text = session_text("000000000000-recovered", &turns);
        let log = crate::session::SessionLog::parse_bytes(text.as_bytes());
        assert_eq!(log.message_ids, vec!["msg_a", "msg_b"]);
        assert_eq!(log.unparseable_lines, 0);
        let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(second["parentUuid"], first["uuid"]);
    }
}
