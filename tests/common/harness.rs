//! The shared harness of the end-to-end tests: run a tool with a time limit and look at
//! what it did (`Run`), a writable copy of the golden capture to damage (`Cap`), and the
//! runs of every tool that reads a capture (`db_tools`).
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{list_json_args, visualize_all_args};
use serde_json::Value;

use super::{exe, golden, wait_within, SALT};

pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run a tool with a time limit (a hang is a failure, not a stuck test run).
pub fn run<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> Run {
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let what = format!(
        "{name} {}",
        args.iter()
            .map(|a| a.to_string_lossy().chars().take(80).collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = Command::new(exe(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let status = wait_within(&mut child, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{what}: still running after 120 s"));
    let r = Run {
        what,
        code: status.code(),
        stdout: String::from_utf8_lossy(&to.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&te.join().unwrap()).into_owned(),
    };
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"),
        "{}: panic: {}",
        r.what,
        r.stderr
    );
    assert!(r.code.is_some(), "{}: killed by a signal", r.what);
    r
}

impl Run {
    /// stderr lines that are not warnings.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with("warning:"))
            .collect()
    }

    /// Exit `code` with exactly one `error: …` line.
    pub fn failed_with(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{}: {}", self.what, self.stderr);
        let lines = self.error_lines();
        assert_eq!(
            lines.len(),
            1,
            "{}: one error line: {:?}",
            self.what,
            self.stderr
        );
        assert!(
            lines[0].starts_with("error: "),
            "{}: {:?}",
            self.what,
            lines[0]
        );
        self
    }

    pub fn unusable(&self) -> &Self {
        self.failed_with(2)
    }

    pub fn contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "{}: {:?} lacks {needle:?}",
            self.what,
            self.stderr
        );
        self
    }

    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{}: {}", self.what, self.stderr);
        self
    }

    pub fn json(&self) -> Value {
        self.ok();
        self.stdout_json()
    }

    /// validate-trace-cache's contract: a full report on stdout; exit 0 when every trace
    /// was validated, else exit 1 naming how many were not.
    pub fn reported(&self) -> Value {
        let v = self.stdout_json();
        let errors = v["traces"]
            .as_array()
            .map_or(0, |t| t.iter().filter(|t| !t["error"].is_null()).count());
        if errors == 0 {
            self.ok();
        } else {
            self.failed_with(1).contains(&format!(
                "{errors} of {}",
                v["traces"].as_array().unwrap().len()
            ));
        }
        v
    }

    /// Stdout as JSON, whatever the exit status.
    pub fn stdout_json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}): {}", self.what, self.stdout))
    }
}

/// Sum of every number under `key`, anywhere in `v`.
pub fn count(v: &Value, key: &str) -> u64 {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| {
                if k == key {
                    x.as_u64().unwrap_or(0)
                } else {
                    count(x, key)
                }
            })
            .sum(),
        Value::Array(a) => a.iter().map(|x| count(x, key)).sum(),
        _ => 0,
    }
}

/// Every file below `dir` (recursively).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// No temporary file of an atomic write is left anywhere below `dir`.
pub fn no_temp_files(dir: &Path) {
    for f in walk(dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !(name.starts_with(".kvtrace-") || name.ends_with(".tmp")),
            "stray temporary file {}",
            f.display()
        );
    }
}

/// Every `.json` file below `dir` is a complete trace document.
pub fn complete_traces(dir: &Path) -> usize {
    let files: Vec<PathBuf> = walk(dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|x| x == "json"))
        .collect();
    for f in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: partial trace: {e}", f.display()));
        assert!(v["requests"].is_array(), "{}: not a trace", f.display());
    }
    files.len()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A writable copy of the golden capture in a temp dir.
pub struct Cap {
    pub tmp: tempfile::TempDir,
}

pub const PARENT_B: &str = "9d3e7c1b-2a4f-4e8d-b6c5-0f1a2b3c4d5e.jsonl";
pub const PARENT_C: &str = "e7a1c2b3-4d5e-4f60-8a9b-c0d1e2f3a4b5.jsonl";

