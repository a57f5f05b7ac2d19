//! The shared prefix of every request: tool definitions and system prompts (spec §1, §2).
//!
//! The tool block is 10-15K tokens (≈ 50 KB of JSON) for parents and smaller for sub-agents;
//! its text is generated from a fixed internal seed, so it is identical across runs and seeds,
//! exactly like the tool block shared by every session of one Claude Code version. It is
//! serialized the way the proxy's Go `Tool` struct re-marshals it: `name, description,
//! input_schema{type, properties (sorted map), required}`; fields outside the struct
//! (`cache_control`, `additionalProperties`, `$schema`) are dropped.

use crate::ids::{rng_for, SynthRng};
use crate::json::{write_str, Dialect, J};
use crate::text;
use rand::Rng;
use std::sync::Arc;

/// A serialized tool block and its approximate token count.
#[derive(Clone)]
pub struct ToolSet {
    /// Go-marshalled JSON array.
    pub json: Arc<str>,
    /// ≈ bytes / 4.
    pub tokens: u64,
}

struct ToolDef {
    name: String,
    description: String,
    props: Vec<(String, J)>,
    required: Vec<&'static str>,
}

fn prop_str(desc: &str) -> J {
    J::obj([("type", J::s("string")), ("description", J::s(desc))])
}
fn prop_num(desc: &str) -> J {
    J::obj([("type", J::s("number")), ("description", J::s(desc))])
}
fn prop_bool(desc: &str) -> J {
    J::obj([("type", J::s("boolean")), ("description", J::s(desc))])
}

fn notes(rng: &mut SynthRng, intro: &str, bytes: usize) -> String {
    let mut s = String::from(intro);
    s.push_str("\n\nUsage notes:\n");
    while s.len() < bytes {
        s.push_str("- ");
        s.push_str(
            {
                let sz = rng.gen_range(80..260);
                text::prose(rng, sz, 0.0)
            }
            .trim_end(),
        );
        s.push('\n');
        if rng.gen_bool(0.08) {
            s.push_str("\n<example>\nuser: ");
            s.push_str(text::prose(rng, 60, 0.0).trim_end());
            s.push_str("\nassistant: I'll use the tool <commentary>because the task needs it</commentary>\n</example>\n\n");
        }
    }
    s
}

