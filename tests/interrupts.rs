//! Ctrl-C: build-minimal-traces stops with exit 130 and leaves only complete
//! traces, never a partial file or a temporary file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{bin, wait_within, SALT};

fn synth(dir: &Path, conversations: u64) {
    let cfg = kvtrace_synth::Config {
        seed: 11,
        conversations,
        median_requests: 12,
        max_context_tokens: 40_000,
        ..kvtrace_synth::Config::default()
    };
    kvtrace_synth::generate(&cfg, dir).unwrap();
}

/// Start a build, send SIGINT after `delay`; returns the exit code.
fn interrupted_build(cap: &Path, out: &Path, delay: Duration) -> Option<i32> {
    signalled_build(cap, out, delay, "-INT")
}

/// Start a build, send `signal` (a `kill` flag) after `delay`; returns the exit code.
fn signalled_build(cap: &Path, out: &Path, delay: Duration, signal: &str) -> Option<i32> {
    let mut child = Command::new(bin("build-minimal-traces"))
        .arg(cap.join("requests.db"))
        .arg("--jsonl-dir")
        .arg(cap.join("jsonl"))
        .arg("--output-dir")
        .arg(out)
        .args([
            "--salt",
            SALT,
            "--include-subagents",
            "--threads",
            "1",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success() || child.try_wait().unwrap().is_some());
    let status = wait_within(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no exit within 60 s of {signal}"));
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    if status.code() == Some(130) {
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("warning:"))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].starts_with("error: "), "{stderr}");
    }
    status.code()
}

/// Every file left is a complete trace; no temporary file remains.
fn only_complete_traces(out: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(out) else {
        return 0;
    };
    let mut n = 0;
    for e in rd {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".kvtrace-") && !name.ends_with(".tmp"),
            "temporary file left: {name}"
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap())
            .unwrap_or_else(|e| panic!("{name}: partial trace: {e}"));
        assert!(v["requests"].is_array(), "{name}");
        n += 1;
    }
    n
}

#[test]
fn sigint_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outcomes = Vec::new();
    for (i, conversations) in [30u64, 120].into_iter().enumerate() {
        let cap = tmp.path().join(format!("cap{i}"));
        synth(&cap, conversations);
        let out = tmp.path().join(format!("out{i}"));
        let code = interrupted_build(&cap, &out, Duration::from_millis(200));
        let files = only_complete_traces(&out);
        eprintln!("{conversations} conversations: exit {code:?}, {files} traces left");
        assert!(matches!(code, Some(0 | 130)), "exit {code:?}");
        outcomes.push(code);
        if code == Some(130) {
            return;
        }
    }
    panic!("the build finished before SIGINT every time: {outcomes:?}");
}

#[test]
fn sigint_before_any_work() {
    // A signal during start-up (the handler is installed before any output is written).
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("cap");
    synth(&cap, 4);
    let out = tmp.path().join("out");
    let code = interrupted_build(&cap, &out, Duration::from_millis(1));
    // Killed by the default handler (None) before ctrlc's was installed, or stopped.
    assert!(matches!(code, None | Some(0 | 130)), "exit {code:?}");
    only_complete_traces(&out);
}

#[test]
fn sigterm_stops_the_build_like_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("cap");
    synth(&cap, 120);
    let out = tmp.path().join("out");
    let code = signalled_build(&cap, &out, Duration::from_millis(200), "-TERM");
    only_complete_traces(&out);
    assert!(matches!(code, Some(0 | 130)), "exit {code:?}");
}

#[test]
fn sigterm_ends_every_reading_tool_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("cap");
    synth(&cap, 120);
    let db = cap.join("requests.db");
    let jsonl = cap.join("jsonl");
    let traces = tmp.path().join("traces");
    let built = Command::new(bin("build-minimal-traces"))
        .arg(&db)
        .arg("--jsonl-dir")
        .arg(&jsonl)
        .arg("--output-dir")
        .arg(&traces)
        .args(["--salt", SALT, "-q"])
        .status()
        .unwrap();
    assert!(built.success());
    let viz = tmp.path().join("viz");
    let rec = tmp.path().join("rec");
    let p = |x: &Path| x.display().to_string();
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "validate-trace-cache",
            vec![
                p(&traces),
                "--db".into(),
                p(&db),
                "--jsonl-dir".into(),
                p(&jsonl),
            ],
        ),
        (
            "list-conversations",
            vec![p(&db), "--jsonl-dir".into(), p(&jsonl)],
        ),
        (
            "visualize-cache",
            vec![
                p(&db),
                "--jsonl-dir".into(),
                p(&jsonl),
                "--conversation-id".into(),
                "all".into(),
                "--text-only".into(),
                "--output-dir".into(),
                p(&viz),
            ],
        ),
        (
            "recover-conversations",
            vec![
                p(&db),
                "--output-dir".into(),
                p(&rec),
                "--exclude-indexed".into(),
                p(&jsonl),
            ],
        ),
        ("session-stats", vec![p(&jsonl)]),
        ("trace-stats", vec![p(&traces)]),
    ];
    for (tool, args) in runs {
        let mut child = Command::new(bin(tool))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = wait_within(&mut child, Duration::from_secs(10));
        assert!(status.is_some(), "{tool} still running 10 s after SIGTERM");
    }
    // Nothing partial: outputs are written whole or not at all.
    for dir in [&viz, &rec] {
        for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".kvtrace-"),
                "temporary file left: {name}"
            );
        }
    }
}
