//! session-stats on the example session logs, checked against counts made
//! here with serde_json alone, and on hand-written logs with known answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

mod common;

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_session-stats"))
        .args(args)
        .output()
        .expect("cannot run session-stats")
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
    let usage = json!({
        "input": sum("input_tokens"),
        "output": sum("output_tokens"),
        "cache_creation": sum("cache_creation_input_tokens"),
        "cache_read": sum("cache_read_input_tokens"),
    });
    assert_eq!(got["usage"], usage, "{what}: usage");
    let mut stops: BTreeMap<&str, u64> = BTreeMap::new();
    for id in &e.ids {
        *stops
            .entry(e.last_stop.get(id).map_or("(none)", String::as_str))
            .or_default() += 1;
    }
    assert_eq!(got["stop_reasons"], json!(stops), "{what}: stop reasons");
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
    assert_eq!(s["user_prompts"], json!(1));
    assert_eq!(s["user_tool_results"], json!(1));
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
    assert_eq!(s["duration_s"], json!(90.5));
    assert_eq!(
        s["usage"],
        json!({"input": 15, "output": 57, "cache_creation": 100, "cache_read": 300})
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
            let rel = f.strip_prefix(d).unwrap().display().to_string();
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
    assert_eq!(t["duration_s"], json!(60.0));
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
