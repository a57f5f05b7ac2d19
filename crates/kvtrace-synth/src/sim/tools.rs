//! Tool calls: which tool an agent picks (parents and sub-agents have different mixes), one
//! generator per tool producing its `tool_use` input, the result text the model sees, the
//! `toolUseResult` Claude Code logs and how long it ran, and the delivery of the results to
//! the session log and the context.

use super::actor::Actor;
use super::Conv;
use crate::ids::{uuid, SynthRng};
use crate::json::{Dialect, J};
use crate::model::{Block, Msg, ToolContent};
use crate::text;
use crate::SynthError;
use rand::Rng;

/// A planned tool call: its tool_use block and what running it produces.
pub(super) struct ToolCall {
    pub(super) block: Block,
    result: String,
    is_error: bool,
    tur: String,
    exec_ms: i64,
}

/// What one tool generator draws: the `tool_use` input, the result text, the
/// `toolUseResult` value and the execution time (ms).
type Outcome = (J, String, J, i64);

impl<'a> Conv<'a> {
    fn pick_tool(&mut self, sub: bool) -> &'static str {
        let table: &[(&str, u32)] = if sub {
            &[("Read", 40), ("Grep", 25), ("Glob", 15), ("Bash", 20)]
        } else {
            &[
                ("Read", 32),
                ("Bash", 24),
                ("Grep", 12),
                ("Glob", 5),
                ("Edit", 15),
                ("Write", 3),
                ("TodoWrite", 7),
                ("WebFetch", 2),
            ]
        };
        let total: u32 = table.iter().map(|t| t.1).sum();
        let mut x = self.rng.gen_range(0..total);
        for (n, w) in table {
            if x < *w {
                return n;
            }
            x -= w;
        }
        "Read"
    }

    /// Plan one tool call of actor `a` (a sub-agent when `sub`).
    pub(super) fn tool_call(&mut self, a: &Actor, sub: bool) -> ToolCall {
        let name = self.pick_tool(sub);
        let id = self.ids.tool_id(&mut self.rng);
        let scale = self.plan.content_scale;
        let rng = &mut self.rng;
        let root = a.root.as_str();
        let err = rng.gen_bool(0.04);
        let (input, result, tur, exec_ms): Outcome = match name {
            "Read" => read(rng, root, scale, err),
            "Bash" => bash(rng, root, scale, err),
            "Grep" => grep(rng, root, scale),
            "Glob" => glob(rng, root),
            "Edit" => edit(rng, root, err),
            "Write" => write(rng, root),
            "TodoWrite" => todo_write(rng),
            _ => web_fetch(rng),
        };
        ToolCall {
            block: Block::ToolUse {
                id,
                name: name.to_string(),
                input,
            },
            result,
            is_error: err,
            tur: tur.to_string_in(Dialect::Js),
            exec_ms,
        }
    }

    /// Write tool results to the log and the context.
    pub(super) fn deliver_results(
        &mut self,
        a: &mut Actor,
        calls: Vec<ToolCall>,
    ) -> Result<(), SynthError> {
        let mut blocks = Vec::with_capacity(calls.len());
        let mut t = a.now;
        for c in calls {
            let Block::ToolUse { id, .. } = &c.block else {
                continue;
            };
            if c.exec_ms > 3000 && self.rng.gen_bool(0.7) {
                let pid = uuid(&mut self.rng);
                let mid = format!(
                    ",\"data\":{{\"type\":\"bash_progress\",\"output\":\"\",\"elapsedTimeSeconds\":{},\"totalLines\":0}},\"toolUseID\":\"bash-progress-0\",\"parentToolUseID\":\"{id}\"",
                    c.exec_ms / 2000
                );
                a.log.entry(&pid, "progress", t + c.exec_ms / 2, &mid, "")?;
            }
            t += c.exec_ms;
            let block = Block::ToolResult {
                id: id.clone(),
                content: ToolContent::Text(c.result),
                is_error: c.is_error,
            };
            let mut mid = String::with_capacity(block.content_len() + 100);
            mid.push_str(",\"message\":{\"role\":\"user\",\"content\":[");
            block.write_api(&mut mid, Dialect::Js);
            mid.push_str("]}");
            let after = format!(",\"toolUseResult\":{}", c.tur);
            let eid = uuid(&mut self.rng);
            a.log.entry(&eid, "user", t, &mid, &after)?;
            blocks.push(block);
            a.tool_uses += 1;
        }
        a.now = t + self.rng.gen_range(20..400);
        a.push(Msg::new(true, blocks));
        Ok(())
    }
}

