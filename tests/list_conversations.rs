//! list-conversations end to end: the bundled examples (2 conversations, 4
//! Explore sub-agents in 044cdae1…) and the golden capture, in every format.

mod common;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_list-conversations");

fn ok(args: &[&str]) -> String {
    common::ok("list-conversations", args)
}

fn paths(root: &std::path::Path) -> (String, String) {
    (
        root.join("requests.db").display().to_string(),
        root.join("jsonl").display().to_string(),
    )
}

#[test]
fn examples() {
    let (db, jsonl) = paths(&common::examples());
    let v: serde_json::Value =
        serde_json::from_str(&ok(&[&db, "--jsonl-dir", &jsonl, "--format", "json"])).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    assert_eq!(first["id"], "044cdae1-5a94-4a34-aba2-da6792db55bc");
    assert_eq!(first["matched_requests"], 42);
    assert_eq!(first["assistant_messages"], 42);
    assert_eq!(first["subagents"], 4);
    assert_eq!(first["subagent_types"]["Explore"], 4);
    assert_eq!(first["subagent_requests"], 48);
    assert_eq!(first["models"][0], "claude-opus-4-6");
    assert_eq!(first["start"], "2026-03-02T09:00:00+00:00");
    let share = first["api_cache_read_pct"].as_f64().unwrap();
    assert!((share - 79.437).abs() < 0.01, "{share}");
    let second = &rows[1];
    assert_eq!(second["id"], "f3c50e22-96db-47b5-97b7-4c48f720a061");
    assert_eq!(second["matched_requests"], 6);
    assert_eq!(second["subagents"], 0);
    // Sorted by start time.
    assert!(first["start"].as_str() < second["start"].as_str());

    let text = ok(&[&db, "--jsonl-dir", &jsonl]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("conversation"));
    assert!(lines[1].starts_with("044cdae1") && lines[1].contains("Explore×4"));
    assert!(lines[1].contains("42/42") && lines[1].contains("79.4%"));
    assert!(lines[1].contains("5h 52m 18s"));
    assert!(text.contains("2 conversation(s), 48 matched parent request(s), 4 sub-agent(s)"));

    let csv = ok(&[&db, "--jsonl-dir", &jsonl, "--format", "csv"]);
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 2);
    let r = &rows[1];
    for (k, v) in [
        ("matched_requests", "6"),
        ("assistant_messages", "6"),
        ("start", "2026-03-03T11:00:00+00:00"),
        ("end", "2026-03-03T11:00:43+00:00"),
        ("duration_s", "43"),
        ("models", "claude-sonnet-4-5-20250929"),
        ("subagents", "0"),
        ("subagent_requests", "0"),
        ("api_cache_read_pct", "75.0"),
        ("subagents_Explore", "0"),
    ] {
        assert_eq!(r[k], v, "{k}: {csv}");
    }
    assert_eq!(rows[0]["subagents_Explore"], "4");
}

/// A CSV with one value per column (no quoting needed here) as header → value maps.
fn csv_rows(csv: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn golden_capture() {
    let (db, jsonl) = paths(&common::golden().join("capture"));
    let csv = ok(&[&db, "--jsonl-dir", &jsonl, "--format", "csv"]);
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 3, "{csv}");
    let want = [
        // 94.4: the API figures of old-proxy pairs are their streaming first attempts'.
        (
            "5f0c9e2a-7b1d-4c3e-9a8f-2d6b1e0c4a97",
            "6",
            "2",
            "1",
            "1",
            "0",
            "5",
            "94.4",
        ),
        (
            "9d3e7c1b-2a4f-4e8d-b6c5-0f1a2b3c4d5e",
            "8",
            "2",
            "1",
            "0",
            "1",
            "3",
            "71.8",
        ),
        (
            "e7a1c2b3-4d5e-4f60-8a9b-c0d1e2f3a4b5",
            "3",
            "0",
            "0",
            "0",
            "0",
            "0",
            "66.4",
        ),
    ];
    for (r, (id, n, subs, explore, general, plan, sub_requests, pct)) in rows.iter().zip(want) {
        assert_eq!(r["conversation"], id);
        assert_eq!(
            (
                r["matched_requests"].as_str(),
                r["assistant_messages"].as_str()
            ),
            (n, n)
        );
        assert_eq!(r["subagents"], subs, "{id}");
        assert_eq!(r["subagents_Explore"], explore, "{id}");
        assert_eq!(r["subagents_general-purpose"], general, "{id}");
        assert_eq!(r["subagents_Plan"], plan, "{id}");
        assert_eq!(r["subagent_requests"], sub_requests, "{id}");
        assert_eq!(r["api_cache_read_pct"], pct, "{id}");
    }
    assert_eq!(rows[0]["start"], "2026-03-25T19:42:06+00:00");
}

#[test]
fn unusable_input_exits_2() {
    let (db, _) = paths(&common::examples());
    let out = Command::new(BIN)
        .args([db.as_str(), "--jsonl-dir", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1);
    assert!(err.starts_with("error: "));
}
