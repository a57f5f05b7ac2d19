//! merge-traces: renumber shards of a batch into one hash-id space.

use std::path::PathBuf;

use clap::Parser;
use kvtrace::builder::batch;
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::guard::{self, Earlier, Input};
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "merge-traces",
    version,
    about = "Merge the outputs of shards (run with one --salt-file and --id-map) into the ids one global run would give",
    after_help = "EXAMPLE:\n  build-minimal-traces --batch shard1.csv --output-dir out/shard1 --salt-file salt.hex --id-map out/shard1.idmap\n  build-minimal-traces --batch shard2.csv --output-dir out/shard2 --salt-file salt.hex --id-map out/shard2.idmap\n  merge-traces out/shard1 out/shard2 --output-dir traces\n\n\
Give shards in manifest order. A shard's id map is DIR.idmap beside its folder unless\n\
given as DIR=MAPFILE."
)]
struct Args {
    /// Shard output folders in manifest order (DIR or DIR=MAPFILE).
    #[arg(required = true)]
    shards: Vec<String>,
    /// Where the renumbered traces go (paths relative to each shard folder are kept). A
    /// folder holding traces of an earlier run is refused unless --force.
    #[arg(long)]
    output_dir: PathBuf,
    /// Replace the traces of an earlier run in --output-dir (those not rewritten are
    /// removed after a successful merge).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let mut shards: Vec<(PathBuf, PathBuf)> = Vec::new();
    for s in &args.shards {
        let (dir, map) = match s.split_once('=') {
            Some((d, m)) => (PathBuf::from(d), PathBuf::from(m)),
            None => {
                let dir = PathBuf::from(s.trim_end_matches('/'));
                let map = dir.with_extension("idmap");
                (dir, map)
            }
        };
        if !dir.is_dir() {
            return Err(unusable(anyhow::anyhow!(
                "{}: no such directory",
                dir.display()
            )));
        }
        if !map.is_file() {
            return Err(unusable(anyhow::anyhow!(
                "{}: no id map (build the shards with --global-hash-ids --id-map)",
                map.display()
            )));
        }
        let (rd, out) = (guard::resolve(&dir), guard::resolve(&args.output_dir));
        if out.starts_with(&rd) {
            return Err(unusable(anyhow::anyhow!(
                "--output-dir {} is inside the shard {}; choose a folder outside every shard",
                args.output_dir.display(),
                dir.display()
            )));
        }
        guard::output_is_not_an_input("--output-dir", &args.output_dir, &[Input::File(&map)])?;
        if shards.iter().any(|(d, _)| guard::resolve(d) == rd) {
            return Err(unusable(anyhow::anyhow!(
                "shard {} is given twice",
                dir.display()
            )));
        }
        shards.push((dir, map));
    }
    let earlier = guard::earlier_outputs(
        "--output-dir",
        &args.output_dir,
        Earlier::Traces,
        args.force,
    )?;
    let summary = batch::merge_shards(&shards, &args.output_dir).map_err(kvtrace_cli::fail)?;
    let removed = guard::remove_stale(&earlier, &summary.files)?;
    let s = &summary;
    kvtrace_cli::finish(&args.summary, s, removed, || {
        let (traces, shards, blocks) = (s.traces, s.shards, s.unique_blocks);
        format!("{traces} traces from {shards} shards, {blocks} unique blocks")
    })
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
