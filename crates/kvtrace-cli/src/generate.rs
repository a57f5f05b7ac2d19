//! `TOOL --generate KIND`: the tool's man page or a shell completion script, written to
//! stdout from the tool's own clap definition (as `rg --generate` does), so they never
//! drift from the flags. `just install-extras` installs them for every tool.

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser};

/// What `--generate` can write.
pub const KINDS: &[&str] = &[
    "man",
    "complete-bash",
    "complete-zsh",
    "complete-fish",
    "complete-powershell",
    "complete-elvish",
];

/// Parse the command line as `A`, after handling `--generate KIND` (which writes and
/// exits).
pub fn parse<A: Parser>() -> A {
    parse_from(std::env::args_os())
}

/// [`parse`] on given arguments (the first is the program name).
pub fn parse_from<A: Parser>(args: impl IntoIterator<Item = OsString>) -> A {
    let args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "--generate") {
        let kind = args.get(2).map(|k| k.to_string_lossy().into_owned());
        std::process::exit(match generate::<A>(kind.as_deref()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        });
    }
    A::parse_from(args)
}

fn generate<A: CommandFactory>(kind: Option<&str>) -> Result<(), String> {
    let mut cmd = A::command();
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    let shell = |s: clap_complete::Shell, cmd: &mut clap::Command, out: &mut Vec<u8>| {
        clap_complete::generate(s, cmd, name.clone(), out)
    };
    match kind {
        Some("man") => clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| e.to_string())?,
        Some("complete-bash") => shell(clap_complete::Shell::Bash, &mut cmd, &mut out),
        Some("complete-zsh") => shell(clap_complete::Shell::Zsh, &mut cmd, &mut out),
        Some("complete-fish") => shell(clap_complete::Shell::Fish, &mut cmd, &mut out),
        Some("complete-powershell") => shell(clap_complete::Shell::PowerShell, &mut cmd, &mut out),
        Some("complete-elvish") => shell(clap_complete::Shell::Elvish, &mut cmd, &mut out),
        other => {
            return Err(format!(
                "--generate takes one of {} (got {})",
                KINDS.join(", "),
                other.map_or("nothing".to_owned(), |k| format!("{k:?}"))
            ))
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}
