//! Synthetic content: prose, source files, command output, prompts and summaries.
//!
//! All text is assembled from small hand-written vocabularies plus random identifiers and
//! numbers, so every conversation's context is unique (distinct KV blocks) while looking like
//! a coding session. Some text deliberately carries the characters that stress escaping and
//! tokenization: non-ASCII (é, 日本語, emoji), ANSI escapes and other control characters, tabs,
//! quotes, backslashes, `<|endoftext|>`-like markers and HTML.

use crate::ids::SynthRng;
use rand::Rng;

const WORDS: &[&str] = &[
    "the",
    "cache",
    "block",
    "request",
    "token",
    "parser",
    "handler",
    "module",
    "index",
    "value",
    "function",
    "returns",
    "because",
    "while",
    "config",
    "layer",
    "router",
    "prefix",
    "session",
    "buffer",
    "stream",
    "error",
    "result",
    "option",
    "test",
    "check",
    "update",
    "file",
    "path",
    "directory",
    "build",
    "output",
    "input",
    "schema",
    "field",
    "struct",
    "trait",
    "async",
    "worker",
    "queue",
    "batch",
    "timeout",
    "retry",
    "limit",
    "memory",
    "thread",
    "lock",
    "hash",
    "map",
    "list",
    "string",
    "bytes",
    "offset",
    "length",
    "format",
    "encode",
    "decode",
    "client",
    "server",
    "response",
    "header",
    "body",
    "status",
    "signal",
    "metric",
    "latency",
    "fixes",
    "so",
    "then",
    "and",
    "but",
    "with",
    "without",
    "into",
    "from",
    "for",
    "on",
    "in",
    "of",
    "a",
    "this",
    "that",
    "it",
    "we",
    "should",
    "could",
    "now",
    "first",
    "next",
    "also",
    "only",
];

const SYLL: &[&str] = &[
    "tok", "en", "cache", "blk", "hash", "load", "store", "route", "parse", "emit", "scan", "read",
    "write", "sync", "pool", "node", "tree", "key", "val", "meta", "conf", "sess", "req", "resp",
    "span", "frame", "chunk", "slot", "page", "evict", "warm", "fetch", "merge",
];

const EXOTIC: &[&str] = &[
    "é",
    "naïve café",
    "日本語のテキスト",
    "🚀",
    "✅",
    "—",
    "„quoted“",
    "Ünïcödé",
    "∑ ≤ ∞",
    "中文注释",
    "\u{1b}[31mFAILED\u{1b}[0m",
    "\u{1b}[32m✓\u{1b}[0m",
    "\t",
    "\"double\"",
    "'single'",
    "C:\\Users\\dev\\proj",
    "\\n literal",
    "<|endoftext|>",
    "<|im_start|>",
    "<div class=\"x\">&amp;</div>",
    "a && b",
    "x < y > z",
    "\u{c}",
    "\u{8}",
    "\r",
    "\u{2028}",
    "\u{7f}",
    "emoji 😀👍",
    "Ω≈ç√",
];

const EXTS: &[(&str, Lang)] = &[
    ("py", Lang::Python),
    ("rs", Lang::Rust),
    ("ts", Lang::Ts),
    ("go", Lang::Go),
    ("md", Lang::Markdown),
    ("toml", Lang::Toml),
];

/// Source language of a generated file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Python
    Python,
    /// Rust
    Rust,
    /// TypeScript
    Ts,
    /// Go
    Go,
    /// Markdown
    Markdown,
    /// TOML
    Toml,
}

fn pick<T: Copy>(rng: &mut SynthRng, v: &[T]) -> T {
    v[rng.gen_range(0..v.len())]
}

/// A random snake_case identifier.
pub fn ident(rng: &mut SynthRng) -> String {
    let n = rng.gen_range(1..=3);
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push('_');
        }
        s.push_str(pick(rng, SYLL));
    }
    if rng.gen_bool(0.3) {
        s.push_str(&rng.gen_range(0..100).to_string());
    }
    s
}

