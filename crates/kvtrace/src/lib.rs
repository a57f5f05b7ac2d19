//! kvtrace: turn claude-code-proxy captures and Claude Code session logs into compact,
//! anonymized KV-cache block traces, and measure them.
//!
//! The binaries in `kvtrace-cli` are thin wrappers over this library. Every `§` in the
//! code refers to the project's behaviour contract, docs/spec.md; docs/architecture.md
//! draws the modules and the data flow. Module map:
//! - [`capture`]: `requests.db`: all SQL, response envelopes, first attempts (§2, §6)
//! - [`session`]: session logs: discovery, lines, message ids, sub-agent links, which
//!   file owns a shared response (§3)
//! - [`conversation`]: the rows of a session file in order, and its sub-agent tree (§4.1,
//!   §4.7), shared by every tool that follows conversations
//! - [`encode`]: a request's sections → tokens → salted block digests and hash ids, plus
//!   its response facts (§4.2–§4.4)
//! - [`pyjson`]: CPython-compatible JSON reading and serialization (§4.2)
//! - [`tokens`]: cl100k_base tokenization, incremental encoding (§4.3)
//! - [`builder`]: build-minimal-traces: conversations → trace documents, batches, merges,
//!   anonymization (§4)
//! - [`fromlogs`]: `--logs-only`: requests rebuilt from session logs alone, behind a
//!   stand-in prefix (docs/logs-only.md)
//! - [`trace`]: trace documents: reading, the file layout, atomic writes (§4.5–§4.6)
//! - [`simulate`], [`validate`]: the cache simulation and validate-trace-cache (§6)
//! - [`index`]: the message and conversation indexes (§5)
//! - [`conversations`], [`stats`], [`session_stats`], [`streams`], [`visualize`],
//!   [`export`], [`recover`]: the other commands
//! - [`report`]: tables and number formatting shared by the reports
//! - [`stamp`]: timestamps as Python reads and writes them

pub mod builder;
pub mod capture;
pub mod conversation;
pub mod conversations;
pub mod encode;
pub mod error;
pub mod export;
pub mod fromlogs;
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
