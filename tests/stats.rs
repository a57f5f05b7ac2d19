//! trace-stats on hand-made traces with known answers.

use std::process::Command;

mod common;

fn stats(dir: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![dir.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    common::ok("trace-stats", &args)
}

fn write(dir: &std::path::Path, name: &str, v: serde_json::Value) {
    std::fs::write(dir.join(name), v.to_string()).unwrap();
}

#[test]
fn known_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = |t: f64, input: u64, out: u64, ids: &[u64], think: Option<f64>| {
        let mut v = serde_json::json!({"t": t, "type": "s", "model": "m", "in": input, "out": out, "hash_ids": ids, "stop": "end_turn", "api_time": 2.0});
        if let Some(th) = think {
            v["think_time"] = th.into();
        }
        v
    };
    // Trace A: 2 parents over 120 s; blocks [1,2] then [1,2,3,4]: 2 hits / 6 blocks.
    write(
        d,
        "a.json",
        serde_json::json!({"id": "a", "block_size": 64, "hash_id_scope": "global",
        "tool_tokens": 100, "system_tokens": 28, "requests": [
            r(0.0, 128, 10, &[1, 2], Some(0.0)),
            {"t": 5.0, "type": "subagent", "agent_id": "x", "requests": [r(0.0, 64, 5, &[1], None)]},
            r(120.0, 256, 30, &[1, 2, 3, 4], Some(4.0))]}),
    );
    // Trace B: 4 parents over 60 s, no repeats: 0 hits / 4 blocks.
    write(
        d,
        "b.json",
        serde_json::json!({"id": "b", "block_size": 64, "hash_id_scope": "global",
        "tool_tokens": 0, "system_tokens": 0, "requests": [
            r(0.0, 64, 1, &[5], None), r(20.0, 64, 1, &[6], None), r(40.0, 64, 1, &[7], None), r(60.0, 64, 1, &[8], None)]}),
    );
    let v: serde_json::Value =
        serde_json::from_str(&stats(d, &["--format", "json", "--warm-prefix", "1.0"])).unwrap();
    assert_eq!(
        (v["traces"].as_u64(), v["requests"].as_u64()),
        (Some(2), Some(7))
    );
    assert_eq!(
        (v["traces_with_subagents"].as_u64(), v["subagents"].as_u64()),
        (Some(1), Some(1))
    );
    let m = &v["metrics"];
    // requests per trace [2, 4]: numpy linear → p25 2.5, median 3, p75 3.5, mean 3.
    assert_eq!(
        m["requests_per_trace"],
        serde_json::json!({"min": 2.0, "p25": 2.5, "median": 3.0, "p75": 3.5, "max": 4.0, "mean": 3.0})
    );
    assert_eq!(m["starting_input_tokens"]["max"], 128.0);
    assert_eq!(m["ending_input_tokens"]["max"], 256.0);
    // Durations 2 min and 1 min.
    assert_eq!(m["duration_min"]["min"], 1.0);
    assert_eq!(m["duration_min"]["max"], 2.0);
    // Hit rates: A 2/6 = 33.33%, B 0%.
    let a = 100.0 * 2.0 / 6.0;
    assert!((m["hit_rate_conversation"]["max"].as_f64().unwrap() - a).abs() < 1e-9);
    // Warm 100%: A's first request gets floor(128/64) = 2 warm blocks → 4/6; B has no prefix.
    let aw = 100.0 * 4.0 / 6.0;
    assert!((m["hit_rate_warm"]["max"].as_f64().unwrap() - aw).abs() < 1e-9);
    assert_eq!(m["hit_rate_warm"]["min"], 0.0);
    // Think time only where present (2 values); API time over all 6 parents.
    assert_eq!(m["think_time_s"]["max"], 4.0);
    assert_eq!(m["api_time_s"]["mean"], 2.0);
    // Input tokens per parent request [128, 256, 64, 64, 64, 64]: p50 = 64, p90 = 192.
    assert_eq!(m["input_tokens_per_request"]["p50"], 64.0);
    assert_eq!(m["input_tokens_per_request"]["p90"], 192.0);

    let md = stats(d, &[]);
    assert!(
        md.starts_with(
            "**Traces:** 2 | **Requests:** 7 | **Traces with sub-agents:** 1 | **Sub-agents:** 1"
        ),
        "{md}"
    );
    assert!(md.contains("| Cache hit rate, conversation only (%) | 0.0% | 8.3% | 16.7% | 25.0% | 33.3% | 16.7% |"), "{md}");
    // One tidy table: metric, statistic, value; both tables in it, every row 3 fields.
    let csv = stats(d, &["--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("metric,statistic,value"));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.contains(&"Requests per trace,min,2"), "{csv}");
    assert!(rows.contains(&"Requests per trace,median,3"), "{csv}");
    assert!(rows.contains(&"Requests per trace,mean,3"), "{csv}");
    assert!(
        rows.iter().any(|r| r.starts_with("Input tokens,p90,")),
        "{csv}"
    );
    assert!(
        rows.iter()
            .all(|r| r.matches(',').count() == 2 || r.starts_with('"')),
        "{csv}"
    );
}

#[test]
fn not_traces_are_skipped_and_empty_sets_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("x.json"), "[]").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trace-stats"))
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a trace") && err.lines().last().unwrap().starts_with("error: "),
        "{err}"
    );
}
