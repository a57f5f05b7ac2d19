//! build-message-index and build-conversation-index on the golden capture.

use rusqlite::Connection;

mod common;
use common::*;

#[test]
fn message_index_maps_every_message_id() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("idx.json");
    let db = golden().join("capture/requests.db");
    let json = ok(
        "build-message-index",
        &[
            db.as_os_str(),
            "--output".as_ref(),
            out.as_os_str(),
            "--json".as_ref(),
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // Cross-check against SQLite's own JSON functions.
    let conn = Connection::open(&db).unwrap();
    let rows: Vec<(String, Option<String>)> = conn
        .prepare(
            "SELECT id, CASE WHEN json_type(response, '$.body') = 'text'
                             THEN json_extract(json_extract(response, '$.body'), '$.id')
                             ELSE json_extract(response, '$.body.id') END
             FROM requests WHERE response IS NOT NULL ORDER BY rowid",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut want = std::collections::BTreeMap::new();
    for (rid, mid) in rows {
        if let Some(mid) = mid.filter(|m| m.starts_with("msg_")) {
            want.insert(mid, rid); // later rows win
        }
    }
    assert_eq!(map.len(), want.len());
    for (mid, rid) in &want {
        assert_eq!(map[mid], serde_json::Value::from(rid.as_str()), "{mid}");
    }
    assert_eq!(summary["message_ids"], want.len());
    assert_eq!(summary["rows"], 29);
}

#[test]
fn conversation_index_table_and_requests_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("requests.db");
    std::fs::copy(golden().join("capture/requests.db"), &db).unwrap();
    let checksum = |db: &std::path::Path| -> String {
        let conn = Connection::open(db).unwrap();
        conn.query_row(
            "SELECT group_concat(id || '|' || ifnull(timestamp,'') || '|' || ifnull(length(body),0) || '|' || ifnull(response,''), ';') FROM (SELECT * FROM requests ORDER BY rowid)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = checksum(&db);
    let jsonl = golden().join("capture/jsonl");
    let json = ok(
        "build-conversation-index",
        &[
            db.as_os_str(),
            "--projects-path".as_ref(),
            jsonl.as_os_str(),
            "--json".as_ref(),
        ],
    );
    assert_eq!(checksum(&db), before, "requests must be untouched");
    let s: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(s["files"], 7);
    let conn = Connection::open(&db).unwrap();
    let schema: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'conversation_index'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    for col in [
        "conversation_id TEXT NOT NULL",
        "request_id TEXT NOT NULL",
        "timestamp DATETIME NOT NULL",
        "turn_number INTEGER",
        "message_id TEXT",
        "PRIMARY KEY (conversation_id, request_id)",
    ] {
        assert!(schema.contains(col), "{schema} lacks {col}");
    }
    let indexes: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'conversation_index' AND sql IS NOT NULL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(indexes, 2);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM conversation_index", [], |r| r.get(0))
        .unwrap();
    assert_eq!(s["rows_inserted"], n);
    // Every parent and agent request of the golden traces is indexed under its file.
    let parent: i64 = conn
        .query_row("SELECT count(*) FROM conversation_index WHERE conversation_id = '5f0c9e2a-7b1d-4c3e-9a8f-2d6b1e0c4a97'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(parent, 6);
    let rate = s["match_rate"].as_f64().unwrap();
    let (matched, ids) = (
        s["matched"].as_f64().unwrap(),
        s["message_ids"].as_f64().unwrap(),
    );
    assert!((rate - 100.0 * matched / ids).abs() < 1e-9 && rate > 50.0 && rate <= 100.0);
    // Running twice replaces the table rather than duplicating rows.
    ok(
        "build-conversation-index",
        &[
            db.as_os_str(),
            "--projects-path".as_ref(),
            jsonl.as_os_str(),
            "-q".as_ref(),
        ],
    );
    let again: i64 = conn
        .query_row("SELECT count(*) FROM conversation_index", [], |r| r.get(0))
        .unwrap();
    assert_eq!(again, n);
}
