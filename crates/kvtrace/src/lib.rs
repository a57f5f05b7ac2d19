//! kvtrace: turn claude-code-proxy captures and Claude Code session logs into compact,
//! anonymized KV-cache block traces, and measure them.
//!
//! The binaries in `kvtrace-cli` are thin wrappers over this library. Module map (SPEC §):
//! - [`capture`]: `requests.db` rows and response envelopes (§2)
//! - [`session`]: JSONL session logs, message ids, sub-agent links (§3)
//! - [`pyjson`]: CPython-compatible JSON serialization (§4.2)
//! - [`tokens`]: cl100k_base tokenization, incremental encoding (§4.3)
//! - [`blocks`]: salt, chained block hashes, hash ids (§4.4)
//! - [`stamp`]: timestamps as Python reads and writes them
//! - [`trace`]: trace documents and their file layout (§4.5–§4.6)
//! - [`build`]: conversations → traces, sub-agents, splits, anonymization (§4)
//! - [`index`]: the message and conversation indexes (§5)

pub mod blocks;
pub mod build;
pub mod capture;
pub mod conversations;
pub mod export;
pub mod index;
pub mod pyjson;
pub mod recover;
pub mod report;
pub mod session;
pub mod session_stats;
pub mod simulate;
pub mod stamp;
pub mod stats;
pub mod streams;
pub mod tokens;
pub mod trace;
pub mod validate;
pub mod visualize;