fn defs(agent_tool: &str, full: bool) -> Vec<ToolDef> {
    // Fixed seed: the tool block is a property of the client version, not of the run.
    let mut rng = rng_for(
        0xC1A0_DE00,
        if agent_tool == "Task" { 1 } else { 2 } + if full { 0 } else { 10 },
    );
    let scale = if full { 1 } else { 2 };
    let mut v = Vec::new();
    let mut add = |rng: &mut SynthRng,
                   name: &str,
                   intro: &str,
                   bytes: usize,
                   props: Vec<(&str, J)>,
                   req: Vec<&'static str>| {
        v.push(ToolDef {
            name: name.to_string(),
            description: notes(rng, intro, bytes / scale),
            props: props.into_iter().map(|(k, j)| (k.to_string(), j)).collect(),
            required: req,
        });
    };
    if full {
        add(
            &mut rng,
            agent_tool,
            "Launch a new agent that works autonomously on a multi-step task with its own context and tools.",
            4200,
            vec![
                ("description", prop_str("A short (3-5 word) description of the task")),
                ("prompt", prop_str("The task for the agent to perform")),
                (
                    "subagent_type",
                    J::obj([
                        ("type", J::s("string")),
                        ("description", J::s("The type of specialized agent to use for this task")),
                        ("enum", J::Arr(vec![J::s("Explore"), J::s("general-purpose"), J::s("Plan")])),
                    ]),
                ),
            ],
            vec!["description", "prompt", "subagent_type"],
        );
    }
    add(
        &mut rng,
        "Bash",
        "Executes a shell command in a persistent session with an optional timeout, taking care of quoting & security.",
        5200,
        vec![
            ("command", prop_str("The command to execute")),
            ("description", prop_str("Clear, concise description of what this command does in 5-10 words")),
            ("timeout", prop_num("Optional timeout in milliseconds (max 600000)")),
            ("run_in_background", prop_bool("Set to true to run this command in the background")),
        ],
        vec!["command"],
    );
    add(
        &mut rng,
        "Glob",
        "Fast file pattern matching that works with any codebase size, e.g. \"**/*.rs\" or \"src/**/*.ts\".",
        1800,
        vec![("pattern", prop_str("The glob pattern to match files against")), ("path", prop_str("The directory to search in"))],
        vec!["pattern"],
    );
    add(
        &mut rng,
        "Grep",
        "A powerful search tool built on ripgrep; supports full regex syntax and output modes.",
        3600,
        vec![
            (
                "pattern",
                prop_str("The regular expression pattern to search for in file contents"),
            ),
            ("path", prop_str("File or directory to search in")),
            (
                "glob",
                prop_str("Glob pattern to filter files (e.g. \"*.js\")"),
            ),
            (
                "output_mode",
                J::obj([
                    ("type", J::s("string")),
                    (
                        "enum",
                        J::Arr(vec![
                            J::s("content"),
                            J::s("files_with_matches"),
                            J::s("count"),
                        ]),
                    ),
                    ("description", J::s("Output mode")),
                ]),
            ),
            ("-n", prop_bool("Show line numbers in output")),
            ("-i", prop_bool("Case insensitive search")),
            (
                "-C",
                prop_num("Number of lines to show before and after each match"),
            ),
            (
                "head_limit",
                prop_num("Limit output to first N lines/entries"),
            ),
        ],
        vec!["pattern"],
    );
    add(
        &mut rng,
        "Read",
        "Reads a file from the local filesystem. Results are returned using cat -n format, with line numbers starting at 1.",
        3000,
        vec![
            ("file_path", prop_str("The absolute path to the file to read")),
            ("offset", prop_num("The line number to start reading from")),
            ("limit", prop_num("The number of lines to read")),
        ],
        vec!["file_path"],
    );
    if full {
        add(
            &mut rng,
            "Edit",
            "Performs exact string replacements in files. You must read the file before editing it.",
            2600,
            vec![
                ("file_path", prop_str("The absolute path to the file to modify")),
                ("old_string", prop_str("The text to replace")),
                ("new_string", prop_str("The text to replace it with (must be different from old_string)")),
                ("replace_all", prop_bool("Replace all occurrences of old_string (default false)")),
            ],
            vec!["file_path", "old_string", "new_string"],
        );
        add(
            &mut rng,
            "MultiEdit",
            "Makes multiple edits to a single file in one operation; edits are applied in sequence.",
            3200,
            vec![
                ("file_path", prop_str("The absolute path to the file to modify")),
                (
                    "edits",
                    J::obj([
                        ("type", J::s("array")),
                        ("minItems", J::Int(1)),
                        ("description", J::s("Array of edit operations to perform sequentially on the file")),
                        (
                            "items",
                            J::obj([
                                ("type", J::s("object")),
                                (
                                    "properties",
                                    J::obj([("old_string", prop_str("The text to replace")), ("new_string", prop_str("The replacement text"))]),
                                ),
                                ("required", J::Arr(vec![J::s("old_string"), J::s("new_string")])),
                                ("additionalProperties", J::Bool(false)),
                            ]),
                        ),
                    ]),
                ),
            ],
            vec!["file_path", "edits"],
        );
        add(
            &mut rng,
            "Write",
            "Writes a file to the local filesystem, overwriting the existing file if there is one.",
            1700,
            vec![
                (
                    "file_path",
                    prop_str("The absolute path to the file to write"),
                ),
                ("content", prop_str("The content to write to the file")),
            ],
            vec!["file_path", "content"],
        );
        add(
            &mut rng,
            "NotebookEdit",
            "Completely replaces the contents of a specific cell in a Jupyter notebook (.ipynb file).",
            1500,
            vec![
                ("notebook_path", prop_str("The absolute path to the Jupyter notebook file to edit")),
                ("cell_id", prop_str("The ID of the cell to edit")),
                ("new_source", prop_str("The new source for the cell")),
                (
                    "edit_mode",
                    J::obj([("type", J::s("string")), ("enum", J::Arr(vec![J::s("replace"), J::s("insert"), J::s("delete")]))]),
                ),
            ],
            vec!["notebook_path", "new_source"],
        );
        add(
            &mut rng,
            "TodoWrite",
            "Create and manage a structured task list for the current session to track progress.",
            7600,
            vec![(
                "todos",
                J::obj([
                    ("type", J::s("array")),
                    ("description", J::s("The updated todo list")),
                    (
                        "items",
                        J::obj([
                            ("type", J::s("object")),
                            (
                                "properties",
                                J::obj([
                                    (
                                        "content",
                                        J::obj([
                                            ("type", J::s("string")),
                                            ("minLength", J::Int(1)),
                                        ]),
                                    ),
                                    (
                                        "status",
                                        J::obj([
                                            ("type", J::s("string")),
                                            (
                                                "enum",
                                                J::Arr(vec![
                                                    J::s("pending"),
                                                    J::s("in_progress"),
                                                    J::s("completed"),
                                                ]),
                                            ),
                                        ]),
                                    ),
                                    (
                                        "activeForm",
                                        J::obj([
                                            ("type", J::s("string")),
                                            ("minLength", J::Int(1)),
                                        ]),
                                    ),
                                ]),
                            ),
                            (
                                "required",
                                J::Arr(vec![J::s("content"), J::s("status"), J::s("activeForm")]),
                            ),
                        ]),
                    ),
                ]),
            )],
            vec!["todos"],
        );
        add(
            &mut rng,
            "ExitPlanMode",
            "Use this tool when you are in plan mode and have finished presenting your plan.",
            1500,
            vec![("plan", prop_str("The plan you came up with, in markdown"))],
            vec!["plan"],
        );
        add(
            &mut rng,
            "BashOutput",
            "Retrieves output from a running or completed background bash shell.",
            900,
            vec![
                ("bash_id", prop_str("The ID of the background shell")),
                (
                    "filter",
                    prop_str("Optional regular expression to filter lines"),
                ),
            ],
            vec!["bash_id"],
        );
        add(
            &mut rng,
            "KillShell",
            "Kills a running background bash shell by its ID.",
            600,
            vec![(
                "shell_id",
                prop_str("The ID of the background shell to kill"),
            )],
            vec!["shell_id"],
        );
        add(
            &mut rng,
            "SlashCommand",
            "Execute a slash command within the main conversation.",
            1600,
            vec![(
                "command",
                prop_str("The slash command to execute with its arguments"),
            )],
            vec!["command"],
        );
    }
    add(
        &mut rng,
        "WebFetch",
        "Fetches content from a URL and processes it using an AI model; HTML is converted to markdown.",
        2400,
        vec![
            ("url", J::obj([("type", J::s("string")), ("format", J::s("uri")), ("description", J::s("The URL to fetch content from"))])),
            ("prompt", prop_str("The prompt to run on the fetched content")),
        ],
        vec!["url", "prompt"],
    );
    add(
        &mut rng,
        "WebSearch",
        "Allows searching the web and using the results to inform responses with up-to-date information.",
        1800,
        vec![
            ("query", J::obj([("type", J::s("string")), ("minLength", J::Int(2)), ("description", J::s("The search query to use"))])),
            ("allowed_domains", J::obj([("type", J::s("array")), ("items", J::obj([("type", J::s("string"))]))])),
            ("blocked_domains", J::obj([("type", J::s("array")), ("items", J::obj([("type", J::s("string"))]))])),
        ],
        vec!["query"],
    );
    v
}

