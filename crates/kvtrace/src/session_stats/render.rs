//! The markdown report of session-stats: a table per file, one row per conversation,
//! then the total. JSON is the report's own serialization.

use super::{Activity, Compaction, Metrics, Report, TokenUsage, UsageByKind};
use crate::report::table::{Cell, Table};
use crate::report::units::{duration_text, thousands};

/// The markdown report: one "Session Stats Summary" table per file, the conversations,
/// then the total.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.sessions {
        out.push_str(&format!(
            "## Session Stats Summary: {} ({})\n\n",
            s.file,
            s.kind.label()
        ));
        out.push_str(&metrics_table(&s.metrics).markdown());
        if !s.compaction_events.is_empty() {
            out.push('\n');
            out.push_str(&compactions_table(&s.compaction_events).markdown());
        }
        out.push('\n');
    }
    out.push_str("## Conversations (a session with its sub-agents)\n\n");
    out.push_str(&conversations_table(report).markdown());
    out.push('\n');
    let t = &report.total;
    out.push_str(&format!(
        "## Session Stats Summary: total ({} files: {} sessions, {} sub-agents, {} warm-up agents, {} compaction agents)\n\n",
        thousands(t.files),
        thousands(t.session_files),
        thousands(t.subagent_files),
        thousands(t.warmup_agent_files),
        thousands(t.compaction_agent_files),
    ));
    out.push_str(&metrics_table(&t.metrics).markdown());
    out.push('\n');
    out.push_str(&usage_by_kind_table(&t.usage_by_kind).markdown());
    out
}

fn int(x: u64) -> Vec<Cell> {
    vec![Cell::Num(x as f64, 0, false)]
}

fn pct(x: Option<f64>) -> Cell {
    x.map_or(Cell::Empty, |v| Cell::Num(v * 100.0, 1, true))
}

fn duration(x: Option<f64>) -> Cell {
    x.map_or(Cell::Empty, |d| Cell::Text(duration_text(d)))
}

/// The rows of one "Session Stats Summary" table.
pub fn metrics_table(m: &Metrics) -> Table {
    let mut t = Table::new(&["Metric", "Value"]);
    if let Some(title) = &m.title {
        t.push("Title", vec![Cell::Text(title.clone())]);
    }
    t.push("Lines", int(m.lines));
    t.push("Events (JSON lines)", int(m.events));
    t.push("Unparseable lines", int(m.unparseable_lines));
    for (k, v) in &m.events_by_type {
        t.push(&format!("Events: {k}"), int(*v));
    }
    let u = &m.user;
    t.push("Typed prompts", int(u.typed_prompts));
    for (label, n) in [
        ("User entries: sub-agent tasks", u.subagent_prompts),
        ("User entries: warm-up prompts", u.warmup_prompts),
        ("User entries: tool results", u.tool_results),
        ("User entries: meta (isMeta)", u.meta),
        ("User entries: slash commands", u.commands),
        (
            "User entries: local command output",
            u.local_command_outputs,
        ),
        ("User entries: interrupts", u.interrupts),
        ("User entries: bash mode", u.bash_mode),
        ("User entries: compaction summaries", u.compact_summaries),
        ("User entries: task notifications", u.task_notifications),
        ("Queued task notifications", u.queued_task_notifications),
        ("User entries: no text", u.no_text),
    ] {
        if n > 0 || label.ends_with("tool results") {
            t.push(label, int(n));
        }
    }
    t.push("Assistant responses", int(m.assistant_responses));
    t.push("Assistant lines", int(m.assistant_lines));
    for (k, v) in &m.responses_by_model {
        t.push(&format!("Responses: {k}"), int(*v));
    }
    if m.responses_by_model.len() > 1 {
        for (k, u) in &m.usage_by_model {
            push_usage(&mut t, &format!("Tokens of {k}"), u);
        }
    }
    if m.api_error_entries > 0 {
        t.push("API error entries", int(m.api_error_entries));
    }
    t.push("Responses with thinking", int(m.responses_with_thinking));
    t.push("Share with thinking", vec![pct(m.thinking_share)]);
    t.push("Responses with tool use", int(m.responses_with_tool_use));
    t.push("Share with tool use", vec![pct(m.tool_use_share)]);
    t.push("Tool calls", int(m.tool_calls));
    for (k, v) in &m.tool_calls_by_name {
        t.push(&format!("Tool calls: {k}"), int(*v));
    }
    t.push("Tool results", int(m.tool_results));
    t.push("Tool errors", int(m.tool_errors));
    t.push(
        "Share of tool results that are errors",
        vec![pct(m.tool_error_share)],
    );
    t.push("Sub-agents spawned", int(m.subagents_spawned));
    for (k, v) in &m.subagents_by_type {
        t.push(&format!("Sub-agents: {k}"), int(*v));
    }
    if m.background_agents > 0 {
        t.push(
            "Sub-agents launched in the background",
            int(m.background_agents),
        );
    }
    if m.inline_subagents > 0 {
        t.push(
            "Sub-agents written inline (isSidechain)",
            int(m.inline_subagents),
        );
        t.push(
            "Responses of inline sub-agents",
            int(m.inline_subagent_responses),
        );
        push_usage(&mut t, "Inline sub-agents", &m.inline_subagent_usage);
    }
    if m.compactions > 0 {
        t.push("Compactions", int(m.compactions));
    }
    push_activity(&mut t, &m.activity);
    t.push("Input tokens", int(m.usage.input));
    t.push("Output tokens", int(m.usage.output));
    t.push("Cache creation tokens", int(m.usage.cache_creation));
    if m.responses_with_cache_creation_split > 0 {
        t.push("Cache creation, 1-hour TTL", int(m.usage.cache_creation_1h));
        t.push(
            "Cache creation, 5-minute TTL",
            int(m.usage.cache_creation_5m),
        );
    }
    t.push("Cache read tokens", int(m.usage.cache_read));
    t.push("Cache read share", vec![pct(m.usage.cache_read_share())]);
    let b = &m.cache_read_over_time.building;
    let r = &m.cache_read_over_time.reuse;
    t.push(
        &format!(
            "Cache read share, cache building ({} responses)",
            b.responses
        ),
        vec![pct(b.cache_read_share)],
    );
    t.push(
        &format!("Cache read share, cache reuse ({} responses)", r.responses),
        vec![pct(r.cache_read_share)],
    );
    if m.stop_reasons.is_empty() && m.assistant_responses > 0 {
        t.push("Stop reasons", vec![Cell::Text("not logged".to_owned())]);
    } else {
        for (k, v) in &m.stop_reasons {
            t.push(&format!("Stop reason: {k}"), int(*v));
        }
        if m.responses_without_stop_reason > 0 {
            t.push(
                "Stop reason not logged",
                int(m.responses_without_stop_reason),
            );
        }
    }
    t
}

