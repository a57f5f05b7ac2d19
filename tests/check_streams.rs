//! check-streams: one hand-made stream per rule, each breaking exactly that
//! rule at a known chunk; a valid stream; and every stream of the example capture and of
//! a fresh synthetic capture must pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

mod common;

/// The `requests` table of the golden capture.
const SCHEMA: &str = "CREATE TABLE requests (
        id TEXT PRIMARY KEY, timestamp TEXT, method TEXT, endpoint TEXT, headers TEXT, body TEXT,
        user_agent TEXT, content_type TEXT, prompt_grade TEXT, response TEXT, model TEXT,
        original_model TEXT, routed_model TEXT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP);";

const MODEL: &str = "claude-opus-4-6";

fn check(args: &[&std::ffi::OsStr]) -> Output {
    common::run("check-streams", args)
}

fn check_json(db: &Path, extra: &[&str]) -> Value {
    let mut args = vec![db.as_os_str(), "--format".as_ref(), "json".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = check(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ev(v: Value) -> String {
    format!("data: {v}")
}

fn start() -> String {
    ev(
        json!({"type": "message_start", "message": {"id": "msg_01X", "type": "message",
        "role": "assistant", "model": MODEL, "content": [], "stop_reason": null,
        "usage": {"input_tokens": 3, "output_tokens": 1}}}),
    )
}
fn ping() -> String {
    ev(json!({"type": "ping"}))
}
fn block_start(i: u64, kind: &str) -> String {
    let block = match kind {
        "tool_use" => json!({"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}),
        "thinking" => json!({"type": "thinking", "thinking": "", "signature": ""}),
        k => json!({"type": k, "text": ""}),
    };
    ev(json!({"type": "content_block_start", "index": i, "content_block": block}))
}
fn text_delta(i: u64) -> String {
    ev(
        json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": "hi"}}),
    )
}
fn json_delta(i: u64, part: &str) -> String {
    ev(json!({"type": "content_block_delta", "index": i,
        "delta": {"type": "input_json_delta", "partial_json": part}}))
}
fn block_stop(i: u64) -> String {
    ev(json!({"type": "content_block_stop", "index": i}))
}
fn message_delta(reason: Value, usage: bool) -> String {
    let mut v =
        json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}});
    if usage {
        v["usage"] = json!({"output_tokens": 12});
    }
    ev(v)
}
fn message_stop() -> String {
    ev(json!({"type": "message_stop"}))
}

/// A valid stream: text block 0, tool_use block 1 with input split over two deltas.
///  0 start, 1 ping, 2 start#0, 3 text, 4 stop#0, 5 start#1, 6 json, 7 json, 8 stop#1,
///  9 message_delta, 10 message_stop
fn valid() -> Vec<String> {
    vec![
        start(),
        ping(),
        block_start(0, "text"),
        text_delta(0),
        block_stop(0),
        block_start(1, "tool_use"),
        json_delta(1, "{\"file_path\":"),
        json_delta(1, "\"/a\"}"),
        block_stop(1),
        message_delta(json!("tool_use"), true),
        message_stop(),
    ]
}

fn with(mut v: Vec<String>, at: usize, chunk: String) -> Vec<String> {
    v.insert(at, chunk);
    v
}
fn replace(mut v: Vec<String>, at: usize, chunk: String) -> Vec<String> {
    v[at] = chunk;
    v
}
fn without(mut v: Vec<String>, at: usize) -> Vec<String> {
    v.remove(at);
    v
}

/// Broken streams: (request id, chunks, request model, routed model, rule, chunk index,
/// whether that must be the stream's only violation).
type Case = (
    &'static str,
    Vec<String>,
    &'static str,
    Option<&'static str>,
    &'static str,
    usize,
    bool,
);

fn cases() -> Vec<Case> {
    let v = valid;
    vec![
        ("empty", vec![], MODEL, None, "empty_stream", 0, true),
        (
            "debug_line",
            with(v(), 3, "DEBUG: got chunk".into()),
            MODEL,
            None,
            "not_sse_data",
            3,
            true,
        ),
        (
            "event_line",
            with(v(), 1, "event: ping".into()),
            MODEL,
            None,
            "not_sse_data",
            1,
            true,
        ),
        (
            "bad_json",
            replace(v(), 3, "data: {\"type\":".into()),
            MODEL,
            None,
            "not_sse_data",
            3,
            true,
        ),
        (
            "no_space",
            replace(v(), 1, "data:{\"type\":\"ping\"}".into()),
            MODEL,
            None,
            "not_sse_data",
            1,
            true,
        ),
        (
            "unknown",
            replace(v(), 1, ev(json!({"type": "pong"}))),
            MODEL,
            None,
            "unknown_event",
            1,
            true,
        ),
        (
            "no_start",
            without(v(), 0),
            MODEL,
            None,
            "message_start_first",
            0,
            true,
        ),
        (
            "ping_first",
            with(v(), 0, ping()),
            MODEL,
            None,
            "message_start_first",
            0,
            true,
        ),
        (
            "two_starts",
            with(v(), 5, start()),
            MODEL,
            None,
            "message_start_once",
            5,
            true,
        ),
        (
            "after_stop",
            with(v(), 11, ping()),
            MODEL,
            None,
            "message_stop_last",
            11,
            true,
        ),
        (
            "no_stop",
            without(v(), 10),
            MODEL,
            None,
            "message_stop_last",
            9,
            true,
        ),
        (
            "two_stops",
            with(v(), 11, message_stop()),
            MODEL,
            None,
            "message_stop_once",
            11,
            true,
        ),
        (
            "index_from_1",
            vec![
                start(),
                block_start(1, "text"),
                text_delta(1),
                block_stop(1),
                message_delta(json!("end_turn"), true),
                message_stop(),
            ],
            MODEL,
            None,
            "block_index_sequence",
            1,
            true,
        ),
        (
            "index_reused",
            replace(
                replace(
                    replace(
                        replace(v(), 5, block_start(0, "tool_use")),
                        6,
                        json_delta(0, "{}"),
                    ),
                    7,
                    ping(),
                ),
                8,
                block_stop(0),
            ),
            MODEL,
            None,
            "block_index_sequence",
            5,
            true,
        ),
        (
            "overlap",
            // block 1 starts before block 0 stops
            vec![
                start(),
                block_start(0, "text"),
                block_start(1, "text"),
                block_stop(1),
                message_delta(json!("end_turn"), true),
                message_stop(),
            ],
            MODEL,
            None,
            "block_overlap",
            2,
            true,
        ),
        (
            "delta_after_stop",
            with(v(), 5, text_delta(0)),
            MODEL,
            None,
            "delta_outside_block",
            5,
            true,
        ),
        (
            "delta_wrong_index",
            replace(v(), 3, text_delta(1)),
            MODEL,
            None,
            "delta_outside_block",
            3,
            true,
        ),
        (
            "stop_twice",
            with(v(), 5, block_stop(0)),
            MODEL,
            None,
            "stop_outside_block",
            5,
            true,
        ),
        (
            "never_stopped",
            without(v(), 8),
            MODEL,
            None,
            "block_not_stopped",
            8,
            false,
        ),
        (
            "text_in_tool",
            replace(v(), 6, text_delta(1)),
            MODEL,
            None,
            "delta_type_mismatch",
            6,
            false,
        ),
        (
            "json_in_text",
            replace(v(), 3, json_delta(0, "{}")),
            MODEL,
            None,
            "delta_type_mismatch",
            3,
            true,
        ),
        (
            "thinking_text",
            vec![
                start(),
                block_start(0, "thinking"),
                text_delta(0),
                block_stop(0),
                message_delta(json!("end_turn"), true),
                message_stop(),
            ],
            MODEL,
            None,
            "delta_type_mismatch",
            2,
            true,
        ),
        (
            "bad_input",
            replace(v(), 7, json_delta(1, "\"/a\"")),
            MODEL,
            None,
            "tool_input_json",
            8,
            true,
        ),
        (
            "two_deltas",
            with(v(), 10, message_delta(json!("end_turn"), true)),
            MODEL,
            None,
            "message_delta_once",
            10,
            true,
        ),
        (
            "no_delta",
            without(v(), 9),
            MODEL,
            None,
            "message_delta_once",
            9,
            true,
        ),
        (
            "block_after_delta",
            vec![
                start(),
                block_start(0, "text"),
                block_stop(0),
                message_delta(json!("end_turn"), true),
                block_start(1, "text"),
                block_stop(1),
                message_stop(),
            ],
            MODEL,
            None,
            "message_delta_order",
            4,
            true,
        ),
        (
            "delta_in_block",
            without(v(), 8),
            MODEL,
            None,
            "message_delta_order",
            8,
            false,
        ),
        (
            "unknown_reason",
            replace(v(), 9, message_delta(json!("finished"), true)),
            MODEL,
            None,
            "stop_reason",
            9,
            true,
        ),
        (
            "null_reason",
            replace(v(), 9, message_delta(Value::Null, true)),
            MODEL,
            None,
            "stop_reason",
            9,
            true,
        ),
        (
            "no_usage",
            replace(v(), 9, message_delta(json!("tool_use"), false)),
            MODEL,
            None,
            "delta_usage",
            9,
            true,
        ),
        (
            "wrong_model",
            v(),
            "claude-sonnet-4-5",
            None,
            "model_mismatch",
            0,
            true,
        ),
        (
            "wrong_routed",
            v(),
            MODEL,
            Some("claude-haiku-4-5"),
            "model_mismatch",
            0,
            true,
        ),
        (
            "overloaded",
            vec![
                start(),
                ping(),
                ev(
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ),
            ],
            MODEL,
            None,
            "error_event",
            2,
            true,
        ),
    ]
}

fn body(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100, "stream": true})
        .to_string()
}

