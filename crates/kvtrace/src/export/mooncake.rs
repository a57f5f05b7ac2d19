//! Mooncake-style JSONL, as AIPerf's `mooncake_trace` dataset type and similar replayers
//! read it (docs/exports.md).
//!
//! One line per request, keys in this order, compact JSON, integers only:
//! `{"timestamp":0,"input_length":655,"output_length":52,"hash_ids":[1,2]}`; every line,
//! the last included, ends with a newline.

use std::fmt::Write as _;

use super::ExportRecord;

/// The JSONL text of `records`, in their order.
pub fn render(records: &[ExportRecord]) -> String {
    let mut out = String::with_capacity(records.len() * 96);
    for r in records {
        line(&mut out, r);
    }
    out
}

fn line(out: &mut String, r: &ExportRecord) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{{\"timestamp\":{},\"input_length\":{},\"output_length\":{},\"hash_ids\":[",
        r.timestamp_ms, r.input_length, r.output_length
    );
    for (k, id) in r.hash_ids.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push_str("]}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_compact_and_ordered() {
        let records = [
            ExportRecord {
                timestamp_ms: 0,
                input_length: 655,
                output_length: 52,
                hash_ids: vec![1, 2],
            },
            ExportRecord {
                timestamp_ms: 1500,
                input_length: 10,
                output_length: 0,
                hash_ids: vec![],
            },
        ];
        assert_eq!(
            render(&records),
            "{\"timestamp\":0,\"input_length\":655,\"output_length\":52,\"hash_ids\":[1,2]}\n\
             {\"timestamp\":1500,\"input_length\":10,\"output_length\":0,\"hash_ids\":[]}\n"
        );
        assert_eq!(render(&[]), "");
    }
}
