//! validate-trace-cache: golden outputs byte for byte, and hand-made traces with known
//! answers (TTL edges, sub-agent flattening, warm prefix, ambiguous anonymized matches).

use std::path::Path;

mod common;
use common::*;

/// Run validate from inside the golden folder with relative paths, as the goldens were made.
fn validate_in_golden(traces: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        traces.as_os_str(),
        "--db".as_ref(),
        "capture/requests.db".as_ref(),
        "--jsonl-dir".as_ref(),
        "capture/jsonl".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = common::run_in(&golden(), "validate-trace-cache", &args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    // Exit 1 exactly when a trace could not be validated (the report still prints).
    let in_error = stdout.contains(": ERROR - ") || stdout.contains("\"error\": \"");
    assert_eq!(
        out.status.code(),
        Some(if in_error { 1 } else { 0 }),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if in_error {
        assert!(String::from_utf8_lossy(&out.stderr).contains("could not be validated"));
    }
    stdout
}

#[test]
fn golden_validation_outputs_are_reproduced() {
    for run in ["run02", "run03", "run05"] {
        let traces = golden().join("expected").join(run);
        for (suffix, extra) in [("inf", &[][..]), ("ttl300", &["--ttl", "300"][..])] {
            let got = validate_in_golden(&traces, extra);
            let want = std::fs::read_to_string(
                golden().join(format!("expected/validate-{run}-{suffix}.txt")),
            )
            .unwrap();
            assert_eq!(got, want, "validate-{run}-{suffix}");
        }
    }
}

#[test]
fn json_and_csv_reports_agree_with_text() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("v.csv");
    let traces = golden().join("expected/run05");
    let json = validate_in_golden(&traces, &["--json", "--csv", csv.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["summary"]["traces"], 6);
    assert_eq!(v["summary"]["valid"], 5);
    let t1 = &v["traces"][0];
    assert_eq!(
        (t1["sim_hits"].as_u64(), t1["sim_blocks"].as_u64()),
        (Some(69), Some(108))
    );
    assert_eq!(
        (t1["api_read"].as_u64(), t1["api_total"].as_u64()),
        (Some(29_870), Some(35_252))
    );
    assert!(v["traces"][5]["error"]
        .as_str()
        .unwrap()
        .starts_with("Ambiguous"));
    let gap = v["summary"]["mean_abs_gap_pp"].as_f64().unwrap();
    assert!(gap > 0.0 && gap < 100.0);
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 7);
    assert!(csv.lines().nth(1).unwrap().starts_with("trace_0001,"));
}

/// A hand-made trace for the 5f0c conversation of the golden capture (its parent rows
/// have (model, out, stop) = the golden trace's), with hash ids chosen for known answers.
/// (t, hash ids) of one request.
type Req<'a> = (f64, &'a [u64]);

