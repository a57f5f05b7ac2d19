#!/usr/bin/env python3
"""Write a local Hugging Face tokenizer directory from a tiktoken BPE file, offline.

kv-cache-tester's trace_replay_tester.py loads its tokenizer with
transformers.AutoTokenizer.from_pretrained(--tokenizer), which downloads from the
Hugging Face Hub unless it is given a local directory. Where the Hub cannot be
reached, this script turns a `.tiktoken` file already on disk (for example
cl100k_base, the encoding kvtrace counts tokens with, shipped in the assets folder of
the tiktoken-rs crate in the cargo registry) into such a directory:

    python make_tokenizer.py ~/.cargo/registry/src/*/tiktoken-rs-*/assets/cl100k_base.tiktoken /tmp/replay/tok-cl100k
    python trace_replay_tester.py --tokenizer /tmp/replay/tok-cl100k ...

Run it with a Python that has transformers installed (the replayer's venv). It does
not need tiktoken. The default split pattern is cl100k_base's; pass --pattern for
another encoding. On a real serving host, point --tokenizer at the served model's own
directory instead.
"""

import argparse
import base64
import sys


def read_ranks(path):
    """Parse a .tiktoken file: one `<base64 token> <rank>` pair per line."""
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if not ranks:
        sys.exit("error: %s holds no tokens" % path)
    return ranks


CL100K_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
                  r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tiktoken_file")
    p.add_argument("output_dir")
    p.add_argument("--pattern", default=CL100K_PATTERN, help="pre-tokenizer split regex")
    args = p.parse_args()

    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = read_ranks(args.tiktoken_file)

    class LocalConverter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(_path):
            return ranks

    backend = LocalConverter(vocab_file=args.tiktoken_file, pattern=args.pattern,
                             extra_special_tokens=["<|endoftext|>"]).converted()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")
    tok.save_pretrained(args.output_dir)
    sample = "def cache_block(x):\n    return x  # hello"
    print("wrote %s: %d tokens in vocabulary; %r -> %d tokens" % (
        args.output_dir, len(tok), sample, len(tok.encode(sample))))


if __name__ == "__main__":
    main()