fn push_usage(t: &mut Table, what: &str, u: &TokenUsage) {
    t.push(
        &format!("{what}: input / cache write / cache read / output tokens"),
        vec![Cell::Text(format!(
            "{} / {} / {} / {}",
            thousands(u.input),
            thousands(u.cache_creation),
            thousands(u.cache_read),
            thousands(u.output)
        ))],
    );
}

fn push_activity(t: &mut Table, a: &Activity) {
    let text = |s: &Option<String>| vec![s.clone().map_or(Cell::Empty, Cell::Text)];
    t.push("First timestamp", text(&a.first_timestamp));
    t.push("Last timestamp", text(&a.last_timestamp));
    t.push("Wall time", vec![duration(a.wall_s)]);
    t.push(
        &format!(
            "Active time (gaps up to {})",
            duration_text(a.pause_threshold_s)
        ),
        vec![duration(a.active_s)],
    );
    t.push(
        &format!("Pauses longer than {}", duration_text(a.pause_threshold_s)),
        int(a.pauses),
    );
    if a.pauses > 0 {
        t.push("Longest pause", vec![duration(a.longest_pause_s)]);
    }
}

fn compactions_table(events: &[Compaction]) -> Table {
    let mut t = Table::new(&[
        "Compaction at",
        "Trigger",
        "Tokens before",
        "Cache read share before",
        "Cache read share after",
    ]);
    for c in events {
        t.push(
            c.timestamp.as_deref().unwrap_or("–"),
            vec![
                c.trigger.clone().map_or(Cell::Empty, Cell::Text),
                c.pre_tokens
                    .map_or(Cell::Empty, |n| Cell::Num(n as f64, 0, false)),
                pct(c.cache_read_share_before),
                pct(c.cache_read_share_after),
            ],
        );
    }
    t
}

fn conversations_table(report: &Report) -> Table {
    let mut t = Table::new(&[
        "Session",
        "Files",
        "Sub-agents",
        "Warm-ups",
        "Typed prompts",
        "Responses",
        "Prompt tokens",
        "Cache read share",
        "Sub-agents' share of prompt tokens",
        "Output tokens",
        "Tool errors",
        "Compactions",
        "Active time",
        "Wall time",
        "Pauses",
    ]);
    for c in &report.conversations {
        let prompt = c.usage.prompt();
        let sub_share =
            (prompt > 0).then(|| c.usage_by_kind.subagents.prompt() as f64 / prompt as f64);
        t.push(
            &c.session,
            vec![
                Cell::Num(c.files as f64, 0, false),
                Cell::Num(c.subagent_files as f64, 0, false),
                Cell::Num(c.warmup_agent_files as f64, 0, false),
                Cell::Num(c.typed_prompts as f64, 0, false),
                Cell::Num(c.responses as f64, 0, false),
                Cell::Num(prompt as f64, 0, false),
                pct(c.usage.cache_read_share()),
                pct(sub_share),
                Cell::Num(c.usage.output as f64, 0, false),
                Cell::Num(c.tool_errors as f64, 0, false),
                Cell::Num(c.compactions as f64, 0, false),
                duration(c.activity.active_s),
                duration(c.activity.wall_s),
                Cell::Num(c.activity.pauses as f64, 0, false),
            ],
        );
    }
    t
}

fn usage_by_kind_table(u: &UsageByKind) -> Table {
    let mut t = Table::new(&[
        "Tokens spent in",
        "Input",
        "Cache write",
        "Cache read",
        "Output",
        "Share of prompt tokens",
    ]);
    let all = u.main.prompt() + u.subagents.prompt() + u.warmup.prompt() + u.compaction.prompt();
    for (label, x) in [
        ("sessions (main chains)", &u.main),
        ("sub-agents", &u.subagents),
        ("of which in the background", &u.background),
        ("warm-up agents", &u.warmup),
        ("compaction agents", &u.compaction),
    ] {
        let n = |v: u64| Cell::Num(v as f64, 0, false);
        t.push(
            label,
            vec![
                n(x.input),
                n(x.cache_creation),
                n(x.cache_read),
                n(x.output),
                pct((all > 0).then(|| x.prompt() as f64 / all as f64)),
            ],
        );
    }
    t
}