fn hand_trace(dir: &Path, name: &str, scope: &str, parents: &[Req], sub: Option<(f64, &[Req])>) {
    let golden_trace: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden().join("expected/run02/5f0c9e2a-7b1.json")).unwrap(),
    )
    .unwrap();
    let reqs = golden_trace["requests"].as_array().unwrap();
    let golden_parents: Vec<&serde_json::Value> =
        reqs.iter().filter(|r| r["type"] != "subagent").collect();
    let mut items = Vec::new();
    for (i, (t, ids)) in parents.iter().enumerate() {
        let mut r = golden_parents[i].clone();
        r["t"] = (*t).into();
        r["hash_ids"] = serde_json::json!(ids);
        items.push(r);
    }
    if let Some((t, sreqs)) = sub {
        let mut entry = reqs
            .iter()
            .find(|r| r["type"] == "subagent")
            .unwrap()
            .clone();
        entry["t"] = t.into();
        for (j, (st, ids)) in sreqs.iter().enumerate() {
            entry["requests"][j]["t"] = (*st).into();
            entry["requests"][j]["hash_ids"] = serde_json::json!(ids);
        }
        items.insert(2, entry);
    }
    let doc = serde_json::json!({
        "id": "5f0c9e2a-7b1", "models": ["claude-opus-4-6"], "block_size": 64,
        "hash_id_scope": scope, "tool_tokens": 128, "system_tokens": 64, "requests": items,
    });
    std::fs::write(dir.join(name), serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

fn report(traces: &Path, extra: &[&str]) -> serde_json::Value {
    let (db, jsonl) = (
        golden().join("capture/requests.db"),
        golden().join("capture/jsonl"),
    );
    let mut args = vec![
        traces.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
        "--jsonl-dir".as_ref(),
        jsonl.as_os_str(),
        "--json".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = common::run("validate-trace-cache", &args);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let in_error = v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| !t["error"].is_null());
    assert_eq!(
        out.status.code(),
        Some(if in_error { 1 } else { 0 }),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

#[test]
fn ttl_edges_flattening_and_warm_prefix_have_known_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Six parents (the conversation's first segment has 3, the file 6): use all six.
    let parents: [(f64, &[u64]); 6] = [
        (0.0, &[1, 2, 3]),
        (300.0, &[1, 2, 3, 4]), // exactly at TTL: 3 hits
        (600.0, &[1, 5]),       // 1 refreshed at 300 → hit; 5 new
        (900.5, &[2, 5]),       // 2 last used at 300 → miss; 5 used at 600 (300.5 s) → miss
        (901.0, &[2, 5]),       // both refreshed just now → 2 hits
        (2000.0, &[9]),
    ];
    let sub: (f64, &[(f64, &[u64])]) = (10.0, &[(0.0, &[1, 7]), (5.0, &[7])]);
    hand_trace(dir, "g.json", "global", &parents, Some(sub));
    let r = report(&dir.join("g.json"), &[]);
    let t = &r["traces"][0];
    assert_eq!(t["error"], serde_json::Value::Null, "{t}");
    // Timeline: p0 (0), sub r0 at 10, sub r1 at 15, p1 300, p2 600, p3 900.5, p4 901, p5 2000.
    // Infinite: p0 0/3, s0 1/2 (1), s1 1/1 (7), p1 3/4, p2 1/2, p3 2/2, p4 2/2, p5 0/1.
    assert_eq!(
        (t["sim_hits"].as_u64(), t["sim_blocks"].as_u64()),
        (Some(10), Some(17))
    );
    // API side covers 6 parent rows + the 2 rows of that sub-agent.
    assert_eq!(t["matched"], 8);
    let r300 = report(&dir.join("g.json"), &["--ttl", "300"]);
    let t = &r300["traces"][0];
    // TTL 300: p0 0/3; s0: 1 used at 0, now 10 → hit, 7 new; s1: 7 hit; p1 at 300: 1 (last 10)
    // hit, 2 and 3 (last 0, exactly 300) hit, 4 new → 3/4; p2 at 600: 1 (last 300) hit, 5 new;
    // p3 at 900.5: 2 (last 300) miss, 5 (last 600, 300.5) miss; p4: 2/2; p5 0/1.
    assert_eq!(
        (t["sim_hits"].as_u64(), t["sim_blocks"].as_u64()),
        (Some(8), Some(17))
    );
    // Warm prefix: floor(0.5 * (128 + 64) / 64) = 1 block of the first request is warm.
    let warm = report(&dir.join("g.json"), &["--warm-prefix", "0.5"]);
    assert_eq!(warm["traces"][0]["sim_hits"], 11);

    // Local scope flattens too: a conversation and its sub-agents share one id space.
    hand_trace(dir, "l.json", "local", &parents, Some(sub));
    let r = report(&dir.join("l.json"), &[]);
    let t = &r["traces"][0];
    assert_eq!(
        (
            t["sim_hits"].as_u64(),
            t["sim_blocks"].as_u64(),
            t["matched"].as_u64()
        ),
        (Some(10), Some(17), Some(8))
    );
    // Another scope cannot be compared across sub-agents: the parent alone, and the API
    // side covers parent rows only.
    hand_trace(dir, "o.json", "per-agent", &parents, Some(sub));
    let r = report(&dir.join("o.json"), &[]);
    let t = &r["traces"][0];
    assert_eq!(
        (
            t["sim_hits"].as_u64(),
            t["sim_blocks"].as_u64(),
            t["matched"].as_u64()
        ),
        (Some(8), Some(14), Some(6))
    );
}

#[test]
fn anonymized_matching_reports_no_match_and_ambiguity() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let trace = |name: &str, reqs: serde_json::Value| {
        let doc = serde_json::json!({"id": name, "block_size": 64, "hash_id_scope": "global",
            "tool_tokens": 0, "system_tokens": 0, "requests": reqs});
        std::fs::write(dir.join(format!("{name}.json")), doc.to_string()).unwrap();
    };
    let req = |model: &str, out: u64, stop: &str| serde_json::json!({"t": 0.0, "type": "s", "model": model, "in": 100, "out": out, "hash_ids": [1], "stop": stop});
    trace(
        "trace_0001",
        serde_json::json!([req("claude-opus-4-6", 999_999, "end_turn")]),
    );
    trace(
        "trace_0002",
        serde_json::json!([
            req("claude-sonnet-4-5-20250929", 52, "end_turn"),
            req("claude-sonnet-4-5-20250929", 35, "end_turn")
        ]),
    );
    std::fs::write(dir.join("trace_0003.json"), "{\"not\": \"a trace\"}").unwrap();
    let r = report(dir, &[]);
    let errs: Vec<String> = r["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["error"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(errs[0].starts_with("No match"), "{}", errs[0]);
    assert!(
        errs[1].starts_with("Ambiguous") && errs[1].contains("2 runs"),
        "{}",
        errs[1]
    );
    assert!(errs[2].contains("not a trace"), "{}", errs[2]);
    assert_eq!(r["summary"]["valid"], 0);
}

#[test]
fn csv_report_survives_commas_quotes_and_newlines_in_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t, \"odd\"\nfolder");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(golden().join("expected/run02")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    // One trace renamed so its id holds every CSV special character.
    let first = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    v["id"] = "a,b \"c\"\nd".into();
    std::fs::write(&first, serde_json::to_string(&v).unwrap()).unwrap();
    let csv_path = tmp.path().join("v.csv");
    let args: [&std::ffi::OsStr; 7] = [
        dir.as_os_str(),
        "--db".as_ref(),
        "capture/requests.db".as_ref(),
        "--jsonl-dir".as_ref(),
        "capture/jsonl".as_ref(),
        "--csv".as_ref(),
        csv_path.as_os_str(),
    ];
    let out = common::run_in(&golden(), "validate-trace-cache", &args);
    assert!(out.status.code().is_some_and(|c| c <= 1));
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), std::fs::read_dir(&dir).unwrap().count());
    assert!(rows.iter().all(|r| r.len() == 12));
    assert!(rows.iter().any(|r| &r[0] == "a,b \"c\"\nd"));
    assert!(rows.iter().all(|r| r[1].contains("\"odd\"\nfolder")));
}
