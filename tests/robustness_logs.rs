//! Hardening, damaged session logs: every tool that reads session files skips and counts
//! bad lines and files and names unreadable ones (spec §7).

use std::time::Instant;

use serde_json::Value;

mod common;
use common::harness::*;

// ---------------------------------------------------------------------------------------
// Damaged session logs
// ---------------------------------------------------------------------------------------

#[test]
fn an_unreadable_session_file_is_skipped_counted_and_named_by_every_tool() {
    // A session file whose read fails (EIO), even as root: a symlink to /proc/self/mem.
    let c = Cap::new();
    let name = "aaaaaaaa-0000-4000-8000-000000000000.jsonl";
    let link = c.jsonl().join(name);
    if std::os::unix::fs::symlink("/proc/self/mem", &link).is_err() || std::fs::read(&link).is_ok()
    {
        common::unavailable("an unreadable file (a symlink to /proc/self/mem)");
        return;
    }
    let named = |r: &Run| {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with("warning: cannot read") && l.contains(name)),
            "{}: {}",
            r.what,
            r.stderr
        );
    };
    let listed = |v: &Value, key: &str| {
        let files = v[key].as_array().unwrap_or_else(|| panic!("{key}: {v}"));
        assert_eq!(files.len(), 1, "{v}");
        assert!(files[0]["path"].as_str().unwrap().ends_with(name));
    };
    let runs = db_tools(&c);
    runs.all_ok();
    for r in [&runs.bmt, &runs.bci, &runs.list, &runs.viz, &runs.validate] {
        named(r);
    }
    let bmt = runs.bmt.json();
    assert_eq!(bmt["skipped"]["unreadable_files"], 1);
    listed(&bmt, "unreadable_files");
    listed(&runs.bci.json(), "unreadable_files");
    listed(&runs.validate.reported(), "unreadable_files");
    // list-conversations has no row for it (there was a row with an empty id).
    let list = runs.list.json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !r["id"].as_str().unwrap().is_empty()));

    let ss = run(
        "session-stats",
        &[c.jsonl().as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    named(&ss);
    listed(&ss.json(), "unreadable_files");
    let rec = run(
        "recover-conversations",
        &[
            c.db().as_os_str(),
            "--output-dir".as_ref(),
            c.p("rec").as_os_str(),
            "--exclude-indexed".as_ref(),
            c.jsonl().as_os_str(),
            "--json".as_ref(),
        ],
    );
    named(&rec);
    listed(&rec.json(), "unreadable_files");
}

/// The tools that read session logs, on `c`: (build summary, all runs).
fn log_tools(c: &Cap) -> (Value, Vec<Run>) {
    let runs = db_tools(c);
    runs.all_ok();
    let summary = runs.bmt.json();
    let bci = runs.bci.json();
    // build-conversation-index and session-stats read every *.jsonl (orphans too).
    let built = summary["skipped"]["unparseable_lines"].as_u64().unwrap();
    assert!(count(&bci, "unparseable_lines") >= built, "{bci}");
    let ss = run(
        "session-stats",
        &[c.jsonl().as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    let ssj = ss.json();
    assert!(ssj["total"]["unparseable_lines"].as_u64().unwrap() >= built);
    (summary, vec![ss])
}

#[test]
fn jsonl_invalid_utf8_and_truncated_last_line() {
    let c = Cap::new();
    c.append(
        PARENT_B,
        b"{\"type\":\"user\",\"x\":\"\xff\xfe\"}\n\xc3\x28 debris\n{\"type\":\"assistant\",\"message\":{\"id\":\"msg_tr",
    );
    let (s, _) = log_tools(&c);
    assert_eq!(s["skipped"]["unparseable_lines"], GOLDEN_UNPARSEABLE + 3);
    assert_eq!(s["traces"], 3);
}

#[test]
fn jsonl_deeply_nested_line() {
    let c = Cap::new();
    let line = format!(
        "{{\"type\":\"assistant\",\"message\":{{\"id\":\"msg_deep\",\"content\":{}}}}}\n",
        deep(10_000)
    );
    c.append(PARENT_B, line.as_bytes());
    let (s, _) = log_tools(&c);
    assert_eq!(s["skipped"]["unparseable_lines"], GOLDEN_UNPARSEABLE + 1);
    assert_eq!(s["traces"], 3);
}

#[test]
fn jsonl_hundred_megabyte_line() {
    let c = Cap::new();
    let mut line = Vec::with_capacity(100_000_100);
    line.extend_from_slice(
        b"{\"type\":\"assistant\",\"timestamp\":\"2026-03-25T19:48:46.000Z\",\"message\":{\"id\":\"msg_big\",\"content\":[{\"type\":\"text\",\"text\":\"",
    );
    line.resize(line.len() + 100_000_000, b'a');
    line.extend_from_slice(b"\"}]}}\n");
    c.append(PARENT_C, &line);
    drop(line);
    let t0 = Instant::now();
    let (s, _) = log_tools(&c);
    // The line parses; its id has no row.
    assert_eq!(s["skipped"]["unparseable_lines"], GOLDEN_UNPARSEABLE);
    assert_eq!(s["skipped"]["unmatched_messages"], 1);
    eprintln!("100 MB line, all tools: {:?}", t0.elapsed());
}

#[test]
fn agent_files_and_links() {
    let c = Cap::new();
    // An agent file no parent links to, in both layouts.
    std::fs::write(
        c.jsonl().join("agent-ffff0000ffff0000.jsonl"),
        "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_orphan\"},\"timestamp\":\"2026-03-25T19:42:06.000Z\"}\n",
    )
    .unwrap();
    std::fs::create_dir_all(c.jsonl().join("no-such-parent/subagents")).unwrap();
    std::fs::write(
        c.jsonl()
            .join("no-such-parent/subagents/agent-eeee0000eeee0000.jsonl"),
        "garbage\n",
    )
    .unwrap();
    let link = |agent: &str| {
        format!(
            "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_x\"}}]}},\"toolUseResult\":{{\"status\":\"completed\",\"agentId\":\"{agent}\"}},\"timestamp\":\"2026-03-25T21:00:00.000Z\"}}\n"
        )
    };
    // A link to an agent file that does not exist, and a second link to an existing agent.
    c.append(PARENT_C, link("deadbeefdeadbeef").as_bytes());
    c.append(PARENT_B, link("c4d5e6f7a8b90123").as_bytes());
    let (s, _) = log_tools(&c);
    assert_eq!(s["skipped"]["missing_agent_files"], 1);
    assert_eq!(s["skipped"]["duplicate_links"], 1);
    assert_eq!(s["traces"], 3);
    assert_eq!(s["subagents"], 4, "the golden sub-agents, no more");
}
