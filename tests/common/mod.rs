//! Test harness: fixture paths, a temp-dir builder and a wrapper around the real binaries.
#![allow(dead_code)]

pub mod harness;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `tests/fixtures` of the workspace.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

pub fn golden() -> PathBuf {
    fixtures().join("golden")
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The salt of the golden runs.
pub const SALT: &str = "00112233445566778899aabbccddeeff";

/// Path of a binary of this package, as a string (one lookup for every test file).
pub fn exe(name: &str) -> &'static str {
    match name {
        "build-minimal-traces" => env!("CARGO_BIN_EXE_build-minimal-traces"),
        "build-message-index" => env!("CARGO_BIN_EXE_build-message-index"),
        "build-conversation-index" => env!("CARGO_BIN_EXE_build-conversation-index"),
        "validate-trace-cache" => env!("CARGO_BIN_EXE_validate-trace-cache"),
        "trace-stats" => env!("CARGO_BIN_EXE_trace-stats"),
        "export-traces" => env!("CARGO_BIN_EXE_export-traces"),
        "merge-traces" => env!("CARGO_BIN_EXE_merge-traces"),
        "session-stats" => env!("CARGO_BIN_EXE_session-stats"),
        "check-streams" => env!("CARGO_BIN_EXE_check-streams"),
        "list-conversations" => env!("CARGO_BIN_EXE_list-conversations"),
        "visualize-cache" => env!("CARGO_BIN_EXE_visualize-cache"),
        "recover-conversations" => env!("CARGO_BIN_EXE_recover-conversations"),
        other => panic!("unknown binary {other}"),
    }
}

/// Path of a binary of this package.
pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(exe(name))
}

/// `build-minimal-traces DB --jsonl-dir JSONL --output-dir OUT --quiet`'s arguments.
pub fn build_args<'a>(db: &'a Path, jsonl: &'a Path, out: &'a Path) -> Vec<&'a OsStr> {
    let f: [&OsStr; 3] = [
        "--jsonl-dir".as_ref(),
        "--output-dir".as_ref(),
        "--quiet".as_ref(),
    ];
    vec![
        db.as_os_str(),
        f[0],
        jsonl.as_os_str(),
        f[1],
        out.as_os_str(),
        f[2],
    ]
}

/// `list-conversations DB --jsonl-dir JSONL --format json`'s arguments.
pub fn list_json_args<'a>(db: &'a Path, jsonl: &'a Path) -> Vec<&'a OsStr> {
    let f: [&OsStr; 3] = ["--jsonl-dir".as_ref(), "--format".as_ref(), "json".as_ref()];
    vec![db.as_os_str(), f[0], jsonl.as_os_str(), f[1], f[2]]
}

/// `visualize-cache DB --jsonl-dir JSONL --conversation-id all --output-dir OUT --quiet`'s
/// arguments.
pub fn visualize_all_args<'a>(db: &'a Path, jsonl: &'a Path, out: &'a Path) -> Vec<&'a OsStr> {
    let mut args = vec![db.as_os_str(), "--jsonl-dir".as_ref(), jsonl.as_os_str()];
    args.extend::<[&OsStr; 4]>([
        "--conversation-id".as_ref(),
        "all".as_ref(),
        "--output-dir".as_ref(),
        out.as_os_str(),
    ]);
    args.push("--quiet".as_ref());
    args
}

/// `validate-trace-cache TRACES --db DB --jsonl-dir JSONL`'s arguments.
pub fn validate_args<'a>(traces: &'a Path, db: &'a Path, jsonl: &'a Path) -> Vec<&'a OsStr> {
    let f: [&OsStr; 2] = ["--db".as_ref(), "--jsonl-dir".as_ref()];
    vec![
        traces.as_os_str(),
        f[0],
        db.as_os_str(),
        f[1],
        jsonl.as_os_str(),
    ]
}

/// Run a binary with arguments; returns its output.
pub fn run<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> Output {
    Command::new(bin(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

/// Run a binary from the folder `dir` (for relative paths); returns its output.
pub fn run_in<S: AsRef<std::ffi::OsStr>>(dir: &Path, name: &str, args: &[S]) -> Output {
    Command::new(bin(name))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

/// Run and require success; returns stdout.
pub fn ok<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> String {
    let out = run(name, args);
    assert!(
        out.status.success(),
        "{name} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Files of a directory, sorted, as (name, bytes).
pub fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The golden run command lines: (run name, arguments with OUT replaced by `out`).
pub fn golden_runs(out: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(golden().join("expected/RUNS.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, cmd) = line.split_once(": ").unwrap();
            let args = cmd
                .split_whitespace()
                .skip(1)
                .map(|a| match a {
                    "OUT" => out.join(name).display().to_string(),
                    a if a.starts_with("capture/") => golden().join(a).display().to_string(),
                    a => a.to_owned(),
                })
                .collect();
            (name.to_owned(), args)
        })
        .collect()
}

/// Wait for a child up to `limit`; on timeout kill it and return `None` (a hang is a test
/// failure, never a stuck test run).
#[allow(dead_code)]
pub fn wait_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("waiting for a child") {
            return Some(s);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A test that needs something this machine lacks (Chromium, mounting, a device): under
/// CI (`CI` set, as `.ci/run` sets it) that is a failure, never a silent pass; elsewhere
/// the test says it skipped.
#[allow(dead_code)]
pub fn unavailable(what: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "{what}: required under CI (CI is set), and missing here"
    );
    eprintln!("skipped: {what}");
}

/// Run build-minimal-traces on `db` + `jsonl` into the folder `out` with `extra` flags;
/// it must succeed. Returns its stdout.
pub fn build_traces<S: AsRef<std::ffi::OsStr>>(
    db: &Path,
    jsonl: &Path,
    out: &Path,
    extra: &[S],
) -> String {
    let mut args: Vec<std::ffi::OsString> = vec![
        db.into(),
        "--jsonl-dir".into(),
        jsonl.into(),
        "--output-dir".into(),
        out.into(),
    ];
    args.extend(extra.iter().map(|a| a.as_ref().to_owned()));
    ok("build-minimal-traces", &args)
}

/// Build a capture into `out` as a shard merge-traces accepts (global ids, id map `map`).
pub fn build_shard(db: &Path, jsonl: &Path, out: &Path, map: &Path) {
    let map = map.as_os_str();
    build_traces(
        db,
        jsonl,
        out,
        &[
            "--global-hash-ids".as_ref(),
            "--id-map".as_ref(),
            map,
            "-q".as_ref(),
        ],
    );
}
