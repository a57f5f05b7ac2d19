//! Hardening: every tool against every kind of damaged input.
//!
//! Each case checks the three promises of spec §7: unusable input ends with exit 2 and one
//! `error: …` line; damaged rows and lines are skipped with a counter visible in the JSON
//! summary (exit 0); nothing panics and no partial output or `.kvtrace-*.tmp` file is left.
//! Captures are copies of the golden capture, damaged with rusqlite.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{exe, golden, wait_within, SALT};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run a tool with a time limit (a hang is a failure, not a stuck test run).
fn run<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> Run {
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
    fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with("warning:"))
            .collect()
    }

    /// Exit `code` with exactly one `error: …` line.
    fn failed_with(&self, code: i32) -> &Self {
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

    fn unusable(&self) -> &Self {
        self.failed_with(2)
    }

    fn contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "{}: {:?} lacks {needle:?}",
            self.what,
            self.stderr
        );
        self
    }

    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{}: {}", self.what, self.stderr);
        self
    }

    fn json(&self) -> Value {
        self.ok();
        self.stdout_json()
    }

    /// validate-trace-cache's contract: a full report on stdout; exit 0 when every trace
    /// was validated, else exit 1 naming how many were not.
    fn reported(&self) -> Value {
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
    fn stdout_json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}): {}", self.what, self.stdout))
    }
}

