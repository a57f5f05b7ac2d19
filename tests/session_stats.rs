//! session-stats on the example session logs, checked against counts made
//! here with serde_json alone, and on hand-written logs with known answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

mod common;

fn run(args: &[&std::ffi::OsStr]) -> Output {
    common::run("session-stats", args)
}

fn json_of(paths: &[&Path]) -> Value {
    let mut args: Vec<&std::ffi::OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    args.push("--format".as_ref());
    args.push("json".as_ref());
    let out = run(&args);
    assert!(
        out.status.success(),
        "session-stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the test itself counts in one file.
#[derive(Default, Debug)]
struct Expected {
    events: u64,
    bad: u64,
    by_type: BTreeMap<String, u64>,
    ids: BTreeSet<String>,
    assistant_lines: u64,
    models: BTreeMap<String, BTreeSet<String>>,
    tools: BTreeMap<String, BTreeSet<String>>,
    subagents: BTreeMap<String, u64>,
    last_usage: HashMap<String, Value>,
    last_stop: HashMap<String, String>,
}

fn count(path: &Path) -> Expected {
    let mut e = Expected::default();
    let bytes = std::fs::read(path).unwrap();
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = match std::str::from_utf8(line)
            .ok()
            .and_then(|s| serde_json::from_str(s).ok())
        {
            Some(v @ Value::Object(_)) => v,
            _ => {
                e.bad += 1;
                continue;
            }
        };
        e.events += 1;
        *e.by_type
            .entry(v["type"].as_str().unwrap_or("(none)").to_owned())
            .or_default() += 1;
        if v["type"] != "assistant" {
            continue;
        }
        e.assistant_lines += 1;
        let m = &v["message"];
        let id = m["id"].as_str().unwrap().to_owned();
        e.ids.insert(id.clone());
        e.models
            .entry(m["model"].as_str().unwrap().to_owned())
            .or_default()
            .insert(id.clone());
        for b in m["content"].as_array().into_iter().flatten() {
            if b["type"] == "tool_use" {
                let name = b["name"].as_str().unwrap().to_owned();
                let fresh = e
                    .tools
                    .entry(name.clone())
                    .or_default()
                    .insert(b["id"].as_str().unwrap().to_owned());
                if fresh && (name == "Task" || name == "Agent") {
                    let kind = b["input"]["subagent_type"].as_str().unwrap().to_owned();
                    *e.subagents.entry(kind).or_default() += 1;
                }
            }
        }
        if m["usage"].is_object() {
            e.last_usage.insert(id.clone(), m["usage"].clone());
        }
        if let Some(s) = m["stop_reason"].as_str() {
            e.last_stop.insert(id, s.to_owned());
        }
    }
    e
}

fn assert_matches(got: &Value, e: &Expected, what: &str) {
    let n = |k: &str| got[k].as_u64().unwrap_or_else(|| panic!("{what}: no {k}"));
    assert_eq!(n("events"), e.events, "{what}: events");
    assert_eq!(n("unparseable_lines"), e.bad, "{what}: unparseable");
    assert_eq!(got["events_by_type"], json!(e.by_type), "{what}: by type");
    assert_eq!(
        n("assistant_responses"),
        e.ids.len() as u64,
        "{what}: responses"
    );
    assert_eq!(n("assistant_lines"), e.assistant_lines, "{what}: lines");
    let models: BTreeMap<&String, usize> = e.models.iter().map(|(k, s)| (k, s.len())).collect();
    assert_eq!(got["responses_by_model"], json!(models), "{what}: models");
    let tools: BTreeMap<&String, usize> = e.tools.iter().map(|(k, s)| (k, s.len())).collect();
    assert_eq!(got["tool_calls_by_name"], json!(tools), "{what}: tools");
    assert_eq!(
        got["subagents_by_type"],
        json!(e.subagents),
        "{what}: sub-agents"
    );
    let sum = |k: &str| -> u64 {
        e.last_usage
            .values()
            .map(|u| u[k].as_u64().unwrap_or(0))
            .sum()
    };
    let split = |k: &str| -> u64 {
        e.last_usage
            .values()
            .map(|u| u["cache_creation"][k].as_u64().unwrap_or(0))
            .sum()
    };
    let usage = json!({
        "input": sum("input_tokens"),
        "output": sum("output_tokens"),
        "cache_creation": sum("cache_creation_input_tokens"),
        "cache_read": sum("cache_read_input_tokens"),
        "cache_creation_1h": split("ephemeral_1h_input_tokens"),
        "cache_creation_5m": split("ephemeral_5m_input_tokens"),
    });
    assert_eq!(got["usage"], usage, "{what}: usage");
    let mut stops: BTreeMap<&str, u64> = BTreeMap::new();
    for id in &e.ids {
        if let Some(s) = e.last_stop.get(id) {
            *stops.entry(s).or_default() += 1;
        }
    }
    assert_eq!(got["stop_reasons"], json!(stops), "{what}: stop reasons");
    let unlogged = e.ids.len() - stops.values().sum::<u64>() as usize;
    assert_eq!(
        n("responses_without_stop_reason"),
        unlogged as u64,
        "{what}: no stop reason"
    );
}

fn example_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![common::examples().join("jsonl")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                files.push(p);
            }
        }
    }
    files
}