fn serialize(defs: &[ToolDef]) -> ToolSet {
    let mut s = String::with_capacity(64 * 1024);
    s.push('[');
    for (i, t) in defs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"name\":");
        write_str(&mut s, &t.name, Dialect::Go);
        s.push_str(",\"description\":");
        write_str(&mut s, &t.description, Dialect::Go);
        s.push_str(",\"input_schema\":{\"type\":\"object\",\"properties\":");
        J::Obj(t.props.clone()).write(&mut s, Dialect::Go);
        if !t.required.is_empty() {
            s.push_str(",\"required\":");
            J::Arr(t.required.iter().map(|r| J::s(*r)).collect()).write(&mut s, Dialect::Go);
        }
        s.push_str("}}");
    }
    s.push(']');
    let tokens = s.len() as u64 / 4;
    ToolSet {
        json: Arc::from(s),
        tokens,
    }
}

/// The parent's tool block; `agent_tool` is `Agent` (newer clients) or `Task` (older).
pub fn parent_tools(agent_tool: &str) -> ToolSet {
    serialize(&defs(agent_tool, true))
}

/// A sub-agent's smaller tool block (no agent spawning, no editing).
pub fn agent_tools() -> ToolSet {
    serialize(&defs("Agent", false))
}

/// Fixed instruction text of a system prompt.
pub fn instructions(sub_agent: bool) -> String {
    let mut rng = rng_for(0x5157_E000, sub_agent as u64);
    let heads = [
        "# Tone and style",
        "# Proactiveness",
        "# Following conventions",
        "# Code style",
        "# Task management",
        "# Doing tasks",
        "# Tool usage policy",
        "# Security",
    ];
    let mut s = String::from(if sub_agent {
        "You are an agent working for a command-line coding assistant. Given the user's message, use the tools available to complete the task. Do what has been asked; nothing more, nothing less.\n\n"
    } else {
        "You are an interactive command-line tool that helps users with software engineering tasks. Use the instructions below and the tools available to you to assist the user.\n\n"
    });
    let target = if sub_agent { 3_500 } else { 11_000 };
    let mut i = 0;
    while s.len() < target {
        s.push_str(heads[i % heads.len()]);
        s.push('\n');
        s.push_str(&{
            let sz = rng.gen_range(400..1200);
            text::prose(&mut rng, sz, 0.0)
        });
        s.push_str("\n\n");
        i += 1;
    }
    s
}

/// Serialize system blocks like the proxy's `AnthropicSystemMessage{text, type, cache_control}`.
pub fn system_json(blocks: &[(&str, bool)]) -> String {
    let mut s = String::with_capacity(blocks.iter().map(|b| b.0.len() + 64).sum());
    s.push('[');
    for (i, (t, cc)) in blocks.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"text\":");
        write_str(&mut s, t, Dialect::Go);
        s.push_str(",\"type\":\"text\"");
        if *cc {
            s.push_str(",\"cache_control\":{\"type\":\"ephemeral\"}");
        }
        s.push('}');
    }
    s.push(']');
    s
}

/// The first system block of every Claude Code request.
pub const IDENTITY: &str = "You are Claude Code, a command-line coding assistant.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_block_size_and_shape() {
        let t = parent_tools("Agent");
        assert!(
            t.json.len() > 40_000 && t.json.len() < 62_000,
            "{}",
            t.json.len()
        );
        let v: serde_json::Value = serde_json::from_str(&t.json).unwrap();
        assert_eq!(v[0]["name"], "Agent");
        let a = agent_tools();
        assert!(a.json.len() < t.json.len() / 2);
        assert!(!t.json.contains("cache_control"));
    }
}