fn envelope(chunks: &[String]) -> String {
    json!({"statusCode": 200, "headers": {}, "body": {"id": "msg_01X", "content": null},
        "isStreaming": true, "responseTime": 100, "streamingChunks": chunks})
    .to_string()
}

fn make_db(path: &Path, rows: &[(String, String, Option<String>, Option<String>)]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    for (id, body, routed, response) in rows {
        conn.execute(
            "INSERT INTO requests (id, timestamp, method, endpoint, body, response, model, routed_model)
             VALUES (?1, '2026-01-01T00:00:00Z', 'POST', '/v1/messages', ?2, ?3, 'm', ?4)",
            rusqlite::params![id, body, response, routed],
        )
        .unwrap();
    }
}

fn violations_by_request(report: &Value) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut by: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for v in report["violations"].as_array().unwrap() {
        by.entry(v["request_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                v["rule"].as_str().unwrap().to_owned(),
                v["chunk"].as_u64().unwrap(),
            ));
        assert!(!v["detail"].as_str().unwrap().is_empty());
    }
    by
}

#[test]
fn each_rule_is_reported_at_its_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("requests.db");
    let cases = cases();
    let mut rows = Vec::new();
    for (id, chunks, model, routed, ..) in &cases {
        rows.push((
            id.to_string(),
            body(model),
            routed.map(str::to_owned),
            Some(envelope(chunks)),
        ));
    }
    // Valid streams: the reference one; a thinking block and a tool_use without input;
    // a routed model that differs from the body's; an empty routed_model; a dated model.
    rows.push(("valid".into(), body(MODEL), None, Some(envelope(&valid()))));
    let thinking = vec![
        start(),
        block_start(0, "thinking"),
        ev(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
        ),
        ev(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}}),
        ),
        block_stop(0),
        ping(),
        block_start(1, "tool_use"),
        block_stop(1),
        message_delta(json!("tool_use"), true),
        message_stop(),
    ];
    rows.push((
        "valid_thinking".into(),
        body(MODEL),
        None,
        Some(envelope(&thinking)),
    ));
    rows.push((
        "valid_routed".into(),
        body("claude-sonnet-4-5"),
        Some(MODEL.into()),
        Some(envelope(&valid())),
    ));
    rows.push((
        "valid_empty_routed".into(),
        body(MODEL),
        Some(String::new()),
        Some(envelope(&valid())),
    ));
    rows.push((
        "valid_dated".into(),
        body("claude-opus-4"),
        None,
        Some(envelope(&valid())).map(|e| e.replace(MODEL, "claude-opus-4-20250514")),
    ));
    // Rows without a stream are not checked.
    rows.push(("null_response".into(), body(MODEL), None, None));
    rows.push((
        "not_streaming".into(),
        body(MODEL),
        None,
        Some(json!({"statusCode": 200, "body": {"id": "msg_2"}}).to_string()),
    ));
    make_db(&db, &rows);

    let report = check_json(&db, &[]);
    let valid_count = 5;
    assert_eq!(report["checked"], json!(cases.len() + valid_count));
    assert_eq!(report["not_streaming"], json!(2));
    assert_eq!(report["with_violations"], json!(cases.len()));
    let by = violations_by_request(&report);
    for (id, _, _, _, rule, chunk, only) in &cases {
        let got = by
            .get(*id)
            .unwrap_or_else(|| panic!("{id}: nothing reported"));
        assert!(
            got.contains(&(rule.to_string(), *chunk as u64)),
            "{id}: expected {rule} at chunk {chunk}, got {got:?}"
        );
        if *only {
            assert_eq!(got.len(), 1, "{id}: expected only {rule}, got {got:?}");
        }
    }
    for id in by.keys() {
        assert!(!id.starts_with("valid"), "{id}: {:?}", by[id]);
    }
    // Every rule name is in the summary, and every rule was exercised.
    let by_rule = report["by_rule"].as_object().unwrap();
    for (name, n) in by_rule {
        assert!(n.as_u64().unwrap() > 0, "rule {name} not exercised");
    }
    let total: u64 = by_rule.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(
        total as usize,
        report["violations"].as_array().unwrap().len()
    );

    // Text output: one `ID chunk N: rule: detail` line per violation, then the summary.
    let out = check(&[db.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("two_starts chunk 5: message_start_once: "),
        "{text}"
    );
    assert!(text.contains("model_mismatch: 2"), "{text}");

    // --strict fails on violations; --request-id picks one row; --limit caps the count.
    let out = check(&[db.as_os_str(), "--strict".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let one = check_json(&db, &["--request-id", "two_stops"]);
    assert_eq!(one["checked"], json!(1));
    assert_eq!(violations_by_request(&one).len(), 1);
    let ok = check(&[
        db.as_os_str(),
        "--request-id".as_ref(),
        "valid".as_ref(),
        "--strict".as_ref(),
    ]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(check_json(&db, &["--limit", "3"])["checked"], json!(3));
    let missing = check(&[db.as_os_str(), "--request-id".as_ref(), "nope".as_ref()]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn unusable_capture_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let not_db = tmp.path().join("x.db");
    std::fs::write(
        &not_db,
        "hello, I am not SQLite, but long enough to look like a file",
    )
    .unwrap();
    for p in [tmp.path().join("missing.db"), not_db] {
        let out = check(&[p.as_os_str()]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{err}"
        );
    }
}

fn assert_all_pass(db: &Path) {
    let report = check_json(db, &[]);
    assert!(
        report["checked"].as_u64().unwrap() > 0,
        "{}: no streams",
        db.display()
    );
    assert_eq!(
        report["with_violations"],
        json!(0),
        "{}: {}",
        db.display(),
        serde_json::to_string_pretty(&report["violations"]).unwrap()
    );
    let out = check(&[db.as_os_str(), "--strict".as_ref()]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn example_capture_streams_pass() {
    assert_all_pass(&common::examples().join("requests.db"));
}

#[test]
fn synthetic_capture_streams_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("synth");
    let cfg = kvtrace_synth::Config {
        seed: 3,
        conversations: 2,
        ..kvtrace_synth::Config::default()
    };
    kvtrace_synth::generate(&cfg, &out).unwrap();
    assert_all_pass(&out.join("requests.db"));
}