#[test]
fn examples_match_an_independent_count() {
    let dir = common::examples().join("jsonl");
    let report = json_of(&[&dir]);
    let sessions = report["sessions"].as_array().unwrap();
    let files = example_files();
    assert_eq!(files.len(), 6);
    assert_eq!(sessions.len(), 6);
    let mut total = Expected::default();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let got = sessions
            .iter()
            .find(|s| s["file"].as_str().unwrap().ends_with(&name))
            .unwrap_or_else(|| panic!("{name} not reported"));
        let sub = name.starts_with("agent-");
        assert_eq!(got["subagent"], json!(sub), "{name}");
        let e = count(f);
        assert_matches(got, &e, &name);
        total.events += e.events;
        total.assistant_lines += e.assistant_lines;
        total.ids.extend(e.ids);
        for (k, v) in e.subagents {
            *total.subagents.entry(k).or_default() += v;
        }
    }
    // The parent comes before its own sub-agents.
    let order: Vec<&str> = sessions
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    assert!(order[0].ends_with("044cdae1-5a94-4a34-aba2-da6792db55bc.jsonl"));
    assert!(order[1].contains("044cdae1-5a94-4a34-aba2-da6792db55bc/subagents/"));
    let conv = &sessions[0];
    assert_eq!(conv["subagents_by_type"], json!({"Explore": 4}));
    assert_eq!(conv["subagents_spawned"], json!(4));

    let t = &report["total"];
    assert_eq!(t["files"], json!(6));
    assert_eq!(t["subagent_files"], json!(4));
    assert_eq!(t["events"], json!(total.events));
    assert_eq!(t["assistant_lines"], json!(total.assistant_lines));
    assert_eq!(t["assistant_responses"], json!(total.ids.len()));
    assert_eq!(t["subagents_by_type"], json!(total.subagents));
    // Per-file cache phases add up to the total's, which cover every response once here.
    let phase_sum: u64 = ["building", "reuse"]
        .iter()
        .map(|p| t["cache_read_over_time"][p]["responses"].as_u64().unwrap())
        .sum();
    assert_eq!(phase_sum, total.ids.len() as u64);

    // The markdown output has one table per file and a total.
    let out = run(&[dir.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("## Session Stats Summary").count(), 7);
    assert!(text.contains("| Sub-agents: Explore | 4 |"));
}

