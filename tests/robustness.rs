//! Hardening, damaged captures: every tool that reads `requests.db` against unusable
//! databases (exit 2, one line) and damaged rows (skipped and counted, exit 0).
//! Captures are copies of the golden capture, damaged with rusqlite (spec §7).

use std::time::Instant;

use serde_json::Value;

mod common;
use common::golden;
use common::harness::*;

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

#[test]
fn the_four_required_columns_are_enough() {
    // A capture keeping only id, timestamp, body and response (another proxy, an export):
    // every tool reads it, the traces do not change, and recover-conversations works
    // without the `headers` column (no session header to group by).
    let c = Cap::new();
    c.sql(
        "CREATE TABLE r2 (id TEXT PRIMARY KEY, timestamp TEXT, body TEXT, response TEXT);
         INSERT INTO r2 SELECT id, timestamp, body, response FROM requests ORDER BY rowid;
         DROP TABLE requests;
         ALTER TABLE r2 RENAME TO requests;",
    );
    let runs = db_tools(&c);
    runs.all_ok();
    assert_eq!(
        common::dir_files(&c.p("out")),
        common::dir_files(&golden().join("expected/run02")),
        "dropping the optional columns changed the traces"
    );
    let (v, files) = recover(&c);
    assert!(v["turns"].as_u64().unwrap() > 0 && files > 0, "{v}");
    assert_eq!((v, files), recover(&Cap::new()));
}

/// recover-conversations' `--json` summary (without its output folder) and how many
/// files it wrote.
fn recover(c: &Cap) -> (serde_json::Value, usize) {
    let out = c.p("rec");
    let r = run(
        "recover-conversations",
        &[
            c.db().as_os_str(),
            "--output-dir".as_ref(),
            out.as_os_str(),
            "--json".as_ref(),
        ],
    );
    let mut v = r.ok().stdout_json();
    v.as_object_mut().unwrap().remove("output_dir");
    (v, common::dir_files(&out).len())
}

#[test]
fn a_table_without_rowids_reads_like_the_proxy_table() {
    // A fork may store `requests` WITHOUT ROWID (rows kept in id order): the parallel
    // rowid-range scans fall back to one scan in table order, with the same results here.
    let plain = Cap::new();
    let c = Cap::new();
    c.sql(
        "CREATE TABLE r2 (id TEXT PRIMARY KEY, timestamp TEXT, method TEXT, endpoint TEXT,
           headers TEXT, body TEXT, user_agent TEXT, content_type TEXT, prompt_grade TEXT,
           response TEXT, model TEXT, original_model TEXT, routed_model TEXT,
           created_at DATETIME DEFAULT CURRENT_TIMESTAMP) WITHOUT ROWID;
         INSERT INTO r2 SELECT * FROM requests ORDER BY rowid;
         DROP TABLE requests;
         ALTER TABLE r2 RENAME TO requests;",
    );
    let runs = db_tools(&c);
    runs.all_ok();
    let plain_runs = db_tools(&plain);
    assert_eq!(
        runs.bmi.json()["message_ids"],
        plain_runs.bmi.json()["message_ids"]
    );
    let index = |c: &Cap| std::fs::read_to_string(c.p("idx.json")).unwrap();
    assert_eq!(index(&c), index(&plain));
    assert_eq!(
        common::dir_files(&c.p("out")),
        common::dir_files(&golden().join("expected/run02")),
        "a table without rowids changed the traces"
    );
    let (without, files) = recover(&c);
    assert!(files > 0);
    assert_eq!((without, files), recover(&plain));
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
