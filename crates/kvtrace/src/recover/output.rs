//! Writing recovered conversations as Claude Code session logs (spec §3 shape), so that
//! build-minimal-traces and validate-trace-cache read them unchanged.
//!
//! One file per conversation, `<12 hex>-recovered.jsonl`, the hex being the first 12
//! characters of SHA-256 of the conversation's first request id (deterministic). Each turn
//! is one `assistant` entry naming the turn's message id and model, timestamped with the
//! row's `timestamp` (UTC, milliseconds, `Z`), chained by `uuid`/`parentUuid`.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

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
    let mut out = String::with_capacity(turns.len() * 400);
    let mut parent: Option<String> = None;
    for (k, t) in turns.iter().enumerate() {
        let uuid = entry_uuid(stem, k);
        let parent_text = parent.as_deref().map_or("null".to_owned(), quoted);
        let _ = writeln!(
            out,
            "{{\"parentUuid\":{parent_text},\"isSidechain\":false,\"userType\":\"external\",\"sessionId\":{sid},\"type\":\"assistant\",\"message\":{{\"id\":{mid},\"type\":\"message\",\"role\":\"assistant\",\"model\":{model},\"content\":[]}},\"uuid\":{uuid_q},\"timestamp\":{ts}}}",
            sid = quoted(stem),
            mid = quoted(t.message_id),
            model = quoted(t.model),
            uuid_q = quoted(&uuid),
            ts = quoted(&claude_timestamp(t.ts)),
        );
        parent = Some(uuid);
    }
    out
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