#[test]
fn hand_written_log_has_known_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("s1.jsonl");
    let line = |v: Value| format!("{v}\n");
    let mut bytes = String::new();
    bytes += &line(json!({"type": "summary", "summary": "x"}));
    bytes += &line(
        json!({"type": "user", "timestamp": "2026-01-01T10:00:00.000Z",
        "message": {"role": "user", "content": "do it"}}),
    );
    // One response over three lines: thinking, text, tool_use; usage grows, last wins.
    for (i, block) in [
        json!({"type": "thinking", "thinking": "hm"}),
        json!({"type": "text", "text": "ok"}),
        json!({"type": "tool_use", "id": "toolu_1", "name": "Task", "input": {"subagent_type": "Plan"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let last = i == 2;
        bytes += &line(json!({"type": "assistant", "timestamp": format!("2026-01-01T10:00:0{}.000Z", i + 1),
            "message": {"id": "msg_A", "model": "claude-opus-4-6", "content": [block],
                "stop_reason": if last { json!("tool_use") } else { Value::Null },
                "usage": {"input_tokens": 10, "output_tokens": if last { 50 } else { 1 },
                    "cache_creation_input_tokens": 100, "cache_read_input_tokens": 0}}}));
    }
    bytes += "this is not json\n";
    bytes += &line(
        json!({"type": "user", "timestamp": "2026-01-01T10:01:00.000Z",
        "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]}}),
    );
    bytes += &line(
        json!({"type": "assistant", "timestamp": "2026-01-01T10:01:30.500Z",
        "message": {"id": "msg_B", "model": "claude-haiku-4-5", "content": [
            {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {}},
            {"type": "tool_use", "id": "toolu_3", "name": "Read", "input": {}}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 300}}}),
    );
    let mut bytes = bytes.into_bytes();
    bytes.extend_from_slice(b"{\"type\":\"user\",\"bad\":\"\xff\xfe\"}\n");
    bytes.extend_from_slice(br#"{"type":"assistant","message":{"id":"msg_C","#);
    std::fs::write(&session, &bytes).unwrap();

    let report = json_of(&[&session]);
    let s = &report["sessions"][0];
    assert_eq!(s["subagent"], json!(false));
    assert_eq!(s["lines"], json!(10));
    assert_eq!(s["events"], json!(7));
    assert_eq!(s["unparseable_lines"], json!(3));
    assert_eq!(
        s["events_by_type"],
        json!({"assistant": 4, "summary": 1, "user": 2})
    );
    assert_eq!(s["user"]["typed_prompts"], json!(1));
    assert_eq!(s["user"]["tool_results"], json!(1));
    assert_eq!(s["kind"], json!("session"));
    assert_eq!(s["assistant_responses"], json!(2));
    assert_eq!(s["assistant_lines"], json!(4));
    assert_eq!(
        s["responses_by_model"],
        json!({"claude-haiku-4-5": 1, "claude-opus-4-6": 1})
    );
    assert_eq!(s["responses_with_thinking"], json!(1));
    assert_eq!(s["thinking_share"], json!(0.5));
    assert_eq!(s["responses_with_tool_use"], json!(2));
    assert_eq!(s["tool_calls_by_name"], json!({"Read": 2, "Task": 1}));
    assert_eq!(s["subagents_by_type"], json!({"Plan": 1}));
    assert_eq!(s["activity"]["wall_s"], json!(90.5));
    assert_eq!(
        s["usage"],
        json!({"input": 15, "output": 57, "cache_creation": 100, "cache_read": 300,
            "cache_creation_1h": 0, "cache_creation_5m": 0})
    );
    assert_eq!(s["stop_reasons"], json!({"end_turn": 1, "tool_use": 1}));
    let phases = &s["cache_read_over_time"];
    assert_eq!(phases["building"]["responses"], json!(1));
    assert_eq!(phases["building"]["cache_read_share"], json!(0.0));
    assert_eq!(phases["reuse"]["responses"], json!(1));
    assert_eq!(phases["reuse"]["cache_read_share"], json!(300.0 / 305.0));
}

#[test]
fn directories_label_subagents_and_total_adds_up() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let entry = |id: &str, t: &str| {
        json!({"type": "assistant", "timestamp": t,
            "message": {"id": id, "model": "m", "content": [], "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 2}}})
        .to_string()
    };
    std::fs::create_dir_all(d.join("sess/subagents")).unwrap();
    std::fs::write(d.join("sess.jsonl"), entry("msg_1", "2026-01-01T00:00:00Z")).unwrap();
    std::fs::write(
        d.join("sess/subagents/agent-1.jsonl"),
        entry("msg_2", "2026-01-01T00:00:10Z"),
    )
    .unwrap();
    std::fs::write(
        d.join("agent-2.jsonl"),
        entry("msg_3", "2026-01-01T00:01:00Z"),
    )
    .unwrap();
    std::fs::write(d.join("notes.txt"), "ignored").unwrap();
    let report = json_of(&[d]);
    let labels: Vec<(String, bool)> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = PathBuf::from(s["file"].as_str().unwrap());
            // Named below the folder's own name, never by the absolute path.
            let rel = f
                .strip_prefix(d.file_name().unwrap())
                .unwrap()
                .display()
                .to_string();
            (rel, s["subagent"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("agent-2.jsonl".to_owned(), true),
            ("sess.jsonl".to_owned(), false),
            ("sess/subagents/agent-1.jsonl".to_owned(), true),
        ]
    );
    let t = &report["total"];
    assert_eq!(t["files"], json!(3));
    assert_eq!(t["subagent_files"], json!(2));
    assert_eq!(t["assistant_responses"], json!(3));
    assert_eq!(t["usage"]["output"], json!(6));
    assert_eq!(t["activity"]["wall_s"], json!(60.0));
}

#[test]
fn unusable_input_is_one_error_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec![tmp.path().join("missing.jsonl").into_os_string()],
        vec![tmp.path().as_os_str().to_owned()],
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: "), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The public session logs (Claude Code 1.0.29 to 2.1.114, both sub-agent layouts,
/// inline sidechains, warm-up agents) against count.py's independent per-file counts
/// (CPython's json alone; its rules are in its docstring).
#[test]
fn public_logs_match_count_py() {
    let root = common::fixtures().join("public-logs");
    let counts: Value =
        serde_json::from_slice(&std::fs::read(root.join("COUNTS.json")).unwrap()).unwrap();
    let report = json_of(&[&root]);
    let sessions = report["sessions"].as_array().unwrap();
    let files = counts["files"].as_object().unwrap();
    let mut checked = 0;
    let mut versions = BTreeSet::new();
    let (mut kinds, mut typed) = (BTreeMap::<String, u64>::new(), 0);
    for s in sessions {
        // "public-logs/<owner>__<repo>/…": the key of COUNTS.json is the path below root.
        let name = s["file"].as_str().unwrap();
        let key = name.strip_prefix("public-logs/").unwrap();
        let e = &files[key];
        assert!(e.is_object(), "{key} has no independent count");
        checked += 1;
        for v in e["versions"].as_array().unwrap() {
            versions.insert(v.as_str().unwrap().to_owned());
        }
        let ub = &e["user_buckets"];
        let u = &s["user"];
        let n = |v: &Value| v.as_u64().unwrap();
        let pairs = [
            (
                "typed prompts",
                n(&u["typed_prompts"]),
                n(&e["typed_prompts_main"]),
            ),
            (
                "sidechain prompts",
                n(&u["subagent_prompts"]) + n(&u["warmup_prompts"]),
                n(&e["typed_prompts"]) - n(&e["typed_prompts_main"]),
            ),
            (
                "tool result entries",
                n(&u["tool_results"]),
                n(&ub["tool_result"]),
            ),
            ("meta", n(&u["meta"]), n(&ub["meta"])),
            ("commands", n(&u["commands"]), n(&ub["command"])),
            (
                "command output",
                n(&u["local_command_outputs"]),
                n(&ub["local_command_output"]),
            ),
            ("interrupts", n(&u["interrupts"]), n(&ub["interrupt"])),
            ("bash mode", n(&u["bash_mode"]), n(&ub["bash_mode"])),
            (
                "compaction summaries",
                n(&u["compact_summaries"]),
                n(&ub["compact_summary"]),
            ),
            (
                "task notifications",
                n(&u["task_notifications"]),
                n(&ub["task_notification"]),
            ),
            ("no text", n(&u["no_text"]), n(&ub["no_text"])),
            (
                "tool results",
                n(&s["tool_results"]),
                n(&e["tool_result_blocks"]),
            ),
            (
                "tool errors",
                n(&s["tool_errors"]),
                n(&e["tool_result_errors"]),
            ),
            // count.py counts an assistant line without message.id as a response of its own.
            (
                "responses",
                n(&s["assistant_responses"]),
                n(&e["assistant_responses"]) - n(&e["assistant_lines_without_message_id"]),
            ),
            (
                "unparseable",
                n(&s["unparseable_lines"]),
                n(&e["unparseable_lines"]),
            ),
            (
                "cache writes",
                n(&s["usage"]["cache_creation"]),
                n(&e["usage"]["cache_creation_input_tokens"]),
            ),
            (
                "1h writes",
                n(&s["usage"]["cache_creation_1h"]),
                n(&e["usage"]["ephemeral_1h_input_tokens"]),
            ),
            (
                "5m writes",
                n(&s["usage"]["cache_creation_5m"]),
                n(&e["usage"]["ephemeral_5m_input_tokens"]),
            ),
            (
                "cache reads",
                n(&s["usage"]["cache_read"]),
                n(&e["usage"]["cache_read_input_tokens"]),
            ),
            (
                "input",
                n(&s["usage"]["input"]),
                n(&e["usage"]["input_tokens"]),
            ),
            (
                "output",
                n(&s["usage"]["output"]),
                n(&e["usage"]["output_tokens"]),
            ),
            (
                "split usage",
                n(&s["responses_with_cache_creation_split"]),
                n(&e["responses_with_cache_creation_object"]),
            ),
            (
                "compactions",
                n(&s["compactions"]),
                n(&e["compact_boundaries"]),
            ),
            (
                "background agents",
                n(&s["background_agents"]),
                n(&e["async_launched"]),
            ),
        ];
        for (what, got, want) in pairs {
            assert_eq!(got, want, "{key}: {what}");
        }
        // Inline sub-agents: count.py's sidechain chains, in files that have a main chain.
        if s["kind"] == "session" && n(&e["sidechain_lines"]) < n(&e["lines"]) {
            assert_eq!(
                n(&s["inline_subagents"]),
                n(&e["sidechain_chains"]),
                "{key}: inline"
            );
        }
        *kinds
            .entry(s["kind"].as_str().unwrap().to_owned())
            .or_default() += 1;
        typed += n(&u["typed_prompts"]);
    }
    let on_disk = files.keys().filter(|k| root.join(k).is_file()).count();
    assert_eq!(checked, on_disk, "every fixture file is reported");
    assert!(checked >= 40, "{checked}");
    // Several versions of both sub-agent layouts, warm-up agents told apart.
    for v in ["1.0.29", "1.0.128", "2.0.28", "2.0.71", "2.1.114"] {
        assert!(versions.contains(v), "{v} missing: {versions:?}");
    }
    let t = &report["total"];
    assert_eq!(t["warmup_agent_files"], json!(kinds["warmup"]));
    assert!(kinds["warmup"] > 0 && kinds["subagent"] > 0);
    assert_eq!(t["user"]["typed_prompts"], json!(typed));
    // The total's usage by kind adds up to its usage.
    let by_kind = &t["usage_by_kind"];
    let part = |k: &str| -> u64 {
        ["main", "subagents", "warmup", "compaction"]
            .iter()
            .map(|p| by_kind[p][k].as_u64().unwrap())
            .sum()
    };
    for k in ["input", "cache_creation", "cache_read", "output"] {
        assert_eq!(
            part(k),
            t["usage"][k].as_u64().unwrap(),
            "usage by kind: {k}"
        );
    }
}

/// Compactions, pauses, background agents, tool errors, a title, stop reasons not
/// logged, a `|` in a tool name: a hand-written conversation with known answers.
#[test]
fn compactions_pauses_and_background_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("-Users-me-src-app");
    std::fs::create_dir_all(project.join("s1/subagents")).unwrap();
    let lines = |v: &[Value]| v.iter().map(|l| format!("{l}\n")).collect::<String>();
    let reply = |id: &str, t: &str, read: u64, write: u64| {
        json!({"type": "assistant", "sessionId": "s1", "timestamp": t, "message": {"id": id,
            "model": "m", "content": [{"type": "tool_use", "id": format!("tu_{id}"), "name": "a|b", "input": {}}],
            "usage": {"input_tokens": 0, "output_tokens": 1, "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write,
                "cache_creation": {"ephemeral_1h_input_tokens": write, "ephemeral_5m_input_tokens": 0}}}})
    };
    let parent = lines(&[
        json!({"type": "user", "sessionId": "s1", "timestamp": "2026-01-01T10:00:00Z", "message": {"role": "user", "content": "fix the bug"}}),
        reply("m1", "2026-01-01T10:00:10Z", 0, 100),
        json!({"type": "user", "sessionId": "s1", "timestamp": "2026-01-01T10:00:20Z", "toolUseResult": {"status": "async_launched", "agentId": "bg1"},
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_m1", "content": "launched"}]}}),
        reply("m2", "2026-01-01T10:00:30Z", 90, 10),
        // A four-hour lunch, then a compaction.
        json!({"type": "system", "subtype": "compact_boundary", "sessionId": "s1", "timestamp": "2026-01-01T14:00:30Z",
            "compactMetadata": {"trigger": "manual", "preTokens": 1234}}),
        json!({"type": "user", "sessionId": "s1", "isCompactSummary": true, "timestamp": "2026-01-01T14:00:31Z",
            "message": {"role": "user", "content": "This session is being continued from a previous conversation. Summary: …"}}),
        reply("m3", "2026-01-01T14:00:40Z", 25, 75),
        json!({"type": "user", "sessionId": "s1", "timestamp": "2026-01-01T14:00:50Z",
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_m3", "is_error": true, "content": "no such file"}]}}),
        json!({"type": "user", "sessionId": "s1", "timestamp": "2026-01-01T14:01:00Z", "message": {"role": "user", "content": "[Request interrupted by user]"}}),
        json!({"type": "ai-title", "sessionId": "s1", "aiTitle": "Fix the bug"}),
    ]);
    std::fs::write(project.join("s1.jsonl"), parent).unwrap();
    let agent = |prompt: &str, id: &str, t: &str| {
        lines(&[
            json!({"type": "user", "isSidechain": true, "parentUuid": null, "sessionId": "s1", "timestamp": t,
                "message": {"role": "user", "content": prompt}}),
            json!({"type": "assistant", "isSidechain": true, "sessionId": "s1", "timestamp": t, "message": {"id": id,
                "model": "m", "content": [], "usage": {"input_tokens": 5, "output_tokens": 2}}}),
        ])
    };
    std::fs::write(
        project.join("s1/subagents/agent-bg1.jsonl"),
        agent("look around", "b1", "2026-01-01T10:00:25Z"),
    )
    .unwrap();
    std::fs::write(
        project.join("s1/subagents/agent-w1.jsonl"),
        agent("Warmup", "w1", "2026-01-01T10:00:01Z"),
    )
    .unwrap();
    std::fs::write(
        project.join("s1/subagents/agent-acompact-1.jsonl"),
        agent("summarize", "c1", "2026-01-01T14:00:29Z"),
    )
    .unwrap();

    // The project folder is given as listed, leading `-` and all, from its parent.
    let out = common::run_in(
        tmp.path(),
        "session-stats",
        &["-Users-me-src-app", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &report["sessions"][0];
    assert_eq!(s["file"], json!("-Users-me-src-app/s1.jsonl"));
    assert_eq!(s["title"], json!("Fix the bug"));
    let kinds: Vec<&str> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["session", "compaction", "subagent", "warmup"]);
    assert_eq!(s["user"]["typed_prompts"], json!(1));
    assert_eq!(s["user"]["compact_summaries"], json!(1));
    assert_eq!(s["user"]["interrupts"], json!(1));
    assert_eq!(
        (s["tool_results"].clone(), s["tool_errors"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(s["background_agents"], json!(1));
    assert_eq!(
        s["compaction_events"],
        json!([{"timestamp": "2026-01-01T14:00:30+00:00", "trigger": "manual", "pre_tokens": 1234,
            "cache_read_share_before": 0.9, "cache_read_share_after": 0.25}])
    );
    // 10:00:00 → 10:00:30 and 14:00:30 → 14:01:00 active; one pause of 4 h.
    let a = &s["activity"];
    assert_eq!(
        (a["active_s"].clone(), a["pauses"].clone()),
        (json!(60.0), json!(1))
    );
    assert_eq!(a["longest_pause_s"], json!(14400.0));
    assert_eq!(a["wall_s"], json!(14460.0));
    assert_eq!(s["usage"]["cache_creation_1h"], json!(185));
    assert_eq!(s["stop_reasons"], json!({}));
    assert_eq!(s["responses_without_stop_reason"], json!(3));

    let c = &report["conversations"].as_array().unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["session"], json!("s1"));
    assert_eq!(c[0]["files"], json!(4));
    let u = &c[0]["usage_by_kind"];
    assert_eq!(u["subagents"]["input"], json!(5));
    assert_eq!(u["background"]["input"], json!(5));
    assert_eq!(u["warmup"]["input"], json!(5));
    assert_eq!(u["compaction"]["input"], json!(5));
    assert_eq!(u["main"]["cache_read"], json!(115));
    let t = &report["total"];
    assert_eq!(
        (
            t["session_files"].clone(),
            t["subagent_files"].clone(),
            t["warmup_agent_files"].clone(),
            t["compaction_agent_files"].clone()
        ),
        (json!(1), json!(1), json!(1), json!(1))
    );
    assert_eq!(t["title"], Value::Null);

    // The markdown: the pipe escaped, "not logged", no absolute path.
    let out = common::run_in(tmp.path(), "session-stats", &["-Users-me-src-app"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("| Tool calls: a\\|b | 3 |"), "{text}");
    assert!(text.contains("| Stop reasons | not logged |"));
    assert!(text.contains("| 2026-01-01T14:00:30+00:00 | manual | 1,234 | 90.0% | 25.0% |"));
    assert!(!text.contains(&tmp.path().display().to_string()));
    // An unknown flag is still an error, a flag still a flag.
    let out = common::run_in(
        tmp.path(),
        "session-stats",
        &["-Users-me-src-app", "--pause", "20000", "-q", "--json"],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sessions"][0]["activity"]["pauses"], json!(0));
    let out = common::run_in(tmp.path(), "session-stats", &["-Users-me-src-app", "-x"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The real Claude Code 2.1.332 session with a manual `/compact`, two failing tools and
/// three background agents (tests/fixtures/real/cc2.1-compaction).
#[test]
fn real_compaction_capture() {
    let dir = common::fixtures().join("real/cc2.1-compaction/jsonl");
    let report = json_of(&[&dir]);
    let s = &report["sessions"][0];
    assert_eq!(s["kind"], json!("session"));
    let c = &s["compaction_events"][0];
    assert_eq!(
        (c["trigger"].clone(), c["pre_tokens"].clone()),
        (json!("manual"), json!(15140))
    );
    // The turn before read nearly all of its prompt from the cache; the fake API misses
    // after the compaction (Claude Code changes its billing header block then).
    assert!(c["cache_read_share_before"].as_f64().unwrap() > 0.99);
    assert_eq!(c["cache_read_share_after"], json!(0.0));
    let u = &s["user"];
    assert_eq!(u["typed_prompts"], json!(3), "{u}");
    assert_eq!(
        (u["commands"].clone(), u["compact_summaries"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(u["task_notifications"], json!(1));
    assert_eq!(
        (s["tool_errors"].clone(), s["background_agents"].clone()),
        (json!(2), json!(3))
    );
    let conv = &report["conversations"][0];
    assert_eq!(
        (conv["files"].clone(), conv["subagent_files"].clone()),
        (json!(4), json!(3))
    );
    let by_kind = &conv["usage_by_kind"];
    assert_eq!(by_kind["background"], by_kind["subagents"]);
    assert!(by_kind["subagents"]["cache_read"].as_u64().unwrap() > 0);
}