/// Read a source file (numbered lines), or fail on a missing file.
fn read(rng: &mut SynthRng, root: &str, scale: f64, err: bool) -> Outcome {
    let (p, lang) = text::path(rng, root);
    let bytes = (2f64.powf(rng.gen_range(11.0..16.0)) * scale) as usize;
    if err {
        let r = "<tool_use_error>File does not exist.</tool_use_error>".to_string();
        (
            J::obj([("file_path", J::s(&p))]),
            r.clone(),
            J::s(format!("Error: {r}")),
            rng.gen_range(5..50),
        )
    } else {
        let content = text::code_file(rng, lang, bytes);
        let (numbered, lines) = text::numbered(&content);
        let tur = J::obj([
            ("type", J::s("text")),
            (
                "file",
                J::obj([
                    ("filePath", J::s(&p)),
                    ("content", J::s(content)),
                    ("numLines", J::Int(lines as i64)),
                    ("startLine", J::Int(1)),
                    ("totalLines", J::Int(lines as i64)),
                ]),
            ),
        ]);
        (
            J::obj([("file_path", J::s(&p))]),
            numbered,
            tur,
            rng.gen_range(5..200),
        )
    }
}

/// Run a shell command; a failure exits 1. Some commands run long.
fn bash(rng: &mut SynthRng, root: &str, scale: f64, err: bool) -> Outcome {
    let bytes = (2f64.powf(rng.gen_range(6.5..13.5)) * scale) as usize;
    let (cmd, desc, out) = text::bash(rng, root, bytes);
    let (res, stderr) = if err {
        (
            format!("Exit code 1\n{out}"),
            "error: command failed".to_string(),
        )
    } else {
        (out.clone(), String::new())
    };
    let tur = J::obj([
        ("stdout", J::s(out)),
        ("stderr", J::s(stderr)),
        ("interrupted", J::Bool(false)),
        ("isImage", J::Bool(false)),
    ]);
    let exec = if rng.gen_bool(0.1) {
        rng.gen_range(20_000..150_000)
    } else {
        rng.gen_range(200..15_000)
    };
    (
        J::obj([("command", J::s(cmd)), ("description", J::s(desc))]),
        res,
        tur,
        exec,
    )
}

/// Search the project in content mode.
fn grep(rng: &mut SynthRng, root: &str, scale: f64) -> Outcome {
    let bytes = (2f64.powf(rng.gen_range(8.0..12.5)) * scale) as usize;
    let (lines, n) = text::grep_lines(rng, root, bytes);
    let pat = text::ident(rng);
    let tur = J::obj([
        ("mode", J::s("content")),
        ("numFiles", J::Int(0)),
        ("filenames", J::Arr(vec![])),
        ("content", J::s(lines.clone())),
        ("numLines", J::Int(n as i64)),
    ]);
    (
        J::obj([
            ("pattern", J::s(pat)),
            ("path", J::s(root)),
            ("output_mode", J::s("content")),
            ("-n", J::Bool(true)),
        ]),
        lines,
        tur,
        rng.gen_range(30..600),
    )
}