impl Cap {
    pub fn new() -> Cap {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&golden().join("capture"), &tmp.path().join("cap"));
        Cap { tmp }
    }
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }
    pub fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
    pub fn db(&self) -> PathBuf {
        self.p("cap/requests.db")
    }
    pub fn jsonl(&self) -> PathBuf {
        self.p("cap/jsonl")
    }
    pub fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).unwrap()
    }
    pub fn sql(&self, sql: &str) {
        self.conn().execute_batch(sql).unwrap();
    }
    pub fn get(&self, column: &str, id: &str) -> String {
        self.conn()
            .query_row(
                &format!("SELECT {column} FROM requests WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }
    pub fn set(&self, column: &str, id: &str, value: &str) {
        let n = self
            .conn()
            .execute(
                &format!("UPDATE requests SET {column} = ?1 WHERE id = ?2"),
                [value, id],
            )
            .unwrap();
        assert_eq!(n, 1, "no row {id}");
    }
    /// Insert `extra` as the first message of a row's body.
    pub fn add_message(&self, id: &str, extra: &str) {
        let body = self.get("body", id);
        assert!(
            body.contains("\"messages\": ["),
            "{id}: unexpected body shape"
        );
        self.set(
            "body",
            id,
            &body.replacen("\"messages\": [", &format!("\"messages\": [{extra}, "), 1),
        );
    }
    /// Append lines to a session file (after a newline, in case the file lacks one).
    pub fn append(&self, file: &str, bytes: &[u8]) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.jsonl().join(file))
            .unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(bytes).unwrap();
    }
}

/// The outputs of every tool that reads a capture, run on `c`.
pub struct DbRuns {
    pub bmt: Run,
    pub bmi: Run,
    pub bci: Run,
    pub streams: Run,
    pub list: Run,
    pub viz: Run,
    pub validate: Run,
}

pub fn db_tools(c: &Cap) -> DbRuns {
    let db = c.db();
    let jsonl = c.jsonl();
    let mut ci = c.p("ci.db");
    if db.exists() {
        std::fs::copy(&db, &ci).unwrap();
    } else {
        ci.clone_from(&db);
    }
    let runs = DbRuns {
        bmt: run(
            "build-minimal-traces",
            &[
                db.as_os_str(),
                "--jsonl-dir".as_ref(),
                jsonl.as_os_str(),
                "--output-dir".as_ref(),
                c.p("out").as_os_str(),
                "--include-subagents".as_ref(),
                "--salt".as_ref(),
                SALT.as_ref(),
                "--json".as_ref(),
            ],
        ),
        bmi: run(
            "build-message-index",
            &[
                db.as_os_str(),
                "--output".as_ref(),
                c.p("idx.json").as_os_str(),
                "--json".as_ref(),
            ],
        ),
        bci: run(
            "build-conversation-index",
            &[
                ci.as_os_str(),
                "--projects-path".as_ref(),
                jsonl.as_os_str(),
                "--json".as_ref(),
            ],
        ),
        streams: run(
            "check-streams",
            &[db.as_os_str(), "--format".as_ref(), "json".as_ref()],
        ),
        list: run("list-conversations", &list_json_args(&db, &jsonl)),
        viz: run(
            "visualize-cache",
            &visualize_all_args(&db, &jsonl, &c.p("viz")),
        ),
        validate: run(
            "validate-trace-cache",
            &[
                golden().join("expected/run02").as_os_str(),
                "--db".as_ref(),
                db.as_os_str(),
                "--jsonl-dir".as_ref(),
                jsonl.as_os_str(),
                "--json".as_ref(),
            ],
        ),
    };
    no_temp_files(c.root());
    complete_traces(&c.p("out"));
    runs
}

impl DbRuns {
    /// Every run but validate's (which has its own exit rule).
    fn others(&self) -> [&Run; 6] {
        [
            &self.bmt,
            &self.bmi,
            &self.bci,
            &self.streams,
            &self.list,
            &self.viz,
        ]
    }
    /// Every tool succeeded (damage was skipped, not fatal).
    pub fn all_ok(&self) -> &Self {
        self.others().iter().for_each(|r| {
            r.ok();
        });
        self.validate.reported();
        self
    }
    pub fn all_unusable(&self, needle: &str) {
        for r in self.others().into_iter().chain([&self.validate]) {
            r.unusable().contains(needle);
        }
    }
    pub fn bmt_skipped(&self, key: &str) -> u64 {
        self.bmt.json()["skipped"][key].as_u64().unwrap()
    }
}

/// The build summary of the undamaged golden capture: one truncated last line.
pub const GOLDEN_UNPARSEABLE: u64 = 1;

pub fn deep(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}
