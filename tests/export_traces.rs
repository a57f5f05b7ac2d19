//! export-traces on hand-made traces with known answers (ordering, sub-agent placement,
//! stagger, local-scope offsets, re-blocking, errors) and over the golden run02 traces.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

mod common;

fn export(args: &[&std::ffi::OsStr]) -> Output {
    common::run("export-traces", args)
}

/// `<tmp>/in`, created, for input traces; and `<tmp>` for outputs.
fn input_dir(tmp: &tempfile::TempDir) -> (PathBuf, &Path) {
    let d = tmp.path().join("in");
    std::fs::create_dir(&d).unwrap();
    (d, tmp.path())
}

/// `--format mooncake` of `input` into `out`.
fn mooncake(input: &Path, out: &Path) -> Output {
    export(&[
        input.as_os_str(),
        "--format".as_ref(),
        "mooncake".as_ref(),
        "--output".as_ref(),
        out.as_os_str(),
    ])
}

/// Run on `input` writing `out.jsonl` next to it; returns the parsed lines and the
/// `--json` summary.
fn run_ok(input: &Path, out_dir: &Path, extra: &[&str]) -> (Vec<Value>, Value) {
    let out = out_dir.join("out.jsonl");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        input.as_os_str(),
        "--format".as_ref(),
        "mooncake".as_ref(),
        "--output".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let o = export(&args);
    assert!(
        o.status.success(),
        "export-traces failed ({:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, serde_json::from_slice(&o.stdout).unwrap())
}

fn write(dir: &Path, name: &str, v: Value) {
    std::fs::write(dir.join(name), v.to_string()).unwrap();
}

fn req(t: f64, input: u64, out: u64, ids: &[u64]) -> Value {
    json!({"t": t, "type": "s", "model": "m", "in": input, "out": out, "hash_ids": ids,
        "input_types": ["text"], "output_types": ["text"], "stop": "end_turn"})
}

fn sub(t: f64, requests: Vec<Value>) -> Value {
    json!({"t": t, "type": "subagent", "agent_id": "agent_001", "subagent_type": null,
        "duration_ms": null, "total_tokens": null, "tool_use_count": null,
        "status": "completed", "requests": requests, "models": ["m"],
        "tool_tokens": 0, "system_tokens": 0})
}

fn trace(id: &str, scope: &str, block_size: u64, requests: Vec<Value>) -> Value {
    json!({"id": id, "models": ["m"], "block_size": block_size, "hash_id_scope": scope,
        "tool_tokens": 0, "system_tokens": 0, "requests": requests})
}

/// One key of every line, as a JSON array.
fn field(lines: &[Value], key: &str) -> Value {
    lines.iter().map(|l| l[key].clone()).collect()
}

#[test]
fn lines_have_mooncake_keys_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "a.json",
        trace(
            "a",
            "global",
            64,
            vec![req(1.5, 1100, 9, &(1..=17).collect::<Vec<_>>())],
        ),
    );
    let out = d.join("out.jsonl");
    let o = mooncake(&d.join("a.json"), &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // By default, 512-token blocks (what AIPerf's mooncake loader assumes): 17 blocks of
    // 64 tokens are 2 of 512, and the summary says so.
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "{\"timestamp\":1500,\"input_length\":1100,\"output_length\":9,\"hash_ids\":[1,2]}\n"
    );
    assert!(err.contains("block size 64 -> 512"), "{err}");
    // Traces whose block size does not divide 512 need an explicit one.
    write(
        d,
        "a.json",
        trace("a", "global", 48, vec![req(1.5, 100, 9, &[1, 2])]),
    );
    let o = mooncake(&d.join("a.json"), &out);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not divide 512"));
}

#[test]
fn ordering_subagents_and_stagger() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, o) = input_dir(&tmp);
    // File names sort a < b, whatever the ids say.
    write(
        &d,
        "a.json",
        trace(
            "zz",
            "global",
            64,
            vec![
                req(0.0, 64, 1, &[1]),
                sub(2.5, vec![req(0.0, 64, 2, &[2]), req(4.0, 64, 3, &[3])]),
                req(5.0, 64, 4, &[4]),
                req(6.5, 64, 5, &[5]),
            ],
        ),
    );
    write(
        &d,
        "b.json",
        trace(
            "aa",
            "global",
            64,
            vec![req(0.0, 64, 6, &[6]), req(1.5, 64, 7, &[7])],
        ),
    );

    // No stagger: both traces start at 0; ties keep trace order, and within a trace a
    // parent request goes before a sub-agent request at the same time.
    let (lines, summary) = run_ok(&d, o, &["--block-size", "64"]);
    assert_eq!(
        field(&lines, "timestamp"),
        json!([0, 0, 1500, 2500, 5000, 6500, 6500])
    );
    assert_eq!(field(&lines, "output_length"), json!([1, 6, 7, 2, 4, 5, 3]));
    assert_eq!(summary["traces"], 2);
    assert_eq!(summary["requests"], 7);
    assert_eq!(summary["lines"], 7);
    assert_eq!(summary["subagent_requests"], 2);

    // --stagger 5: b starts at 5 s; its 5000 ties with a's parent at 5.0 and comes after.
    let (lines, _) = run_ok(&d, o, &["--stagger", "5", "--block-size", "64"]);
    assert_eq!(
        field(&lines, "timestamp"),
        json!([0, 2500, 5000, 5000, 6500, 6500, 6500])
    );
    assert_eq!(field(&lines, "output_length"), json!([1, 2, 4, 6, 5, 3, 7]));
    // Global scope: ids pass through unchanged.
    assert_eq!(
        field(&lines, "hash_ids"),
        json!([[1], [2], [4], [6], [5], [3], [7]])
    );
}

