//! A conversation: the rows of one session file, in order, with its sub-agent tree
//! (spec §4.1, §4.7). Shared by every tool that follows conversations: build-minimal-traces,
//! validate-trace-cache, list-conversations, visualize-cache and recover-conversations'
//! scoring. Which rows a session names (and in what order) is decided here, once.

pub mod gather;
pub mod ordered;
pub mod rows;

use serde::Serialize;

pub use gather::{gather, Context, Gathered, GatheredAgent};
pub use rows::{matched_rows, RowKey};

/// Counters reported in the summary: what was skipped, and (logs only) how requests were
/// rebuilt.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub unparseable_lines: usize,
    pub unreadable_files: usize,
    pub unmatched_messages: usize,
    pub missing_rows: usize,
    pub bad_bodies: usize,
    pub bad_timestamps: usize,
    pub missing_agent_files: usize,
    pub duplicate_links: usize,
    /// Responses and links left out of a session because an earlier file holds them
    /// (the copy a 1.0.x `-c` continuation opens with): traced once, in that file.
    pub claimed_elsewhere: usize,
    /// Non-finite numbers where a timing was expected (`Server-Timing: dur=1e400`): the
    /// record has no `ttft`.
    pub bad_values: usize,
    /// Logs only: requests sent with the tools and system prompt the log's request journal
    /// holds (Claude Code 2.1.x), so without a stand-in prefix. Not a skip: reported at
    /// the top of the build summary.
    #[serde(skip)]
    pub journaled_prefixes: usize,
    /// Logs only: requests whose messages are the journal's copy of what was sent.
    #[serde(skip)]
    pub journaled_messages: usize,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.unparseable_lines += o.unparseable_lines;
        self.unreadable_files += o.unreadable_files;
        self.unmatched_messages += o.unmatched_messages;
        self.missing_rows += o.missing_rows;
        self.bad_bodies += o.bad_bodies;
        self.bad_timestamps += o.bad_timestamps;
        self.missing_agent_files += o.missing_agent_files;
        self.duplicate_links += o.duplicate_links;
        self.claimed_elsewhere += o.claimed_elsewhere;
        self.bad_values += o.bad_values;
        self.journaled_prefixes += o.journaled_prefixes;
        self.journaled_messages += o.journaled_messages;
    }

    /// Damaged input that `--strict` turns into a failure.
    pub fn damaged(&self) -> usize {
        self.unparseable_lines + self.unreadable_files + self.bad_bodies + self.bad_timestamps
    }
}
