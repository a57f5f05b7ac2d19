//! visualize-cache end to end: known answers on hand-made captures (TTL
//! boundary, refresh on use, prefill counts, working set, the partial final block,
//! old-proxy pairs in `combined`), the timeline, empty selections, and the HTML of the
//! bundled examples (self-contained, < 1 MB, one file per conversation with `all`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_visualize-cache");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run visualize-cache")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One request row: id, timestamp, streaming, user text, message id.
struct Row<'a> {
    id: &'a str,
    ts: &'a str,
    stream: bool,
    text: &'a str,
    msg: &'a str,
}

fn body(r: &Row<'_>) -> String {
    let stream = if r.stream { ",\"stream\":true" } else { "" };
    format!(
        "{{\"model\":\"claude-opus-4-6\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}],\"max_tokens\":10,\"system\":\"You are terse.\"{stream}}}",
        r.text
    )
}

fn response(r: &Row<'_>) -> String {
    format!(
        "{{\"statusCode\":200,\"body\":{{\"id\":\"{}\",\"model\":\"claude-opus-4-6\",\"content\":[{{\"type\":\"text\",\"text\":\"ok\"}}],\"stop_reason\":\"end_turn\",\"usage\":{{\"input_tokens\":3,\"output_tokens\":2,\"cache_read_input_tokens\":10,\"cache_creation_input_tokens\":7}}}},\"responseTime\":1500,\"isStreaming\":{}}}",
        r.msg, r.stream
    )
}

/// A capture with the golden schema, and one session log per conversation listing the
/// message ids given (`None` → the log names every row's message id of that group).
fn capture(dir: &Path, rows: &[Row<'_>], logs: &[(&str, &[&str])]) -> (PathBuf, PathBuf) {
    let db = dir.join("requests.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE requests (
        id TEXT PRIMARY KEY, timestamp TEXT, method TEXT, endpoint TEXT, headers TEXT, body TEXT,
        user_agent TEXT, content_type TEXT, prompt_grade TEXT, response TEXT, model TEXT,
        original_model TEXT, routed_model TEXT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP);",
    )
    .unwrap();
    for r in rows {
        conn.execute(
            "INSERT INTO requests (id, timestamp, endpoint, body, response, model) VALUES (?1, ?2, '/v1/messages', ?3, ?4, 'claude-opus-4-6')",
            [r.id, r.ts, &body(r), &response(r)],
        )
        .unwrap();
    }
    let jsonl = dir.join("jsonl");
    std::fs::create_dir_all(&jsonl).unwrap();
    for (session, msgs) in logs {
        let mut text = String::new();
        for m in *msgs {
            text.push_str(&format!(
                "{{\"type\":\"assistant\",\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"sessionId\":\"{session}\",\"message\":{{\"id\":\"{m}\",\"model\":\"claude-opus-4-6\",\"content\":[{{\"type\":\"text\",\"text\":\"ok\"}}]}}}}\n"
            ));
        }
        std::fs::write(jsonl.join(format!("{session}.jsonl")), text).unwrap();
    }
    (db, jsonl)
}