/// A random CamelCase type name.
pub fn type_name(rng: &mut SynthRng) -> String {
    let mut s = String::new();
    for _ in 0..rng.gen_range(1..=3) {
        let w = pick(rng, SYLL);
        let mut c = w.chars();
        if let Some(f) = c.next() {
            s.extend(f.to_uppercase());
            s.push_str(c.as_str());
        }
    }
    s
}

fn spice(rng: &mut SynthRng, out: &mut String, p: f64) {
    if rng.gen_bool(p) {
        out.push_str(pick(rng, EXOTIC));
        out.push(' ');
    }
}

/// Prose of roughly `bytes` bytes.
pub fn prose(rng: &mut SynthRng, bytes: usize, exotic: f64) -> String {
    let mut s = String::with_capacity(bytes + 64);
    while s.len() < bytes {
        let n = rng.gen_range(6..18);
        for i in 0..n {
            if rng.gen_bool(0.08) {
                s.push('`');
                s.push_str(&ident(rng));
                s.push('`');
            } else {
                let w = pick(rng, WORDS);
                if i == 0 {
                    let mut c = w.chars();
                    if let Some(f) = c.next() {
                        s.extend(f.to_uppercase());
                        s.push_str(c.as_str());
                    }
                } else {
                    s.push_str(w);
                }
            }
            s.push(' ');
            spice(rng, &mut s, exotic);
        }
        s.pop();
        s.push_str(if rng.gen_bool(0.1) { ":\n" } else { ". " });
        if rng.gen_bool(0.12) {
            s.push_str("\n\n");
        }
    }
    s
}

/// A plausible project path.
pub fn path(rng: &mut SynthRng, root: &str) -> (String, Lang) {
    let (ext, lang) = pick(rng, EXTS);
    let dirs = [
        "src",
        "src/core",
        "lib",
        "tests",
        "pkg/server",
        "crates/engine/src",
        "docs",
        "scripts",
    ];
    (
        format!("{root}/{}/{}.{ext}", pick(rng, &dirs), ident(rng)),
        lang,
    )
}

fn code_line(rng: &mut SynthRng, lang: Lang, indent: usize, out: &mut String) {
    for _ in 0..indent {
        out.push_str("    ");
    }
    let a = ident(rng);
    let b = ident(rng);
    let n: u32 = rng.gen_range(0..5000);
    let line = match lang {
        Lang::Python => match rng.gen_range(0..8) {
            0 => format!("def {a}({b}, timeout={n}):"),
            1 => format!("return {a}.get(\"{b}\", {n})"),
            2 => format!("if {a} is None or len({b}) > {n}:"),
            3 => format!("raise ValueError(f\"bad {b}: {{{a}!r}}\")"),
            4 => format!("# {} {}", pick(rng, WORDS), pick(rng, EXOTIC)),
            5 => format!("{a} = [x for x in {b} if x.kind != '{}']", pick(rng, SYLL)),
            6 => format!("self.{a} = {b}.split('\\t')"),
            _ => format!("logger.info(\"{a} done in %d ms\", {n})"),
        },
        Lang::Rust => match rng.gen_range(0..8) {
            0 => format!("pub fn {a}(&self, {b}: &[u8]) -> Result<usize, Error> {{"),
            1 => format!("let {a} = {b}.iter().map(|x| x * {n}).collect::<Vec<_>>();"),
            2 => format!("if {a}.len() > {n} && !{b}.is_empty() {{"),
            3 => format!(
                "return Err(Error::new(\"{b} <{}> & more\"));",
                pick(rng, SYLL)
            ),
            4 => format!("// {} {}", pick(rng, WORDS), pick(rng, EXOTIC)),
            5 => format!("impl {} for {} {{", type_name(rng), type_name(rng)),
            6 => format!("self.{a}.insert({b}.clone(), {n});"),
            _ => "}".to_string(),
        },
        Lang::Ts => match rng.gen_range(0..7) {
            0 => format!("export async function {a}({b}: string): Promise<number> {{"),
            1 => format!("const {a} = await fetch(`/api/{b}?limit={n}&x=1`);"),
            2 => format!("if ({a} === undefined || {b}.length > {n}) {{"),
            3 => format!("return <div className=\"{b}\">{{{a}}}</div>;"),
            4 => format!("// {} {}", pick(rng, WORDS), pick(rng, EXOTIC)),
            5 => format!("throw new Error(\"{a}: \\\"{b}\\\" failed\");"),
            _ => "}".to_string(),
        },
        Lang::Go => match rng.gen_range(0..6) {
            0 => format!(
                "func ({a} *{}) {}(ctx context.Context) error {{",
                type_name(rng),
                type_name(rng)
            ),
            1 => format!("if err := {a}.{}({b}); err != nil {{", type_name(rng)),
            2 => format!("return fmt.Errorf(\"{b}: %w\", err)"),
            3 => format!("// {} {}", pick(rng, WORDS), pick(rng, EXOTIC)),
            4 => format!("{a} := make(map[string]int, {n})"),
            _ => "}".to_string(),
        },
        Lang::Markdown => match rng.gen_range(0..5) {
            0 => format!("## {}", type_name(rng)),
            1 => format!("- `{a}`: {}", prose(rng, 60, 0.02).trim_end()),
            2 => format!("| {a} | {b} | {n} |"),
            _ => prose(rng, 120, 0.02).trim_end().to_string(),
        },
        Lang::Toml => match rng.gen_range(0..4) {
            0 => format!("[{a}]"),
            1 => format!("{a} = \"{b}\""),
            2 => format!("{a} = {n}"),
            _ => format!("{a} = [\"{b}\", \"{}\"]", ident(rng)),
        },
    };
    out.push_str(&line);
    out.push('\n');
}