#[test]
fn local_scope_traces_get_disjoint_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, o) = input_dir(&tmp);
    write(
        &d,
        "a.json",
        trace(
            "a",
            "local",
            64,
            vec![
                req(0.0, 128, 1, &[1, 2]),
                sub(1.0, vec![req(0.0, 64, 2, &[3])]),
            ],
        ),
    );
    write(
        &d,
        "b.json",
        trace("b", "local", 64, vec![req(0.0, 128, 3, &[1, 2])]),
    );
    let (lines, _) = run_ok(&d, o, &["--stagger", "10", "--block-size", "64"]);
    assert_eq!(field(&lines, "hash_ids"), json!([[1, 2], [3], [4, 5]]));
}

#[test]
fn reblocking_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, o) = input_dir(&tmp);
    write(
        &d,
        "a.json",
        trace(
            "a",
            "global",
            64,
            vec![
                req(0.0, 400, 1, &[1, 2, 3, 4, 5, 6]),
                req(1.0, 400, 2, &[1, 2, 3, 4, 7, 8]),
                // 5 small blocks = 2 large blocks and a 64-token tail, dropped.
                req(2.0, 330, 3, &[1, 2, 9, 10, 11]),
                req(3.0, 100, 4, &[1]),
            ],
        ),
    );
    let (lines, summary) = run_ok(&d, o, &["--block-size", "128"]);
    assert_eq!(
        field(&lines, "hash_ids"),
        json!([[1, 2, 3], [1, 2, 4], [1, 5], []])
    );
    // input_length stays the record's `in`.
    assert_eq!(field(&lines, "input_length"), json!([400, 400, 330, 100]));
    assert_eq!(summary["block_size_in"], 64);
    assert_eq!(summary["block_size_out"], 128);
    assert_eq!(summary["blocks_in"], 18);
    assert_eq!(summary["blocks_out"], 8);

    // m = 3: every third id, renumbered.
    let (lines, _) = run_ok(&d, o, &["--block-size", "192"]);
    assert_eq!(field(&lines, "hash_ids"), json!([[1, 2], [1, 3], [4], []]));
}

#[test]
fn unusable_input_exits_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "a.json",
        trace("a", "global", 64, vec![req(0.0, 64, 1, &[1])]),
    );
    let out = d.join("out.jsonl");
    let cases: Vec<Vec<&std::ffi::OsStr>> = vec![
        // Not a multiple of 64.
        vec![d.as_os_str(), "--block-size".as_ref(), "96".as_ref()],
        vec![d.as_os_str(), "--block-size".as_ref(), "0".as_ref()],
        vec![d.as_os_str(), "--stagger=-1".as_ref()],
        vec!["/nonexistent/traces".as_ref()],
    ];
    for mut args in cases {
        args.extend(["--format", "mooncake", "--output"].map(std::ffi::OsStr::new));
        args.push(out.as_os_str());
        let o = export(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(!out.exists(), "no output on error");
    }
    // A file that is not a trace, and mixed block sizes.
    write(
        d,
        "b.json",
        trace("b", "global", 16, vec![req(0.0, 16, 1, &[1])]),
    );
    let o = mooncake(d, &out);
    assert_eq!(o.status.code(), Some(2));
    std::fs::write(d.join("b.json"), "{\"not\": \"a trace\"}").unwrap();
    let o = mooncake(d, &out);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("b.json"));
}

#[test]
fn golden_run02_exports_every_request() {
    let run = common::golden().join("expected/run02");
    let mut requests = 0;
    let mut subagent_requests = 0;
    let mut traces = 0;
    for f in std::fs::read_dir(&run).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        traces += 1;
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for r in v["requests"].as_array().unwrap() {
            if r["type"] == "subagent" {
                subagent_requests += r["requests"].as_array().unwrap().len();
            } else {
                requests += 1;
            }
        }
    }
    assert!(subagent_requests > 0, "run02 has sub-agents");
    let tmp = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--stagger", "60", "--block-size", "128"][..]] {
        let (lines, summary) = run_ok(&run, tmp.path(), extra);
        assert_eq!(lines.len(), requests + subagent_requests);
        assert_eq!(summary["traces"], traces);
        assert_eq!(summary["lines"], lines.len());
        assert_eq!(summary["subagent_requests"], subagent_requests);
        let ts: Vec<u64> = lines
            .iter()
            .map(|l| l["timestamp"].as_u64().unwrap())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        assert_eq!(ts[0], 0);
        for l in &lines {
            let keys: Vec<&String> = l.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 4);
            assert!(l["hash_ids"].as_array().unwrap().iter().all(Value::is_u64));
        }
    }
}

#[test]
fn dash_and_dev_stdout_write_clean_jsonl_to_stdout() {
    let traces = common::golden().join("expected/run02");
    for target in ["-", "/dev/stdout"] {
        let o = std::process::Command::new(common::bin("export-traces"))
            .arg(&traces)
            .args(["--format", "mooncake", "--output", target])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(text.lines().count() > 10, "{target}: {text}");
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{target}: not JSONL ({e}): {line}"));
            assert!(v["hash_ids"].is_array());
        }
        // The summary went to stderr.
        assert!(String::from_utf8_lossy(&o.stderr).contains("lines"));
    }
}
