//! From a stored request to what a trace needs: the CPython-compatible serialization of
//! its sections (spec §4.2, via [`crate::pyjson`]), cl100k_base tokens (§4.3, via
//! [`crate::tokens`]), salted chained block digests and hash ids (§4.4, [`blocks`]), and the
//! response facts of the record ([`stream`]).

pub mod blocks;
pub mod stream;

pub use stream::{
    is_context_reset, serialize_messages, serialize_section, transcoded_messages, tree_section,
    Processed, Section, Skip, Stream, Tokenizer,
};