/// A source file of roughly `bytes` bytes.
pub fn code_file(rng: &mut SynthRng, lang: Lang, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 128);
    let mut indent = 0usize;
    while s.len() < bytes {
        code_line(rng, lang, indent, &mut s);
        indent = match rng.gen_range(0..4) {
            0 => indent.saturating_sub(1),
            1 => (indent + 1).min(3),
            _ => indent,
        };
        if rng.gen_bool(0.003) {
            // Form feeds and NULs do occur in real files.
            s.push_str(if rng.gen_bool(0.5) {
                "\u{c}\n"
            } else {
                "\u{0}\n"
            });
        }
    }
    s
}

/// The Read tool's rendering: `cat -n` style, line numbers right-aligned then a tab.
pub fn numbered(content: &str) -> (String, usize) {
    let mut s = String::with_capacity(content.len() + content.len() / 6);
    let mut n = 0;
    for (i, line) in content.lines().enumerate() {
        use std::fmt::Write;
        let _ = writeln!(s, "{:>6}\t{line}", i + 1);
        n = i + 1;
    }
    (s, n)
}

/// A shell command and its output of roughly `bytes` bytes.
pub fn bash(rng: &mut SynthRng, root: &str, bytes: usize) -> (String, String, String) {
    let mut out = String::with_capacity(bytes + 128);
    let (cmd, desc) = match rng.gen_range(0..6) {
        0 => {
            let t = ident(rng);
            let mut passed = 0;
            while out.len() < bytes {
                let ok = rng.gen_bool(0.93);
                passed += ok as u32;
                out.push_str(&format!(
                    "tests/test_{t}.py::test_{} {}\n",
                    ident(rng),
                    if ok {
                        "\u{1b}[32mPASSED\u{1b}[0m"
                    } else {
                        "\u{1b}[31mFAILED\u{1b}[0m"
                    }
                ));
            }
            out.push_str(&format!(
                "\n{passed} passed in {:.2}s\n",
                rng.gen_range(0.1..30.0)
            ));
            (
                format!("python -m pytest -q tests/test_{t}.py"),
                "Run the tests",
            )
        }
        1 => {
            while out.len() < bytes {
                out.push_str(&format!(
                    "   Compiling {} v0.{}.{} ({root}/crates/{})\n",
                    ident(rng),
                    rng.gen_range(0..9),
                    rng.gen_range(0..30),
                    ident(rng)
                ));
                if rng.gen_bool(0.1) {
                    out.push_str(&format!(
                        "warning: unused variable: `{}`\n  --> src/{}.rs:{}:{}\n   |\n   = note: `#[warn(unused_variables)]` on by default\n",
                        ident(rng),
                        ident(rng),
                        rng.gen_range(1..900),
                        rng.gen_range(1..80)
                    ));
                }
            }
            out.push_str("    Finished `dev` profile [unoptimized + debuginfo] target(s)\n");
            (
                "cargo build 2>&1 | tail -80".to_string(),
                "Build the workspace",
            )
        }
        2 => {
            while out.len() < bytes {
                out.push_str(&format!(
                    "commit {:040x}\nAuthor: {} <dev@example.com>\nDate:   Tue Mar {} 10:{:02}:00 2026 +0100\n\n    {}\n\n",
                    rng.gen::<u128>() >> 8,
                    type_name(rng),
                    rng.gen_range(1..28),
                    rng.gen_range(0..60),
                    prose(rng, 50, 0.02).trim_end()
                ));
            }
            ("git log -n 20".to_string(), "Show recent commits")
        }
        3 => {
            while out.len() < bytes {
                out.push_str(&format!(
                    "-rw-r--r--  1 dev  staff  {:>7} Mar {:>2} 10:{:02} {}\n",
                    rng.gen_range(10..900_000),
                    rng.gen_range(1..28),
                    rng.gen_range(0..60),
                    path(rng, ".").0
                ));
            }
            ("ls -la src/".to_string(), "List files")
        }
        4 => {
            // A progress bar redraws with carriage returns and backspaces.
            let mut p = 0;
            while out.len() < bytes && p < 100 {
                out.push_str(&format!(
                    "\rDownloading {}: {p:>3}% [{}>]\u{8}",
                    ident(rng),
                    "=".repeat(p / 5)
                ));
                p += rng.gen_range(1..9);
            }
            while out.len() < bytes {
                out.push_str(&prose(rng, 80, 0.03));
                out.push('\n');
            }
            ("npm install --no-audit".to_string(), "Install dependencies")
        }
        _ => {
            while out.len() < bytes {
                out.push_str(&format!(
                    "{}:{}:{}",
                    path(rng, root).0,
                    rng.gen_range(1..2000),
                    {
                        let mut l = String::new();
                        code_line(rng, Lang::Python, 1, &mut l);
                        l
                    }
                ));
            }
            (
                format!("grep -rn \"{}\" {root} | head -100", ident(rng)),
                "Search the code",
            )
        }
    };
    (cmd, desc.to_string(), out)
}

