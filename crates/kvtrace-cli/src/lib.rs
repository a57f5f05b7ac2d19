//! Shared plumbing of the kvtrace command-line tools: exit codes, one-line errors,
//! progress bars on a TTY, and stdout that tolerates a closed pipe.
//!
//! Every binary is `fn main() { kvtrace_cli::main(run) }` over a `run` that parses its
//! flags, calls one library entry point and prints.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

pub mod args;
pub mod generate;
pub mod guard;
pub use generate::{parse, parse_from};

/// An error with its exit code: 2 for unusable input, 1 for everything else.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 1,
            error: e.into(),
        }
    }
}

/// Mark an error as unusable input (exit 2).
pub fn unusable(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: e.into(),
    }
}

/// Run a command body: print `error: …` on one line and exit with its code on failure.
pub fn main(run: impl FnOnce() -> Result<(), Failure>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if is_broken_pipe(&f.error) {
                return ExitCode::SUCCESS;
            }
            let chain: Vec<String> = f.error.chain().map(|e| e.to_string()).collect();
            eprintln!("error: {}", dedup_chain(&chain).join(": "));
            ExitCode::from(f.code)
        }
    }
}

/// Drop causes already spelled out by the message before them.
fn dedup_chain(chain: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in chain {
        if out.last().is_some_and(|prev| prev.contains(m.as_str())) {
            continue;
        }
        out.push(m.clone());
    }
    out
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Print to stdout; a closed pipe (`… | head`) ends the program quietly.
pub fn out(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// A progress bar on stderr when it is a terminal and not `--quiet`; hidden otherwise.
/// Until the total is known (`len` 0) it is a spinner with the elapsed time, never a
/// "0/0" bar; [`progress_callback`] turns it into a bar at the first known total.
pub fn progress(len: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if len == 0 {
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        let bar = ProgressBar::new(len);
        bar.set_style(bar_style());
        bar
    };
    bar.set_message(what.to_owned());
    bar
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A flag set by the first Ctrl-C (SIGINT/SIGTERM), so a long run stops between files
/// and leaves only complete outputs; a second Ctrl-C exits at once (code 130).
pub fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    flag
}

/// A spinner on stderr for work of unknown length (a TTY only, not with `--quiet`).
pub fn spinner(quiet: bool, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Print a serializable summary as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    out(&serde_json::to_string_pretty(v)?)
}

/// Name each session file a run could not read (it was skipped and counted).
pub fn warn_unreadable(files: &[kvtrace::session::Unreadable]) {
    for f in files {
        eprintln!("warning: cannot read {f}; skipped");
    }
}

/// A library error as a failure with its exit code (the library says which:
/// [`kvtrace::error::Classify`]).
pub fn fail<E>(e: E) -> Failure
where
    E: kvtrace::error::Classify + Into<anyhow::Error>,
{
    Failure {
        code: e.exit_code(),
        error: e.into(),
    }
}

/// A progress callback `(done, total)` driving `bar`.
pub fn progress_callback(bar: &ProgressBar) -> impl Fn(usize, usize) + Sync + '_ {
    move |done: usize, total: usize| {
        if total == 0 {
            return;
        }
        if bar.length() != Some(total as u64) {
            bar.disable_steady_tick();
            bar.set_style(bar_style());
            bar.set_length(total as u64);
        }
        bar.set_position(done as u64);
    }
}

/// Print a run's summary as the flags ask: JSON on stdout, else (unless quiet) text on
/// stderr, after a note of the earlier outputs `--force` removed.
pub fn finish<T: serde::Serialize>(
    flags: &args::SummaryArgs,
    summary: &T,
    removed: usize,
    text: impl Fn() -> String,
) -> Result<(), Failure> {
    if flags.json {
        return print_json(summary);
    }
    if flags.text() {
        if removed > 0 {
            eprintln!("--force: removed {removed} outputs of an earlier run");
        }
        eprintln!("{}", text());
    }
    Ok(())
}
