//! The bundled examples/ capture through the whole pipeline: indexes, traces, validation.

use std::process::Command;

mod common;
use common::*;

#[test]
fn pipeline_on_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let db = examples().join("requests.db");
    let jsonl = examples().join("jsonl");
    let idx = tmp.path().join("idx.json");
    let s: serde_json::Value = serde_json::from_str(&ok(
        "build-message-index",
        &[
            db.as_os_str(),
            "--output".as_ref(),
            idx.as_os_str(),
            "--json".as_ref(),
        ],
    ))
    .unwrap();
    assert_eq!(s["rows"], 104);
    assert_eq!(
        s["message_ids"], 104,
        "every row of the example has a response with a msg_ id"
    );

    // conversation index on a copy (the tool writes one table)
    let copy = tmp.path().join("requests.db");
    std::fs::copy(&db, &copy).unwrap();
    let c: serde_json::Value = serde_json::from_str(&ok(
        "build-conversation-index",
        &[
            copy.as_os_str(),
            "--projects-path".as_ref(),
            jsonl.as_os_str(),
            "--json".as_ref(),
            "--message-index".as_ref(),
            idx.as_os_str(),
        ],
    ))
    .unwrap();
    assert_eq!(c["files"], 6);
    assert_eq!(c["message_ids"], 96);
    assert_eq!(c["matched"], 96);
    assert_eq!(c["match_rate"], 100.0);

    let out = tmp.path().join("traces");
    let flags = ["--include-subagents", "--json"];
    let b: serde_json::Value =
        serde_json::from_str(&build_traces(&db, &jsonl, &out, &flags)).unwrap();
    assert_eq!(b["traces"], 2);
    assert_eq!(b["parent_requests"], 48);
    assert_eq!(b["subagents"], 4);
    assert_eq!(b["subagent_requests"], 48);

    // Reading the trace: the fan-out is 4 Explore sub-agents spawned at the same second,
    // nested after the parent request that spawned them, sharing the prefix blocks.
    let name = dir_files(&out)
        .into_iter()
        .find(|(n, _)| n.starts_with("044cdae1"))
        .unwrap();
    let trace: serde_json::Value = serde_json::from_slice(&name.1).unwrap();
    let reqs = trace["requests"].as_array().unwrap();
    let subs: Vec<&serde_json::Value> = reqs.iter().filter(|r| r["type"] == "subagent").collect();
    assert_eq!(subs.len(), 4);
    let t0 = subs[0]["t"].as_f64().unwrap();
    assert!(subs
        .iter()
        .all(|s| s["subagent_type"] == "Explore" && (s["t"].as_f64().unwrap() - t0).abs() < 1.0));
    let parents: Vec<&serde_json::Value> =
        reqs.iter().filter(|r| r["type"] != "subagent").collect();
    let first_sub_pos = reqs.iter().position(|r| r["type"] == "subagent").unwrap();
    assert_eq!(first_sub_pos, 5, "sub-agents follow the 5th parent request");
    // Hash ids grow by prefix turn by turn until a compaction.
    let ids = |r: &serde_json::Value| {
        r["hash_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b2) = (ids(parents[0]), ids(parents[1]));
    assert!(
        b2.starts_with(&a[..a.len() - 1]),
        "request 2 extends request 1"
    );
    assert_eq!(trace["totals"]["subagent_count"], 4);

    let v = Command::new(env!("CARGO_BIN_EXE_validate-trace-cache"))
        .arg(&out)
        .args([
            "--db".as_ref(),
            db.as_os_str(),
            "--jsonl-dir".as_ref(),
            jsonl.as_os_str(),
            "--json".as_ref(),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["summary"]["valid"], 2);
    assert_eq!(v["traces"][0]["matched"], 90);
    let acc = v["traces"][0]["accuracy"].as_f64().unwrap();
    assert!((80.0..120.0).contains(&acc), "accuracy {acc}");
}

#[test]
fn every_test_file_is_registered() {
    // The end-to-end tests live in the workspace's tests/ and are listed as [[test]]
    // entries of the CLI crate: a file missing there would silently never run.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = std::fs::read_to_string(root.join("crates/kvtrace-cli/Cargo.toml")).unwrap();
    for e in std::fs::read_dir(root.join("tests")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".rs") {
            let entry = format!("path = \"../../tests/{stem}.rs\"");
            assert!(
                manifest.contains(&entry),
                "tests/{name} is not a [[test]] of kvtrace-cli"
            );
        }
    }
}
