//! visualize-cache end to end: known answers on hand-made captures (TTL
//! boundary, refresh on use, prefill counts, working set, the partial final block,
//! old-proxy pairs in `combined`), the timeline, empty selections, the HTML of the
//! bundled examples (self-contained, < 1 MB, one file per conversation with `all`), and
//! the layout of a large combined dashboard (synthetic, 60 conversations): every lane
//! drawn and labelled in full, truthful bar labels, round time ticks, few pause markers,
//! legends clear of titles.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// visualize-cache on a capture folder (`requests.db` + `jsonl/`): `target` into `out`
/// given as `flag` (`--output` or `--output-dir`), with `extra` flags; returns stdout.
fn draw(capture: &Path, target: &str, flag: &str, out: &Path, extra: &[&str]) -> String {
    let (db, jsonl) = (capture.join("requests.db"), capture.join("jsonl"));
    let (db, jsonl, out) = (db.to_str(), jsonl.to_str(), out.to_str());
    let args = [db.unwrap(), "--jsonl-dir", jsonl.unwrap()];
    let target = ["--conversation-id", target, flag, out.unwrap()];
    common::ok("visualize-cache", &[&args[..], &target[..], extra].concat())
}

/// The `--timeline` of one target.
fn timeline(db: &Path, jsonl: &Path, target: &str) -> String {
    let (db, jsonl) = (db.to_str().unwrap(), jsonl.to_str().unwrap());
    let args = [
        db,
        "--jsonl-dir",
        jsonl,
        "--conversation-id",
        target,
        "--timeline",
    ];
    common::ok("visualize-cache", &args)
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
    common::ok("visualize-cache", &args);
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
    let tl = timeline(&db, &jsonl, "ttl");
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
    let tl = timeline(&db, &jsonl, "combined");
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
        let out = common::run(
            "visualize-cache",
            &[
                db.to_str().unwrap(),
                "--jsonl-dir",
                jsonl.to_str().unwrap(),
                "--conversation-id",
                conv,
                "--output-dir",
                tmp.path().join("o").to_str().unwrap(),
            ],
        );
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
    let dir = tmp.path().join("dash");
    draw(&ex, "all", "--output-dir", &dir, &[]);
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for f in ["044cdae1-5a9.html", "f3c50e22-96d.html"] {
        assert!(index.contains(&format!("href=\"{f}\"")), "{index}");
    }
    let combined = tmp.path().join("combined.html");
    draw(&ex, "combined", "--output", &combined, &[]);
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
    let tl = common::ok(
        "visualize-cache",
        &[
            ex.join("requests.db").to_str().unwrap(),
            "--jsonl-dir",
            ex.join("jsonl").to_str().unwrap(),
            "--conversation-id",
            "044cdae1",
            "--timeline",
        ],
    );
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
    draw(&ex, "044cdae1", "--output", &html, &[]);
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

// ---------------------------------------------------------------------------------------
// Layout at scale: a synthetic capture of 60 conversations (≈1,300 requests, 3 weeks).

use kvtrace::visualize::html::{bucket_size, MAX_LANES, MAX_PAUSE_MARKS};
use kvtrace::visualize::svg::{
    duration, ellipsize, text_width, Frame, Key, TimeAxis, TICK_PX, TITLE_PX,
};

/// A synthetic capture (small contexts: fast) and its combined dashboard.
fn synth_dashboard(dir: &Path, seed: u64, conversations: u64, median: u64) -> (String, u64) {
    let cap = dir.join("cap");
    let cfg = kvtrace_synth::Config {
        seed,
        conversations,
        median_requests: median,
        max_context_tokens: 20_000,
        ..kvtrace_synth::Config::default()
    };
    let summary = kvtrace_synth::generate(&cfg, &cap).unwrap();
    let html = dir.join("combined.html");
    draw(&cap, "combined", "--output", &html, &["--quiet"]);
    (
        std::fs::read_to_string(&html).unwrap(),
        summary.conversations + summary.subagents,
    )
}

/// The charts of a page: (title, svg text).
fn charts(html: &str) -> Vec<(String, &str)> {
    html.split("<svg")
        .skip(1)
        .map(|s| {
            let t = s
                .split("<title>")
                .nth(1)
                .unwrap()
                .split("</title>")
                .next()
                .unwrap();
            (t.replace("&amp;", "&"), s.split("</svg>").next().unwrap())
        })
        .collect()
}

fn chart<'a>(charts: &'a [(String, &'a str)], prefix: &str) -> &'a str {
    charts
        .iter()
        .find(|(t, _)| t.starts_with(prefix))
        .unwrap_or_else(|| panic!("no chart {prefix:?}"))
        .1
}

fn attr(tag: &str, name: &str) -> Option<f64> {
    let v = tag
        .split(&format!(" {name}=\""))
        .nth(1)?
        .split('"')
        .next()?;
    v.parse().ok()
}

/// `<text class="CLASS" …>` elements: (x, y, text without its tooltip).
fn texts(svg: &str, class: &str) -> Vec<(f64, f64, String)> {
    svg.split(&format!("<text class=\"{class}\""))
        .skip(1)
        .map(|s| {
            let (tag, rest) = s.split_once('>').unwrap();
            let mut body = rest.split("</text>").next().unwrap().to_owned();
            if let (Some(a), Some(b)) = (body.find("<title>"), body.find("</title>")) {
                body.replace_range(a..b + "</title>".len(), "");
            }
            (
                attr(tag, "x").unwrap(),
                attr(tag, "y").unwrap(),
                body.replace("&amp;", "&"),
            )
        })
        .collect()
}

/// Seconds of a tick label such as `1d6h` or `2m30s`; `None` if it is not one.
fn parse_duration(l: &str) -> Option<u64> {
    if l == "0" {
        return Some(0);
    }
    let (mut total, mut num, mut digits, mut last_unit) = (0u64, 0u64, 0, 5);
    for c in l.chars() {
        if let Some(d) = c.to_digit(10) {
            num = num * 10 + u64::from(d);
            digits += 1;
            continue;
        }
        let (rank, secs) = match c {
            'd' => (1, 86_400),
            'h' => (2, 3600),
            'm' => (3, 60),
            's' => (4, 1),
            _ => return None,
        };
        // Units in order, each once, none zero.
        if digits == 0 || num == 0 || (last_unit != 5 && rank <= last_unit) {
            return None;
        }
        total += num * secs;
        (num, digits, last_unit) = (0, 0, rank);
    }
    (digits == 0).then_some(total)
}

/// The time charts' x ticks are round (multiples of a minute on a weeks-long axis),
/// cleanly written, in order and apart.
fn assert_round_time_ticks(svg: &str, min_step: u64) {
    let ticks: Vec<(f64, f64, String)> = texts(svg, "tk xt");
    assert!(ticks.len() >= 3 && ticks.len() <= 14, "{ticks:?}");
    let mut last: Option<(f64, u64)> = None;
    for (x, _, l) in &ticks {
        let secs = parse_duration(l).unwrap_or_else(|| panic!("tick {l:?} is not a duration"));
        assert_eq!(
            secs % min_step,
            0,
            "tick {l} is not a multiple of {min_step} s"
        );
        if let Some((px, ps)) = last {
            assert!(secs > ps, "ticks out of order: {ticks:?}");
            assert!(x - px >= 30.0, "ticks too close: {ticks:?}");
        }
        last = Some((*x, secs));
    }
}

/// Legend entries on the title's row start right of the title; others sit below it.
fn assert_legend_clear_of_title(title: &str, svg: &str) {
    let (tx, ty, _) = texts(svg, "ct")[0].clone();
    let title_end = tx + text_width(title, TITLE_PX, true);
    for (x, y, l) in texts(svg, "lg") {
        assert!(
            y >= ty + 14.0 || x >= title_end + 10.0,
            "{title:?}: legend {l:?} at ({x}, {y}) overlaps the title (ends at {title_end})"
        );
    }
}

#[test]
fn large_combined_dashboard_is_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let (html, agents) = synth_dashboard(tmp.path(), 3, 60, 12);
    let n: usize = html
        .split("<p class=\"note\">")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(n > 1000, "{n} requests");
    let charts = charts(&html);

    // Bars of several requests say so, and how many.
    let per = bucket_size(n);
    assert!(per > 1 && n.div_ceil(per) <= 300, "{per}");
    for title in [
        format!("Input tokens per {per} requests: simulated vs API"),
        format!("Output tokens per {per} requests"),
        format!("Context composition of 1 request in {per} (the last of each bar)"),
    ] {
        chart(&charts, &title);
    }
    for (title, _) in &charts {
        assert!(
            !title.contains("tokens per request"),
            "{title}: a bar of {per} called per request"
        );
    }
    assert!(html.contains(&format!("Each bar sums {per} consecutive requests")));
    let tokens = chart(&charts, "Input tokens per");
    assert_eq!(
        tokens.matches("<g><title>requests ").count(),
        n.div_ceil(per)
    );

    // 60 conversations + the unlinked rows: 61 lanes, each drawn, none lumped, labels whole.
    let ctx = chart(&charts, "Context size (input tokens)");
    let lanes = texts(ctx, "tk ln");
    assert_eq!(lanes.len(), 61, "{lanes:?}");
    assert!(html.contains("61 lanes below the chart"));
    assert!(!lanes
        .iter()
        .any(|(_, _, l)| l.contains("other") && l != "other"));
    assert_eq!(lanes.last().map(|l| l.2.as_str()), Some("other"));
    for (x, _, l) in &lanes {
        assert!(!l.contains('…'), "{l} ellipsized");
        assert!(
            x - text_width(l, TICK_PX, false) >= 0.0,
            "lane label {l} cut off"
        );
    }
    // The chart grows with its lanes: 61 lanes of 13 px below a 240 px plot.
    let vb: Vec<f64> = ctx
        .split("viewBox=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(vb[3] >= 240.0 + 61.0 * 13.0, "{vb:?}");
    // Lines only within one agent: at most one per agent, none for the unlinked rows.
    let paths = ctx.matches("<path class=\"agent\"").count();
    assert!(
        paths >= 60 && paths as u64 <= agents,
        "{paths} lines for {agents} agents"
    );

    // Time charts: round ticks, a bounded number of pause markers, named in the legend.
    for prefix in [
        "Cache hit rate per request over time",
        "Context size (input tokens)",
        "Working set over time",
    ] {
        let svg = chart(&charts, prefix);
        assert_round_time_ticks(svg, 60);
        let marks = svg.matches("<line class=\"pause\"").count();
        assert!(
            marks > 0 && marks <= MAX_PAUSE_MARKS,
            "{prefix}: {marks} pause markers"
        );
        assert!(
            texts(svg, "lg").iter().any(|(_, _, l)| l.contains("pause")),
            "{prefix}: no pause legend"
        );
    }
    for (title, svg) in &charts {
        assert_legend_clear_of_title(title, svg);
    }
}

#[test]
fn lanes_beyond_the_limit_share_one_counted_lane() {
    let tmp = tempfile::tempdir().unwrap();
    let (html, _) = synth_dashboard(tmp.path(), 5, MAX_LANES as u64 + 10, 3);
    let charts = charts(&html);
    let lanes = texts(chart(&charts, "Context size (input tokens)"), "tk ln");
    assert_eq!(lanes.len(), MAX_LANES);
    let (_, _, last) = lanes.last().unwrap();
    let lumped: usize = last.strip_suffix(" others").unwrap().parse().unwrap();
    // 110 conversations + the unlinked rows, 99 drawn alone.
    assert_eq!(lumped, MAX_LANES + 11 - (MAX_LANES - 1), "{last}");
    assert!(html.contains(&format!(
        "the {lumped} conversations with the fewest requests share the last one"
    )));
}

#[test]
fn small_dashboards_keep_per_request_bars() {
    let ex = common::examples();
    let tmp = tempfile::tempdir().unwrap();
    for conv in ["combined", "044cdae1"] {
        let out = tmp.path().join(format!("{conv}.html"));
        common::ok(
            "visualize-cache",
            &[
                ex.join("requests.db").to_str().unwrap(),
                "--jsonl-dir",
                ex.join("jsonl").to_str().unwrap(),
                "--conversation-id",
                conv,
                "--output",
                out.to_str().unwrap(),
            ],
        );
        let html = std::fs::read_to_string(&out).unwrap();
        let charts = charts(&html);
        chart(&charts, "Input tokens per request: simulated vs API");
        chart(&charts, "Context composition per request");
        assert!(!html.contains("Each bar sums"));
        for (title, svg) in &charts {
            assert_legend_clear_of_title(title, svg);
        }
        let hit = chart(&charts, "Cache hit rate per request over time");
        assert_round_time_ticks(hit, 60);
        assert!(hit.matches("<line class=\"pause\"").count() <= MAX_PAUSE_MARKS);
        // Few lanes: each named in the legend.
        let ctx = chart(&charts, "Context size (input tokens)");
        for (_, _, l) in texts(ctx, "tk ln") {
            assert!(texts(ctx, "lg").iter().any(|(_, _, g)| *g == l), "{l}");
        }
    }
}

#[test]
fn time_ticks_durations_and_pause_marks() {
    for (secs, text) in [
        (0.0, "0"),
        (45.0, "45s"),
        (150.0, "2m30s"),
        (1200.0, "20m"),
        (3600.0, "1h"),
        (5400.0, "1h30m"),
        (2.0 * 86_400.0 + 6.0 * 3600.0, "2d6h"),
        (f64::NAN, "0"),
    ] {
        assert_eq!(duration(secs), text);
    }
    let frame = |end: f64| Frame::new(1180.0, 300.0, (0.0, end * 1.02), (0.0, 1.0));
    // A plain 30-minute axis: every 5 minutes.
    let a = TimeAxis::new(&[0.0, 60.0, 1800.0], 1e9);
    let labels: Vec<String> = a.ticks(&frame(a.end())).into_iter().map(|t| t.1).collect();
    assert_eq!(labels, ["0", "5m", "10m", "15m", "20m", "25m", "30m"]);
    // 2,000 requests in bursts over 20 days (200 pauses, shortened): round and apart.
    let times: Vec<f64> = (0..2000)
        .map(|i| (i / 10) as f64 * 8_640.0 + (i % 10) as f64 * 30.7)
        .collect();
    let a = TimeAxis::new(&times, 120.0);
    let f = frame(a.end());
    let t = a.ticks(&f);
    assert!(t.len() >= 4 && t.len() <= 14, "{t:?}");
    for w in t.windows(2) {
        assert!(f.sx(w[1].0) - f.sx(w[0].0) >= 30.0, "{t:?}");
    }
    for (shown, l) in &t {
        let secs = parse_duration(l).unwrap();
        assert_eq!(secs % 3600, 0, "{l}");
        assert!((a.unmap(*shown) - secs as f64).abs() < 1.0, "{l} misplaced");
    }
    // Ten busy minutes then hours: minutes where there is room, hours after.
    let mut times: Vec<f64> = (0..60).map(|i| i as f64 * 10.0).collect();
    times.extend((1..12).map(|h| h as f64 * 3600.0 + 7.0));
    let a = TimeAxis::new(&times, 120.0);
    let t = a.ticks(&frame(a.end()));
    assert!(t.iter().all(|(_, l)| parse_duration(l).is_some()), "{t:?}");
    let secs: Vec<u64> = t.iter().filter_map(|(_, l)| parse_duration(l)).collect();
    assert!(secs.iter().any(|s| (60..600).contains(s)), "{t:?}");
    assert!(secs.iter().any(|s| *s >= 3600 && s % 3600 == 0), "{t:?}");

    // 300 pauses of 10 min and one of a day: only the day is marked.
    let mut times: Vec<f64> = (0..300).map(|i| i as f64 * 600.0).collect();
    times.push(299.0 * 600.0 + 86_400.0);
    let p = TimeAxis::new(&times, 120.0).marked_breaks(12);
    assert_eq!(
        (p.all, p.over, p.marked.len(), p.longest_only),
        (300, 600.0, 1, false)
    );
    // 30 pauses of 13–17 h: no round threshold leaves 1–12, so the 12 longest.
    let mut times = vec![0.0];
    for i in 0..30 {
        let last = times[times.len() - 1];
        times.push(last + 13.0 * 3600.0 + (i % 5) as f64 * 3600.0);
    }
    let p = TimeAxis::new(&times, 120.0).marked_breaks(12);
    assert_eq!(
        (p.marked.len(), p.longest_only, p.over),
        (12, true, 43_200.0)
    );
    assert!(p.marked.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(p.marked.iter().all(|m| m.1 >= 16.0 * 3600.0));
    // Few pauses: all marked.
    let p = TimeAxis::new(&[0.0, 1000.0], 120.0).marked_breaks(12);
    assert_eq!((p.marked.len(), p.over), (1, 120.0));
}

#[test]
fn legends_wrap_below_titles_and_labels_ellipsize() {
    assert!(text_width("mmm", 12.0, false) > text_width("iii", 12.0, false));
    let e = ellipsize("0123456789abcdef0123/SA12", TICK_PX, 80.0);
    assert!(e.contains('…') && e.ends_with("SA12"), "{e}");
    assert!(text_width(&e, TICK_PX, false) <= 80.0);
    assert_eq!(ellipsize("short", TICK_PX, 80.0), "short");
    let keys: Vec<Key> = (0..8)
        .map(|i| Key::boxed("#000", &format!("series number {i}")))
        .collect();
    let mut f = Frame::new(600.0, 200.0, (0.0, 1.0), (0.0, 1.0));
    let (top, h, plot) = (f.top, f.h, f.plot_h());
    let title = "A long chart title that takes room";
    let svg = f.open(title, &keys);
    assert!(
        f.top > top && f.h > h && f.plot_h() == plot,
        "rows below the title"
    );
    assert_eq!(svg.matches("class=\"lg\"").count(), 8);
    assert_legend_clear_of_title(title, &svg);
    let mut g = Frame::new(1180.0, 200.0, (0.0, 1.0), (0.0, 1.0));
    let svg = g.open("Short", &keys[..2]);
    assert_eq!(g.top, 40.0, "a legend that fits stays beside the title");
    assert_legend_clear_of_title("Short", &svg);
}