/// List files matching a pattern.
fn glob(rng: &mut SynthRng, root: &str) -> Outcome {
    let n = rng.gen_range(1..60);
    let files: Vec<String> = (0..n).map(|_| text::path(rng, root).0).collect();
    let tur = J::obj([
        ("filenames", J::Arr(files.iter().map(J::s).collect())),
        ("durationMs", J::Int(rng.gen_range(3..300))),
        ("numFiles", J::Int(n as i64)),
        ("truncated", J::Bool(false)),
    ]);
    (
        J::obj([("pattern", J::s(format!("**/*{}*", text::ident(rng))))]),
        files.join("\n"),
        tur,
        rng.gen_range(10..300),
    )
}

/// Replace a string in a file and show a snippet, or fail to find it.
fn edit(rng: &mut SynthRng, root: &str, err: bool) -> Outcome {
    let (p, lang) = text::path(rng, root);
    let old = {
        let sz = rng.gen_range(40..400);
        text::code_file(rng, lang, sz)
    };
    let new = {
        let sz = rng.gen_range(40..600);
        text::code_file(rng, lang, sz)
    };
    let snippet = text::numbered(&{
        let sz = rng.gen_range(300..1500);
        text::code_file(rng, lang, sz)
    })
    .0;
    let res = if err {
        "<tool_use_error>String to replace not found in file.</tool_use_error>".to_string()
    } else {
        format!("The file {p} has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n{snippet}")
    };
    let tur = J::obj([
        ("filePath", J::s(&p)),
        ("oldString", J::s(&old)),
        ("newString", J::s(&new)),
        ("replaceAll", J::Bool(false)),
    ]);
    let exec = if rng.gen_bool(0.3) {
        rng.gen_range(2_000..60_000)
    } else {
        rng.gen_range(20..300)
    };
    (
        J::obj([
            ("file_path", J::s(&p)),
            ("old_string", J::s(old)),
            ("new_string", J::s(new)),
        ]),
        res,
        tur,
        exec,
    )
}

/// Create a file.
fn write(rng: &mut SynthRng, root: &str) -> Outcome {
    let (p, lang) = text::path(rng, root);
    let content = {
        let sz = rng.gen_range(500..6000);
        text::code_file(rng, lang, sz)
    };
    let tur = J::obj([("type", J::s("create")), ("filePath", J::s(&p))]);
    (
        J::obj([("file_path", J::s(&p)), ("content", J::s(content))]),
        format!("File created successfully at: {p}"),
        tur,
        rng.gen_range(20..3000),
    )
}

/// Replace the todo list.
fn todo_write(rng: &mut SynthRng) -> Outcome {
    let todos: Vec<J> = (0..rng.gen_range(2..8))
        .map(|i| {
            let c = {
                let sz = rng.gen_range(20..80);
                text::prose(rng, sz, 0.01)
            };
            J::obj([
                ("content", J::s(c.trim_end())),
                (
                    "status",
                    J::s(if i == 0 { "in_progress" } else { "pending" }),
                ),
                (
                    "activeForm",
                    J::s(format!("Working on {}", text::ident(rng))),
                ),
            ])
        })
        .collect();
    let tur = J::obj([
        ("oldTodos", J::Arr(vec![])),
        ("newTodos", J::Arr(todos.clone())),
    ]);
    (
        J::obj([("todos", J::Arr(todos))]),
        "Todos have been modified successfully. Ensure that you continue to use the todo list to track your progress.".to_string(),
        tur,
        rng.gen_range(5..50),
    )
}

/// Fetch and summarize a documentation page.
fn web_fetch(rng: &mut SynthRng) -> Outcome {
    let url = format!(
        "https://docs.example.com/{}/{}?lang=en&v=2",
        text::ident(rng),
        text::ident(rng)
    );
    let body = {
        let sz = rng.gen_range(800..5000);
        text::prose(rng, sz, 0.02)
    };
    let tur = J::obj([
        ("bytes", J::Int(body.len() as i64 * 3)),
        ("code", J::Int(200)),
        ("result", J::s(&body)),
        ("url", J::s(&url)),
    ]);
    (
        J::obj([
            ("url", J::s(url)),
            ("prompt", J::s("Summarize the relevant API details")),
        ]),
        body,
        tur,
        rng.gen_range(1_500..12_000),
    )
}