/// Sum of every number under `key`, anywhere in `v`.
fn count(v: &Value, key: &str) -> u64 {
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
fn walk(dir: &Path) -> Vec<PathBuf> {
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
fn no_temp_files(dir: &Path) {
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
fn complete_traces(dir: &Path) -> usize {
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

fn copy_dir(from: &Path, to: &Path) {
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
struct Cap {
    tmp: tempfile::TempDir,
}

const PARENT_B: &str = "9d3e7c1b-2a4f-4e8d-b6c5-0f1a2b3c4d5e.jsonl";
const PARENT_C: &str = "e7a1c2b3-4d5e-4f60-8a9b-c0d1e2f3a4b5.jsonl";

impl Cap {
    fn new() -> Cap {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&golden().join("capture"), &tmp.path().join("cap"));
        Cap { tmp }
    }
    fn root(&self) -> &Path {
        self.tmp.path()
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
    fn db(&self) -> PathBuf {
        self.p("cap/requests.db")
    }
    fn jsonl(&self) -> PathBuf {
        self.p("cap/jsonl")
    }
    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).unwrap()
    }
    fn sql(&self, sql: &str) {
        self.conn().execute_batch(sql).unwrap();
    }
    fn get(&self, column: &str, id: &str) -> String {
        self.conn()
            .query_row(
                &format!("SELECT {column} FROM requests WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }
    fn set(&self, column: &str, id: &str, value: &str) {
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
    fn add_message(&self, id: &str, extra: &str) {
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
    fn append(&self, file: &str, bytes: &[u8]) {
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
struct DbRuns {
    bmt: Run,
    bmi: Run,
    bci: Run,
    streams: Run,
    list: Run,
    viz: Run,
    validate: Run,
}

fn db_tools(c: &Cap) -> DbRuns {
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
        list: run(
            "list-conversations",
            &[
                db.as_os_str(),
                "--jsonl-dir".as_ref(),
                jsonl.as_os_str(),
                "--format".as_ref(),
                "json".as_ref(),
            ],
        ),
        viz: run(
            "visualize-cache",
            &[
                db.as_os_str(),
                "--jsonl-dir".as_ref(),
                jsonl.as_os_str(),
                "--conversation-id".as_ref(),
                "all".as_ref(),
                "--output-dir".as_ref(),
                c.p("viz").as_os_str(),
                "--quiet".as_ref(),
            ],
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
    /// Every tool succeeded (damage was skipped, not fatal).
    fn all_ok(&self) -> &Self {
        for r in [
            &self.bmt,
            &self.bmi,
            &self.bci,
            &self.streams,
            &self.list,
            &self.viz,
        ] {
            r.ok();
        }
        self.validate.reported();
        self
    }
    fn all_unusable(&self, needle: &str) {
        for r in [
            &self.bmt,
            &self.bmi,
            &self.bci,
            &self.streams,
            &self.list,
            &self.viz,
            &self.validate,
        ] {
            r.unusable().contains(needle);
        }
    }
    fn bmt_skipped(&self, key: &str) -> u64 {
        self.bmt.json()["skipped"][key].as_u64().unwrap()
    }
}

/// The build summary of the undamaged golden capture: one truncated last line.
const GOLDEN_UNPARSEABLE: u64 = 1;

fn deep(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

// ---------------------------------------------------------------------------------------
// Unusable databases: exit 2 with one line, for every tool that reads a capture
// ---------------------------------------------------------------------------------------

#[test]
fn unusable_databases_for_every_db_tool() {
    /// (name, how the capture is damaged, expected message).
    type Case<'a> = (&'a str, Box<dyn Fn(&Cap)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing",
            Box::new(|c: &Cap| std::fs::remove_file(c.db()).unwrap()),
            "no such file",
        ),
        (
            "not sqlite",
            Box::new(|c: &Cap| std::fs::write(c.db(), "not a database\n".repeat(100)).unwrap()),
            "not an SQLite database",
        ),
        (
            "empty file",
            Box::new(|c: &Cap| std::fs::write(c.db(), "").unwrap()),
            "no `requests` table",
        ),
        (
            "no requests table",
            Box::new(|c: &Cap| c.sql("ALTER TABLE requests RENAME TO requests_old")),
            "no `requests` table",
        ),
        (
            "no response column",
            Box::new(|c: &Cap| {
                c.sql(
                    "CREATE TABLE r2 AS SELECT id, timestamp, body FROM requests;
                     DROP TABLE requests; ALTER TABLE r2 RENAME TO requests;",
                )
            }),
            "lacks column `response`",
        ),
        (
            "no body column",
            Box::new(|c: &Cap| {
                c.sql(
                    "CREATE TABLE r2 AS SELECT id, timestamp, response FROM requests;
                     DROP TABLE requests; ALTER TABLE r2 RENAME TO requests;",
                )
            }),
            "lacks column `body`",
        ),
    ];
    for (what, damage, needle) in cases {
        let c = Cap::new();
        damage(&c);
        eprintln!("case: {what}");
        let runs = db_tools(&c);
        runs.all_unusable(needle);
        assert!(!c.p("out").exists(), "{what}: output dir created");
        assert!(!c.p("idx.json").exists(), "{what}: index written");
        assert!(
            !c.p("viz").exists() || walk(&c.p("viz")).is_empty(),
            "{what}: dashboards"
        );
    }
}

#[test]
fn extra_columns_change_nothing() {
    let c = Cap::new();
    c.sql(
        "ALTER TABLE requests ADD COLUMN extra TEXT;
         UPDATE requests SET extra = 'x', prompt_grade = '{not json';",
    );
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("unparseable_lines"), GOLDEN_UNPARSEABLE);
    assert_eq!(
        common::dir_files(&c.p("out")),
        common::dir_files(&golden().join("expected/run02")),
        "an extra column changed the traces"
    );
}

// ---------------------------------------------------------------------------------------
// Damaged rows: skipped and counted, exit 0
// ---------------------------------------------------------------------------------------

#[test]
fn body_not_json_or_not_an_object() {
    let c = Cap::new();
    c.set("body", "req-0101", "not json {");
    c.set("body", "req-0102", "[1, 2, 3]");
    c.set("body", "req-0105", "");
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_bodies"), 3);
    assert_eq!(complete_traces(&c.p("out")), 3);
}

#[test]
fn response_not_json() {
    let c = Cap::new();
    c.set("response", "req-0101", "<html>502 Bad Gateway</html>");
    c.set(
        "response",
        "req-0102",
        "{\"statusCode\": 200, \"body\": {\"id\": \"msg_",
    );
    let runs = db_tools(&c);
    runs.all_ok();
    let idx = runs.bmi.json();
    assert_eq!(idx["rows_without_message_id"], 2, "{idx}");
    // Their log entries no longer map to a row.
    assert_eq!(runs.bmt_skipped("unmatched_messages"), 2);
}

#[test]
fn envelopes_of_unexpected_shapes() {
    let c = Cap::new();
    let shapes = [
        ("req-0101", "[1, 2, 3]"),
        ("req-0102", "\"just a string\""),
        ("req-0105", "null"),
        ("req-0106", "{\"statusCode\": 200, \"body\": 42}"),
        ("req-0107", "{\"body\": {\"id\": 17, \"usage\": \"many\", \"content\": {}}}"),
        (
            "req-0108",
            "{\"statusCode\": 200, \"body\": \"{\\\"id\\\": \\\"msg_trunc\", \"streamingChunks\": 5}",
        ),
        ("req-0110", "{\"statusCode\": 200, \"streamingChunks\": [1, null, \"data: [\", \"data: {}\"]}"),
    ];
    for (id, r) in shapes {
        c.set("response", id, r);
    }
    c.sql("UPDATE requests SET response = NULL WHERE id = 'req-0111'");
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_bodies"), 0);
    // Every damaged envelope lost its message id; the log's ids for them are unmatched.
    assert_eq!(runs.bmt_skipped("unmatched_messages"), 8);
    // That was every row of one conversation: it gives no trace.
    assert_eq!(complete_traces(&c.p("out")), 2);
}

#[test]
fn fifty_megabyte_body() {
    let c = Cap::new();
    let text = "hello world ".repeat(50_000_000 / 12);
    c.add_message(
        "req-0201",
        &format!("{{\"role\": \"user\", \"content\": \"{text}\"}}"),
    );
    drop(text);
    let t0 = Instant::now();
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_bodies"), 0);
    let summary = runs.bmt.json();
    // 50 MB of "hello world " is ~8.3M tokens: ~130k blocks of 64.
    assert!(
        summary["unique_blocks"].as_u64().unwrap() > 100_000,
        "{summary}"
    );
    eprintln!("50 MB body, all tools: {:?}", t0.elapsed());
}

#[test]
fn deeply_nested_body_response_and_stream_chunk() {
    let c = Cap::new();
    let d = deep(10_000);
    // Body: a 10,000-level message (CPython itself would hit RecursionError).
    c.add_message("req-0101", &d);
    // Response: a 10,000-level content list inside the body.
    let resp = c.get("response", "req-0201");
    c.set(
        "response",
        "req-0201",
        &resp.replacen("\"content\": [", &format!("\"content\": [{d}, "), 1),
    );
    // A streaming chunk nested 10,000 levels.
    let resp = c.get("response", "req-0009");
    assert!(resp.contains("data: {\\\"type\\\": \\\"ping\\\"}"));
    c.set(
        "response",
        "req-0009",
        &resp.replacen(
            "data: {\\\"type\\\": \\\"ping\\\"}",
            &format!("data: {d}"),
            1,
        ),
    );
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_bodies"), 1);
    assert_eq!(runs.bmi.json()["rows_without_message_id"], 1);
    assert_eq!(runs.streams.json()["checked"], 4);
}

#[test]
fn integer_null_real_and_blob_ids_are_read_or_counted() {
    // INTEGER ids (a table whose `id` has INTEGER affinity) are read as their decimal
    // text: the traces are those of the TEXT-id capture, byte for byte.
    let text_ids = Cap::new();
    let int_ids = Cap::new();
    int_ids.sql(
        "CREATE TABLE r2 AS SELECT * FROM requests;
         DROP TABLE requests;
         CREATE TABLE requests (id INTEGER PRIMARY KEY, timestamp TEXT, body TEXT, response TEXT);
         INSERT INTO requests (timestamp, body, response)
             SELECT timestamp, body, response FROM r2 ORDER BY rowid;
         DROP TABLE r2;",
    );
    let (a, b) = (db_tools(&text_ids), db_tools(&int_ids));
    b.bmt.ok();
    assert_eq!(b.bmi.json()["rows"], a.bmi.json()["rows"]);
    assert_eq!(
        common::dir_files(&int_ids.p("out")),
        common::dir_files(&text_ids.p("out"))
    );

    // NULL and non-UTF-8 BLOB ids cannot name a row: counted, never used. (A REAL put in
    // this TEXT-affinity column is stored as its text, `1.5`, and read as such.)
    let c = Cap::new();
    c.sql(
        "INSERT INTO requests (id, timestamp, body, response) VALUES
             (NULL, '2026-03-25T19:00:00Z', '{}', '{\"statusCode\": 200}'),
             (1.5, '2026-03-25T19:00:00Z', '{}', '{\"statusCode\": 200}'),
             (x'ff00ff', '2026-03-25T19:00:00Z', '{}', '{\"statusCode\": 200}');",
    );
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmi.json()["rows_without_id"], 2);
    assert_eq!(complete_traces(&c.p("out")), 3);
    let rec = run(
        "recover-conversations",
        &[
            c.db().as_os_str(),
            "--output-dir".as_ref(),
            c.p("rec").as_os_str(),
            "--json".as_ref(),
        ],
    );
    assert_eq!(rec.json()["rows_without_id"], 2);
}

#[test]
fn a_hot_journal_is_explained_with_its_remedy() {
    // A writer that died mid-transaction: copy the database and its journal while a
    // transaction that spilled pages to the file is open (no process holds its lock).
    let c = Cap::new();
    let hot = c.p("hot");
    std::fs::create_dir_all(&hot).unwrap();
    {
        let conn = c.conn();
        conn.execute_batch(
            "PRAGMA journal_mode=DELETE; PRAGMA cache_size=1; BEGIN;
             UPDATE requests SET body = body || ' ';
             INSERT INTO requests (id, body) VALUES ('x', zeroblob(2000000));",
        )
        .unwrap();
        std::fs::copy(c.db(), hot.join("requests.db")).unwrap();
        let journal = c.p("cap/requests.db-journal");
        assert!(journal.exists(), "no rollback journal was written");
        std::fs::copy(&journal, hot.join("requests.db-journal")).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
    }
    let db = hot.join("requests.db");
    let r = run(
        "build-message-index",
        &[
            db.as_os_str(),
            "--output".as_ref(),
            c.p("i.json").as_os_str(),
        ],
    );
    r.unusable()
        .contains("hot journal")
        .contains("PRAGMA quick_check");
    // The remedy works: one open with write access rolls the transaction back.
    rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA quick_check", [], |row| row.get::<_, String>(0))
        .unwrap();
    assert!(!hot.join("requests.db-journal").exists());
    run(
        "build-message-index",
        &[
            db.as_os_str(),
            "--output".as_ref(),
            c.p("i.json").as_os_str(),
        ],
    )
    .ok();
}

#[test]
fn nan_infinity_and_numbers_beyond_f64() {
    let c = Cap::new();
    let big = "9".repeat(400);
    c.add_message(
        "req-0101",
        &format!(
            "{{\"role\": \"user\", \"content\": [NaN, Infinity, -Infinity, 1e400, -1e400, 1e-400, {big}, -{big}, 1.5E+3, -0, -0.0]}}"
        ),
    );
    // The same literals in a response (outside the fields the tools read).
    let resp = c.get("response", "req-0201");
    c.set(
        "response",
        "req-0201",
        &resp.replacen(
            "{\"statusCode\": 200,",
            &format!("{{\"statusCode\": 200, \"x\": [NaN, 1e400, {big}],"),
            1,
        ),
    );
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_bodies"), 0);
    assert_eq!(complete_traces(&c.p("out")), 3);
    // Envelopes are read with CPython's semantics: these literals cost the row nothing.
    assert_eq!(runs.bmi.json()["rows_without_message_id"], 0);
}

#[test]
fn non_finite_timing_headers_are_counted_and_never_written() {
    let c = Cap::new();
    for (id, name, value) in [
        ("req-0101", "Server-Timing", "upstream;dur=1e400"),
        ("req-0102", "Server-Timing", "dur=NaN"),
        ("req-0201", "X-Envoy-Upstream-Service-Time", "inf"),
    ] {
        // These headers are the row's only timing source (no envelope `ttft`).
        let mut v: Value = serde_json::from_str(&c.get("response", id)).unwrap();
        let env = v.as_object_mut().unwrap();
        env.remove("ttft");
        env.insert("headers".into(), serde_json::json!({ name: [value] }));
        c.set("response", id, &v.to_string());
    }
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_values"), 3);
    for f in walk(&c.p("out")) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            serde_json::from_str::<Value>(&text).is_ok(),
            "{}",
            f.display()
        );
        for bad in ["Infinity", "NaN", "inf"] {
            assert!(!text.contains(bad), "{}: {bad}", f.display());
        }
    }
}

#[test]
fn lone_surrogate_escapes() {
    let c = Cap::new();
    c.add_message(
        "req-0101",
        r#"{"role": "user", "content": "a\ud800b \udfff \udc00\ud800 \ud83d\ude80 \u0000"}"#,
    );
    let resp = c.get("response", "req-0102");
    c.set(
        "response",
        "req-0102",
        &resp.replacen(
            "{\"statusCode\": 200,",
            r#"{"statusCode": 200, "x": "\ud800","#,
            1,
        ),
    );
    c.append(
        PARENT_B,
        br#"{"type":"user","message":{"role":"user","content":"lone \udc00 surrogate"},"timestamp":"2026-03-25T20:00:00.000Z"}"#,
    );
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_bodies"), 0);
    assert_eq!(complete_traces(&c.p("out")), 3);
}

#[test]
fn timestamps_without_zone_mixed_offsets_and_garbage() {
    let c = Cap::new();
    c.set("timestamp", "req-0101", "2026-03-25T19:42:06");
    c.set("timestamp", "req-0102", "2026-03-25T21:42:07+02:00");
    c.set(
        "timestamp",
        "req-0105",
        "2026-03-25T14:12:08.123456789-05:30",
    );
    c.set("timestamp", "req-0106", "yesterday");
    c.append(
        PARENT_B,
        b"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"hi\"},\"timestamp\":\"2026-03-25T20:00:00\"}\n\
          {\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"hi\"},\"timestamp\":\"2026-03-25T23:00:00+05:00\"}\n\
          {\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"hi\"},\"timestamp\":\"not a time\"}\n",
    );
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(runs.bmt_skipped("bad_timestamps"), 1);
    assert_eq!(complete_traces(&c.p("out")), 3);
    // Rows are ordered by the instant they name: time never runs backwards (ordered by
    // text, 21:42:07+02:00 came after 19:42:06 and gave a negative think time).
    for f in walk(&c.p("out")) {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let ts: Vec<f64> = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["t"].as_f64().unwrap())
            .collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "{}: {ts:?}",
            f.display()
        );
        assert!(ts.iter().all(|&t| t >= 0.0), "{}: {ts:?}", f.display());
        for r in v["requests"].as_array().unwrap() {
            if let Some(think) = r.get("think_time").and_then(Value::as_f64) {
                assert!(think >= 0.0, "{}: think_time {think}", f.display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Damaged session logs
// ---------------------------------------------------------------------------------------

#[test]
fn an_unreadable_session_file_is_skipped_counted_and_named_by_every_tool() {
    // A session file whose read fails (EIO), even as root: a symlink to /proc/self/mem.
    let c = Cap::new();
    let name = "aaaaaaaa-0000-4000-8000-000000000000.jsonl";
    let link = c.jsonl().join(name);
    if std::os::unix::fs::symlink("/proc/self/mem", &link).is_err() || std::fs::read(&link).is_ok()
    {
        common::unavailable("an unreadable file (a symlink to /proc/self/mem)");
        return;
    }
    let named = |r: &Run| {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with("warning: cannot read") && l.contains(name)),
            "{}: {}",
            r.what,
            r.stderr
        );
    };
    let listed = |v: &Value, key: &str| {
        let files = v[key].as_array().unwrap_or_else(|| panic!("{key}: {v}"));
        assert_eq!(files.len(), 1, "{v}");
        assert!(files[0]["path"].as_str().unwrap().ends_with(name));
    };
    let runs = db_tools(&c);
    runs.all_ok();
    for r in [&runs.bmt, &runs.bci, &runs.list, &runs.viz, &runs.validate] {
        named(r);
    }
    let bmt = runs.bmt.json();
    assert_eq!(bmt["skipped"]["unreadable_files"], 1);
    listed(&bmt, "unreadable_files");
    listed(&runs.bci.json(), "unreadable_files");
    listed(&runs.validate.reported(), "unreadable_files");
    // list-conversations has no row for it (there was a row with an empty id).
    let list = runs.list.json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !r["id"].as_str().unwrap().is_empty()));

    let ss = run(
        "session-stats",
        &[c.jsonl().as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    named(&ss);
    listed(&ss.json(), "unreadable_files");
    let rec = run(
        "recover-conversations",
        &[
            c.db().as_os_str(),
            "--output-dir".as_ref(),
            c.p("rec").as_os_str(),
            "--exclude-indexed".as_ref(),
            c.jsonl().as_os_str(),
            "--json".as_ref(),
        ],
    );
    named(&rec);
    listed(&rec.json(), "unreadable_files");
}

/// The tools that read session logs, on `c`: (build summary, all runs).
fn log_tools(c: &Cap) -> (Value, Vec<Run>) {
    let runs = db_tools(c);
    runs.all_ok();
    let summary = runs.bmt.json();
    let bci = runs.bci.json();
    // build-conversation-index and session-stats read every *.jsonl (orphans too).
    let built = summary["skipped"]["unparseable_lines"].as_u64().unwrap();
    assert!(count(&bci, "unparseable_lines") >= built, "{bci}");
    let ss = run(
        "session-stats",
        &[c.jsonl().as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    let ssj = ss.json();
    assert!(ssj["total"]["unparseable_lines"].as_u64().unwrap() >= built);
    (summary, vec![ss])
}

#[test]
fn jsonl_invalid_utf8_and_truncated_last_line() {
    let c = Cap::new();
    c.append(
        PARENT_B,
        b"{\"type\":\"user\",\"x\":\"\xff\xfe\"}\n\xc3\x28 debris\n{\"type\":\"assistant\",\"message\":{\"id\":\"msg_tr",
    );
    let (s, _) = log_tools(&c);
    assert_eq!(s["skipped"]["unparseable_lines"], GOLDEN_UNPARSEABLE + 3);
    assert_eq!(s["traces"], 3);
}

#[test]
fn jsonl_deeply_nested_line() {
    let c = Cap::new();
    let line = format!(
        "{{\"type\":\"assistant\",\"message\":{{\"id\":\"msg_deep\",\"content\":{}}}}}\n",
        deep(10_000)
    );
    c.append(PARENT_B, line.as_bytes());
    let (s, _) = log_tools(&c);
    assert_eq!(s["skipped"]["unparseable_lines"], GOLDEN_UNPARSEABLE + 1);
    assert_eq!(s["traces"], 3);
}

#[test]
fn jsonl_hundred_megabyte_line() {
    let c = Cap::new();
    let mut line = Vec::with_capacity(100_000_100);
    line.extend_from_slice(
        b"{\"type\":\"assistant\",\"timestamp\":\"2026-03-25T19:48:46.000Z\",\"message\":{\"id\":\"msg_big\",\"content\":[{\"type\":\"text\",\"text\":\"",
    );
    line.resize(line.len() + 100_000_000, b'a');
    line.extend_from_slice(b"\"}]}}\n");
    c.append(PARENT_C, &line);
    drop(line);
    let t0 = Instant::now();
    let (s, _) = log_tools(&c);
    // The line parses; its id has no row.
    assert_eq!(s["skipped"]["unparseable_lines"], GOLDEN_UNPARSEABLE);
    assert_eq!(s["skipped"]["unmatched_messages"], 1);
    eprintln!("100 MB line, all tools: {:?}", t0.elapsed());
}

#[test]
fn agent_files_and_links() {
    let c = Cap::new();
    // An agent file no parent links to, in both layouts.
    std::fs::write(
        c.jsonl().join("agent-ffff0000ffff0000.jsonl"),
        "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_orphan\"},\"timestamp\":\"2026-03-25T19:42:06.000Z\"}\n",
    )
    .unwrap();
    std::fs::create_dir_all(c.jsonl().join("no-such-parent/subagents")).unwrap();
    std::fs::write(
        c.jsonl()
            .join("no-such-parent/subagents/agent-eeee0000eeee0000.jsonl"),
        "garbage\n",
    )
    .unwrap();
    let link = |agent: &str| {
        format!(
            "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":[{{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_x\"}}]}},\"toolUseResult\":{{\"status\":\"completed\",\"agentId\":\"{agent}\"}},\"timestamp\":\"2026-03-25T21:00:00.000Z\"}}\n"
        )
    };
    // A link to an agent file that does not exist, and a second link to an existing agent.
    c.append(PARENT_C, link("deadbeefdeadbeef").as_bytes());
    c.append(PARENT_B, link("c4d5e6f7a8b90123").as_bytes());
    let (s, _) = log_tools(&c);
    assert_eq!(s["skipped"]["missing_agent_files"], 1);
    assert_eq!(s["skipped"]["duplicate_links"], 1);
    assert_eq!(s["traces"], 3);
    assert_eq!(s["subagents"], 4, "the golden sub-agents, no more");
}

// ---------------------------------------------------------------------------------------
// Trace tools: files that are not traces
// ---------------------------------------------------------------------------------------

fn junk_traces(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("a.json"), "{\"not\": \"a trace\"}").unwrap();
    std::fs::write(dir.join("b.json"), "garbage").unwrap();
    std::fs::write(dir.join("c.json"), b"\xff\xfe{").unwrap();
    std::fs::write(dir.join("d.json"), deep(10_000)).unwrap();
    std::fs::write(
        dir.join("e.json"),
        "{\"id\": \"x\", \"block_size\": 64, \"requests\": [{\"t\": NaN, \"hash_ids\": [1e400]}]}",
    )
    .unwrap();
    std::fs::write(dir.join("f.json"), "").unwrap();
}

#[test]
fn trace_files_that_are_not_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let junk = t.join("junk");
    junk_traces(&junk);
    let mixed = t.join("mixed");
    junk_traces(&mixed);
    copy_dir(&golden().join("expected/run02"), &mixed);
    let cap = golden().join("capture");
    let db = cap.join("requests.db");
    let jsonl = cap.join("jsonl");

    // trace-stats: warns per file, fails only when nothing is left.
    let r = run(
        "trace-stats",
        &[junk.as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    r.unusable().contains("no trace files");
    let r = run(
        "trace-stats",
        &[mixed.as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    r.json();
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("warning: skipped"))
            .count(),
        6
    );

    // export-traces: any unreadable trace is unusable input; nothing is written.
    for dir in [&junk, &mixed] {
        let out = t.join("export.jsonl");
        let r = run(
            "export-traces",
            &[
                dir.as_os_str(),
                "--format".as_ref(),
                "mooncake".as_ref(),
                "--output".as_ref(),
                out.as_os_str(),
            ],
        );
        r.unusable().contains("not a trace");
        assert!(!out.exists());
    }

    // validate-trace-cache: a bad file is reported on its own line, the rest is validated.
    let r = run(
        "validate-trace-cache",
        &[
            mixed.as_os_str(),
            "--db".as_ref(),
            db.as_os_str(),
            "--jsonl-dir".as_ref(),
            jsonl.as_os_str(),
            "--json".as_ref(),
        ],
    );
    // The report covers every trace; the run fails (exit 1) for the one in error.
    let v = r.reported();
    assert_eq!(count(&v, "valid"), 3, "{v}");

    // merge-traces: a shard holding a file that is not a trace is refused as a whole.
    let shard = t.join("shard");
    let map = t.join("shard.idmap");
    run(
        "build-minimal-traces",
        &[
            db.as_os_str(),
            "--jsonl-dir".as_ref(),
            jsonl.as_os_str(),
            "--output-dir".as_ref(),
            shard.as_os_str(),
            "--salt".as_ref(),
            SALT.as_ref(),
            "--global-hash-ids".as_ref(),
            "--id-map".as_ref(),
            map.as_os_str(),
            "--quiet".as_ref(),
        ],
    )
    .ok();
    std::fs::write(shard.join("zz-garbage.json"), "garbage").unwrap();
    let merged = t.join("merged");
    let spec = format!("{}={}", shard.display(), map.display());
    let r = run(
        "merge-traces",
        &[spec.as_str(), "--output-dir", merged.to_str().unwrap()],
    );
    r.unusable().contains("zz-garbage.json");
    assert!(
        walk(&merged).is_empty(),
        "partial merge output: {:?}",
        walk(&merged)
    );
    std::fs::write(&map, "garbage\n").unwrap();
    std::fs::remove_file(shard.join("zz-garbage.json")).unwrap();
    run(
        "merge-traces",
        &[spec.as_str(), "--output-dir", merged.to_str().unwrap()],
    )
    .unusable()
    .contains("expected id");
    assert!(walk(&merged).is_empty());
    no_temp_files(t);
}

#[test]
fn session_stats_unusable_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    run("session-stats", &[missing.as_os_str()]).unusable();
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let r = run("session-stats", &[tmp.path().join("empty").as_os_str()]);
    assert!(matches!(r.code, Some(0 | 2)), "{}", r.stderr);
    if r.code == Some(2) {
        r.unusable();
    }
}

// ---------------------------------------------------------------------------------------
// Outputs that cannot be written
// ---------------------------------------------------------------------------------------

/// Every tool that writes files, aimed at `target` (a directory path or a file path
/// inside it): (tool, arguments).
fn writers(target: &Path) -> Vec<(&'static str, Vec<OsString>)> {
    let cap = golden().join("capture");
    let db = cap.join("requests.db").into_os_string();
    let jsonl = cap.join("jsonl").into_os_string();
    let traces = golden().join("expected/run02").into_os_string();
    let t = |name: &str| target.join(name).into_os_string();
    let s = |x: &str| OsString::from(x);
    vec![
        (
            "build-minimal-traces",
            vec![
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--output-dir"),
                t("out"),
                s("--salt"),
                s(SALT),
                s("--quiet"),
            ],
        ),
        (
            "build-minimal-traces",
            vec![
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--conversation-id"),
                s("9d3e"),
                s("--output"),
                t("one.json"),
                s("--salt"),
                s(SALT),
                s("--quiet"),
            ],
        ),
        (
            "build-message-index",
            vec![db.clone(), s("--output"), t("idx.json")],
        ),
        (
            "export-traces",
            vec![
                traces.clone(),
                s("--format"),
                s("mooncake"),
                s("--output"),
                t("x.jsonl"),
            ],
        ),
        (
            "visualize-cache",
            vec![
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--conversation-id"),
                s("all"),
                s("--output-dir"),
                t("viz"),
                s("--quiet"),
            ],
        ),
        (
            "validate-trace-cache",
            vec![
                traces.clone(),
                s("--db"),
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--csv"),
                t("v.csv"),
            ],
        ),
    ]
}

#[test]
fn output_under_a_regular_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    for (tool, args) in writers(&file) {
        let r = run(tool, &args);
        r.failed_with(1);
    }
    assert_eq!(
        walk(tmp.path()),
        vec![file.clone()],
        "nothing else was created"
    );
    // merge-traces too.
    let tmp2 = tempfile::tempdir().unwrap();
    let shard = tmp2.path().join("shard");
    let map = tmp2.path().join("shard.idmap");
    let cap = golden().join("capture");
    run(
        "build-minimal-traces",
        &[
            cap.join("requests.db").as_os_str(),
            "--jsonl-dir".as_ref(),
            cap.join("jsonl").as_os_str(),
            "--output-dir".as_ref(),
            shard.as_os_str(),
            "--salt".as_ref(),
            SALT.as_ref(),
            "--global-hash-ids".as_ref(),
            "--id-map".as_ref(),
            map.as_os_str(),
            "--quiet".as_ref(),
        ],
    )
    .ok();
    let spec = format!("{}={}", shard.display(), map.display());
    let r = run(
        "merge-traces",
        &[
            spec.as_str(),
            "--output-dir",
            file.join("m").to_str().unwrap(),
        ],
    );
    assert!(matches!(r.code, Some(1 | 2)), "{}", r.stderr);
    assert_eq!(r.error_lines().len(), 1, "{}", r.stderr);
    no_temp_files(tmp.path());
}

fn is_char_device(p: &str) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn device_outputs_are_written_through_not_replaced() {
    // Renaming a temporary file over /dev/null or /dev/full would replace the device node
    // when run as root; devices are written through instead.
    if !is_char_device("/dev/full") || !is_char_device("/dev/null") {
        common::unavailable("/dev/full and /dev/null");
        return;
    }
    let cap = golden().join("capture");
    let db = cap.join("requests.db");
    let traces = golden().join("expected/run02");
    for dev in ["/dev/null", "/dev/full"] {
        let r = run(
            "build-message-index",
            &[db.as_os_str(), "--output".as_ref(), dev.as_ref()],
        );
        let r2 = run(
            "export-traces",
            &[
                traces.as_os_str(),
                "--format".as_ref(),
                "mooncake".as_ref(),
                "--output".as_ref(),
                dev.as_ref(),
            ],
        );
        assert!(is_char_device(dev), "{dev} was replaced");
        for r in [r, r2] {
            if dev == "/dev/full" {
                r.failed_with(1).contains("No space left");
            } else {
                r.ok();
            }
        }
    }
}

/// A 64 KiB tmpfs, unmounted on drop; `None` where mounting is not allowed.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(mnt, dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full() {
    let Some(fs) = Tmpfs::mount("64k") else {
        common::unavailable("a 64 KiB tmpfs (mount -t tmpfs, as root)");
        return;
    };
    let root = fs.0.clone();
    // Leave a few KiB free: enough for the first small file, not for everything.
    let filler = root.join("filler");
    std::fs::write(&filler, vec![0u8; 52 * 1024]).unwrap();
    for (tool, args) in writers(&root) {
        let r = run(tool, &args);
        assert!(
            matches!(r.code, Some(0 | 1)),
            "{}: {:?} {}",
            r.what,
            r.code,
            r.stderr
        );
        if r.code == Some(1) {
            r.failed_with(1);
        }
        no_temp_files(&root);
    }
    // Whatever was written is complete.
    complete_traces(&root.join("out"));
    if let Ok(text) = std::fs::read_to_string(root.join("idx.json")) {
        serde_json::from_str::<Value>(&text).expect("complete index");
    }
    // Nothing fits now: every writer fails cleanly.
    let pad = root.join("pad");
    let used: u64 = walk(&root)
        .iter()
        .map(|f| f.metadata().unwrap().len())
        .sum();
    let free = (64 * 1024u64).saturating_sub(used);
    let _ = std::fs::write(&pad, vec![0u8; free as usize]);
    let _ = std::fs::write(root.join("pad2"), vec![0u8; 4096]);
    let before = walk(&root);
    let r = run(
        "build-message-index",
        &[
            golden().join("capture/requests.db").as_os_str(),
            "--output".as_ref(),
            root.join("idx2.json").as_os_str(),
        ],
    );
    r.failed_with(1);
    assert_eq!(walk(&root), before, "no partial index");
    let r = run(
        "build-minimal-traces",
        &[
            golden().join("capture/requests.db").as_os_str(),
            "--jsonl-dir".as_ref(),
            golden().join("capture/jsonl").as_os_str(),
            "--output-dir".as_ref(),
            root.join("out2").as_os_str(),
            "--salt".as_ref(),
            SALT.as_ref(),
            "--quiet".as_ref(),
        ],
    );
    r.failed_with(1);
    no_temp_files(&root);
    assert_eq!(complete_traces(&root.join("out2")), 0);
}