/// Grep tool output (`path:line:text` lines).
pub fn grep_lines(rng: &mut SynthRng, root: &str, bytes: usize) -> (String, usize) {
    let mut s = String::with_capacity(bytes + 128);
    let mut n = 0;
    while s.len() < bytes {
        let (p, lang) = path(rng, root);
        let mut l = String::new();
        code_line(rng, lang, 0, &mut l);
        s.push_str(&format!("{p}:{}:{l}", rng.gen_range(1..3000)));
        n += 1;
    }
    (s, n)
}

/// A user prompt.
pub fn user_prompt(rng: &mut SynthRng) -> String {
    let verbs = [
        "Fix",
        "Refactor",
        "Add tests for",
        "Explain",
        "Speed up",
        "Document",
        "Debug",
        "Review",
    ];
    let mut s = format!(
        "{} `{}` in {}",
        pick(rng, &verbs),
        ident(rng),
        path(rng, ".").0
    );
    if rng.gen_bool(0.6) {
        s.push_str(". ");
        s.push_str(&{
            let sz = rng.gen_range(40..400);
            prose(rng, sz, 0.03)
        });
    }
    s
}

/// An assistant's reasoning.
pub fn thinking(rng: &mut SynthRng, bytes: usize) -> String {
    prose(rng, bytes, 0.005)
}

/// The final answer of a turn: prose, a list, sometimes a code fence.
pub fn answer(rng: &mut SynthRng, bytes: usize) -> String {
    let mut s = prose(rng, bytes / 2, 0.01);
    s.push_str("\n\n");
    for _ in 0..rng.gen_range(1..6) {
        s.push_str(&format!(
            "- **{}**: {}\n",
            ident(rng),
            prose(rng, 60, 0.01).trim_end()
        ));
    }
    if rng.gen_bool(0.4) {
        s.push_str("\n```python\n");
        s.push_str(&code_file(rng, Lang::Python, bytes / 3));
        s.push_str("```\n");
    }
    s
}