/// Cells of the report line starting with `label` (split on runs of 2+ spaces).
fn row(report: &str, label: &str) -> Vec<String> {
    let line = report
        .lines()
        .find(|l| l.starts_with(label) && l[label.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row {label:?} in\n{report}"));
    line[label.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn stats(db: &Path, jsonl: &Path, conv: &str, extra: &[&str], out: &Path) -> String {
    let html = out.join(format!("{conv}.html"));
    let mut args = vec![
        db.to_str().unwrap(),
        "--jsonl-dir",
        jsonl.to_str().unwrap(),
        "--conversation-id",
        conv,
        "--text-only",
        "--output",
        html.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    std::fs::read_to_string(out.join(format!("{conv}_stats.txt"))).unwrap()
}

fn tokens_in(timeline_line: &str) -> u64 {
    let before = timeline_line.split(" tokens in").next().unwrap();
    before
        .split_whitespace()
        .last()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

const SAME: &str = "the same question every time";

/// Conversations: `ttl` (identical requests at 0, 300, 601 s), `refresh` (at 0, 200,
/// 450, 751 s), `grow` (second request extends the first), `pair` (two contents 100 s
/// apart).
fn known_capture(dir: &Path) -> (PathBuf, PathBuf) {
    let rows = [
        Row {
            id: "a1",
            ts: "2026-01-01T00:00:00Z",
            stream: true,
            text: SAME,
            msg: "msg_a1",
        },
        Row {
            id: "a2",
            ts: "2026-01-01T00:05:00Z",
            stream: true,
            text: SAME,
            msg: "msg_a2",
        },
        Row {
            id: "a3",
            ts: "2026-01-01T00:10:01Z",
            stream: true,
            text: SAME,
            msg: "msg_a3",
        },
        Row {
            id: "b1",
            ts: "2026-01-02T00:00:00Z",
            stream: true,
            text: SAME,
            msg: "msg_b1",
        },
        Row {
            id: "b2",
            ts: "2026-01-02T00:03:20Z",
            stream: true,
            text: SAME,
            msg: "msg_b2",
        },
        Row {
            id: "b3",
            ts: "2026-01-02T00:07:30Z",
            stream: true,
            text: SAME,
            msg: "msg_b3",
        },
        Row {
            id: "b4",
            ts: "2026-01-02T00:12:31Z",
            stream: true,
            text: SAME,
            msg: "msg_b4",
        },
        Row {
            id: "c1",
            ts: "2026-01-03T00:00:00Z",
            stream: true,
            text: "short start",
            msg: "msg_c1",
        },
        Row {
            id: "c2",
            ts: "2026-01-03T00:00:10Z",
            stream: true,
            text: "short start and a longer continuation",
            msg: "msg_c2",
        },
        Row {
            id: "d1",
            ts: "2026-01-04T00:00:00Z",
            stream: true,
            text: "first topic",
            msg: "msg_d1",
        },
        Row {
            id: "d2",
            ts: "2026-01-04T00:01:40Z",
            stream: true,
            text: "another topic entirely",
            msg: "msg_d2",
        },
    ];
    capture(
        dir,
        &rows,
        &[
            ("ttl", &["msg_a1", "msg_a2", "msg_a3"]),
            ("refresh", &["msg_b1", "msg_b2", "msg_b3", "msg_b4"]),
            ("grow", &["msg_c1", "msg_c2"]),
            ("pair", &["msg_d1", "msg_d2"]),
        ],
    )
}

#[test]
fn ttl_boundary_refresh_prefills_and_partial_block() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, jsonl) = known_capture(tmp.path());
    let out = tmp.path();
    let bs = ["--block-size", "1000", "--ttl", "300"];

    // Identical requests: the whole context is one partial block, so a hit is 100%.
    let tl = ok(&[
        db.to_str().unwrap(),
        "--jsonl-dir",
        jsonl.to_str().unwrap(),
        "--conversation-id",
        "ttl",
        "--timeline",
    ]);
    let lines: Vec<&str> = tl.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{tl}");
    let n = tokens_in(lines[0]);
    assert!(n > 5 && n < 1000, "{n}");
    assert!(lines[0].starts_with("STREAM  opus"), "{}", lines[0]);
    assert!(
        lines[0].contains("| cache: 50.0% | api: 1.5s | stop: end_turn"),
        "{}",
        lines[0]
    );
    // 300 s and 301 s pauses start new phases.
    assert_eq!(tl.matches("\n\n").count(), 2, "{tl}");

    // TTL 300: 300 s later hits (boundary), 301 s after the last use misses.
    let r = stats(&db, &jsonl, "ttl", &bs, out);
    assert!(r.contains("Input tokens under TTL 300 s"), "{r}");
    assert_eq!(row(&r, "Cache read")[0], n.to_string());
    assert_eq!(row(&r, "Cache creation")[0], (2 * n).to_string());
    assert_eq!(row(&r, "Uncached")[0], "0");
    // API split from the envelopes: 3 × (10 read, 7 creation, 3 uncached).
    assert_eq!(row(&r, "Cache read")[2], "30");
    assert_eq!(row(&r, "Total")[2], "60");
    // TTL table: 1 min → 3 prefills of the one block; 10 min → 1 prefill.
    assert_eq!(row(&r, "1 min"), ["0.0%", "1,000", "3.00", "0.0%"]);
    assert_eq!(row(&r, "5 min")[2], "2.00");
    assert_eq!(row(&r, "10 min"), ["66.7%", "1,000", "1.00", "100.0%"]);

    // Refresh on use: 0, 200, 450 all within 300 s of the previous use; 751 is 301 later.
    let r = stats(&db, &jsonl, "refresh", &bs, out);
    assert_eq!(row(&r, "Cache read")[0], (2 * n).to_string());
    assert_eq!(row(&r, "Cache creation")[0], (2 * n).to_string());
    assert_eq!(row(&r, "5 min")[..3], ["50.0%", "1,000", "2.00"]);
    assert_eq!(row(&r, "infinite")[..3], ["75.0%", "1,000", "1.00"]);

    // A partial final block that grows is a different block: no hit at block size 1000;
    // at block size 1 the shared tokens hit.
    let r = stats(&db, &jsonl, "grow", &bs, out);
    assert_eq!(row(&r, "Cache read")[0], "0");
    let r1 = stats(&db, &jsonl, "grow", &["--block-size", "1"], out);
    let read: u64 = row(&r1, "Cache read")[0].replace(',', "").parse().unwrap();
    assert!(read > 5, "{r1}");

    // Working set: two distinct blocks 100 s apart are alive together only if TTL ≥ 100 s.
    let r = stats(&db, &jsonl, "pair", &bs, out);
    assert_eq!(row(&r, "1 min")[1], "1,000");
    assert_eq!(row(&r, "2 min")[1], "2,000");
    assert_eq!(row(&r, "2 min")[3], "100.0%");
}

#[test]
fn combined_counts_an_old_proxy_pair_once() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = [
        // Old proxy: streaming + non-streaming replay 5 s later; the log names the replay.
        Row {
            id: "s1",
            ts: "2026-01-01T00:00:00Z",
            stream: true,
            text: "hello",
            msg: "msg_s1",
        },
        Row {
            id: "n1",
            ts: "2026-01-01T00:00:05Z",
            stream: false,
            text: "hello",
            msg: "msg_n1",
        },
        // Same content, but 40 s apart: two turns.
        Row {
            id: "s2",
            ts: "2026-01-01T00:10:00Z",
            stream: true,
            text: "again",
            msg: "msg_s2",
        },
        Row {
            id: "n2",
            ts: "2026-01-01T00:10:40Z",
            stream: false,
            text: "again",
            msg: "msg_n2",
        },
        // Fixed proxy: a streaming request alone.
        Row {
            id: "s3",
            ts: "2026-01-01T00:20:00Z",
            stream: true,
            text: "fixed",
            msg: "msg_s3",
        },
    ];
    let (db, jsonl) = capture(
        tmp.path(),
        &rows,
        &[("conv", &["msg_n1", "msg_n2", "msg_s3"])],
    );
    let r = stats(&db, &jsonl, "combined", &[], tmp.path());
    assert_eq!(row(&r, "Requests")[0], "4", "{r}");
    assert_eq!(row(&r, "Streaming")[0], "2");
    assert_eq!(row(&r, "Non-streaming")[0], "2");
    assert_eq!(row(&r, "Old-proxy pairs counted once")[0], "1");
    let tl = ok(&[
        db.to_str().unwrap(),
        "--jsonl-dir",
        jsonl.to_str().unwrap(),
        "--conversation-id",
        "combined",
        "--timeline",
    ]);
    assert!(tl.lines().next().unwrap().starts_with("NONSTR"), "{tl}");
}

#[test]
fn empty_selection_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = [Row {
        id: "x",
        ts: "2026-01-01T00:00:00Z",
        stream: true,
        text: "hi",
        msg: "msg_x",
    }];
    let (db, jsonl) = capture(tmp.path(), &rows, &[("lonely", &["msg_not_in_db"])]);
    for conv in ["lonely", "nosuch", "all"] {
        let out = run(&[
            db.to_str().unwrap(),
            "--jsonl-dir",
            jsonl.to_str().unwrap(),
            "--conversation-id",
            conv,
            "--output-dir",
            tmp.path().join("o").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{conv}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    assert!(!tmp.path().join("o/index.html").exists());
}

#[test]
fn examples_dashboards_are_self_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let ex = common::examples();
    let db = ex.join("requests.db");
    let jsonl = ex.join("jsonl");
    let dir = tmp.path().join("dash");
    ok(&[
        db.to_str().unwrap(),
        "--jsonl-dir",
        jsonl.to_str().unwrap(),
        "--conversation-id",
        "all",
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for f in ["044cdae1-5a9.html", "f3c50e22-96d.html"] {
        assert!(index.contains(&format!("href=\"{f}\"")), "{index}");
    }
    let combined = tmp.path().join("combined.html");
    ok(&[
        db.to_str().unwrap(),
        "--jsonl-dir",
        jsonl.to_str().unwrap(),
        "--conversation-id",
        "combined",
        "--output",
        combined.to_str().unwrap(),
    ]);
    for path in [
        dir.join("044cdae1-5a9.html"),
        dir.join("f3c50e22-96d.html"),
        combined,
    ] {
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(
            html.len() < 1_000_000,
            "{}: {} bytes",
            path.display(),
            html.len()
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{}",
            path.display()
        );
        assert!(!html.contains("src="), "{}", path.display());
        assert!(!html.contains("<script"), "{}", path.display());
        for title in [
            "Input tokens per request: simulated vs API",
            "Output tokens per request",
            "Context composition per request",
            "Cache hit rate per request over time",
            "Context size (input tokens) per request over time, by agent",
            "Hit rate vs TTL",
            "Peak working set vs TTL",
            "Prefills per distinct block vs TTL",
            "Working set over time",
            "Cache by TTL",
        ] {
            assert!(html.contains(title), "{}: no {title:?}", path.display());
        }
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    }
    // Sub-agent lanes, labelled by spawn order.
    let html = std::fs::read_to_string(dir.join("044cdae1-5a9.html")).unwrap();
    for lane in ["SA1", "SA2", "SA3", "SA4"] {
        assert!(html.contains(lane), "{lane}");
    }
}

#[test]
fn examples_timeline_phases_and_labels() {
    let ex = common::examples();
    let tl = ok(&[
        ex.join("requests.db").to_str().unwrap(),
        "--jsonl-dir",
        ex.join("jsonl").to_str().unwrap(),
        "--conversation-id",
        "044cdae1",
        "--timeline",
    ]);
    let lines: Vec<&str> = tl.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 90);
    assert_eq!(lines.iter().filter(|l| l.contains("<- SA")).count(), 48);
    // The fan-out: a blank line right before the first sub-agent request.
    let first_sa = tl.find("<- SA1").unwrap();
    let line_start = tl[..first_sa].rfind('\n').unwrap();
    assert!(
        tl[..line_start].ends_with('\n'),
        "no phase break before the fan-out"
    );
    assert!(lines[0].starts_with("STREAM  opus"));
}

/// Renders the examples dashboard in headless Chromium when it is installed (Debian
/// package `chromium`; `.ci/run` installs it); skipped otherwise, a failure under CI.
#[test]
fn examples_dashboard_renders_in_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        common::unavailable("Chromium (Debian package chromium; .ci/run installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ex = common::examples();
    let html = tmp.path().join("dash.html");
    ok(&[
        ex.join("requests.db").to_str().unwrap(),
        "--jsonl-dir",
        ex.join("jsonl").to_str().unwrap(),
        "--conversation-id",
        "044cdae1",
        "--output",
        html.to_str().unwrap(),
    ]);
    let png = tmp.path().join("shot.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,800",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    // A blank 1280×800 page compresses to a few KB; charts make it much larger.
    assert!(
        bytes.len() > 30_000,
        "screenshot looks empty: {} bytes",
        bytes.len()
    );
}
