#!/usr/bin/env python3
"""Check kvtrace output against NVIDIA AIPerf's own trace loaders (offline).

Run it with the Python of a virtualenv that has ``aiperf`` installed
(written against aiperf 0.13.0; see scripts/aiperf/NOTES.md):

    python check.py weka TRACE_DIR_OR_FILE [MORE...] [--schema-only] [--inner-t relative|absolute]
    python check.py mooncake FILE.jsonl [--block-size N] [--schema-only]

Each ``weka`` argument is loaded exactly as ``aiperf profile --input-file ARG
--custom-dataset-type weka_trace`` would load it: a directory means every
``*.json`` directly inside it (sorted, not recursive), a file means that file.

Phases:
  1. schema  - AIPerf's WekaTraceLoader.load_dataset() (pydantic WekaTrace
               model, extra="forbid", duplicate-id check), or for Mooncake the
               MooncakeTrace model on every line (same as
               ``aiperf validate mooncake-trace``) and the loader's load_dataset().
  2. convert - AIPerf's convert_to_conversations(): builds the conversations
               (root + sub-agent children, SPAWN/SPAWN_JOIN links, synthesized
               prompts) that AIPerf would replay, without any server.  Needs a
               tokenizer: the AIPerf "builtin" tokenizer (tiktoken o200k_base),
               made to work offline by seeding tiktoken's cache from the
               o200k_base.tiktoken file that the tiktoken-rs crate ships (found
               under $CARGO_HOME/registry), or from --tiktoken-file.
  3. report  - counts requests, emitted turns, sub-agent placements (spawn turn,
               join turn) and how many sub-agent requests AIPerf places at a
               different time than the writer meant (see --inner-t).

Exit codes: 0 accepted; 1 rejected by AIPerf (first rejection is printed);
2 usage / environment problem (aiperf missing, no offline tokenizer, ...);
3 accepted but --strict and requests were dropped or misplaced.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import sys
import traceback
from collections import Counter, defaultdict
from pathlib import Path

TESTED_AIPERF_VERSION = "0.13.0"

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# aiperf/dataset/loader/weka_trace.py: _JOIN_EPSILON_SECONDS
JOIN_EPSILON_SECONDS = 1e-6
# tolerance when comparing AIPerf's turn timestamp (ms) with the intended one
TIME_TOLERANCE_MS = 1.0


class Rejected(Exception):
    """AIPerf refused the input."""


class EnvProblem(Exception):
    """The checker itself cannot run (missing aiperf, no offline tokenizer...)."""


# --------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def setup_offline_tokenizer(tiktoken_file: str | None) -> None:
    """Make AIPerf's ``builtin`` tokenizer (tiktoken o200k_base) load offline.

    tiktoken looks for the BPE file under ``$TIKTOKEN_CACHE_DIR/sha1(url)`` before
    downloading it; we put a verified copy there.
    """
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or "/tmp/kvtrace-aiperf-tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = cache_dir
    dst = Path(cache_dir) / hashlib.sha1(O200K_URL.encode()).hexdigest()
    if dst.is_file() and _sha256(dst) == O200K_SHA256:
        return
    candidates: list[str] = []
    if tiktoken_file:
        candidates.append(tiktoken_file)
    if os.environ.get("KVTRACE_O200K_TIKTOKEN"):
        candidates.append(os.environ["KVTRACE_O200K_TIKTOKEN"])
    cargo_home = os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo")
    candidates += sorted(
        glob.glob(
            os.path.join(
                cargo_home, "registry/src/*/tiktoken-rs-*/assets/o200k_base.tiktoken"
            )
        ),
        reverse=True,
    )
    for cand in candidates:
        p = Path(cand)
        if p.is_file() and _sha256(p) == O200K_SHA256:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(p, tmp)
            os.replace(tmp, dst)
            return
    raise EnvProblem(
        "no offline copy of tiktoken's o200k_base.tiktoken (sha256 "
        f"{O200K_SHA256[:12]}...) was found; AIPerf's 'builtin' tokenizer would "
        "download it from the internet. Run `cargo fetch` in the kvtrace repo (the "
        "tiktoken-rs crate ships it), pass --tiktoken-file PATH, or use --schema-only."
    )


def import_aiperf():
    try:
        import aiperf  # noqa: F401
        from importlib.metadata import version
    except ImportError as e:
        raise EnvProblem(
            f"cannot import aiperf ({e}); run this script with the Python of a "
            "virtualenv where `pip install aiperf` was done"
        ) from e
    v = version("aiperf")
    if v != TESTED_AIPERF_VERSION:
        print(
            f"warning: aiperf {v} installed; this checker was written against "
            f"{TESTED_AIPERF_VERSION} (private loader APIs may have moved)",
            file=sys.stderr,
        )
    return v


_RNG_READY = False


def build_run(input_path: str, dataset_type: str, block_size: int | None):
    """BenchmarkRun exactly as `aiperf profile` builds it for these flags."""
    from aiperf.config import BenchmarkRun
    from aiperf.config.flags import CLIConfig
    from aiperf.config.flags.resolver import resolve_config
    from aiperf.config.loader import build_benchmark_plan

    kwargs = dict(
        model_names=["kvtrace-check"],
        urls=["http://127.0.0.1:9"],  # never contacted
        endpoint_type="chat",
        input_file=input_path,
        custom_dataset_type=dataset_type,
        tokenizer_name="builtin",
        artifact_directory="/tmp/kvtrace-aiperf-check-artifacts",
    )
    if block_size is not None:
        kwargs["prompt_input_tokens_block_size"] = block_size  # --isl-block-size
    try:
        cfg = resolve_config(CLIConfig(**kwargs), None)
        plan = build_benchmark_plan(cfg)
    except Exception as e:  # config-level refusal, e.g. --isl-block-size with weka
        raise Rejected(f"aiperf refused the configuration: {e}") from e
    bc = plan.configs[0]
    return BenchmarkRun(
        benchmark_id="kvtrace-check", cfg=bc, trial=0, artifact_dir=bc.artifacts.dir
    )


def make_loader(run, dataset_type: str, with_tokenizer: bool):
    """Loader instance the way CustomDatasetComposer creates it."""
    global _RNG_READY
    from aiperf.common import random_generator as rng
    from aiperf.plugin import plugins
    from aiperf.plugin.enums import CustomDatasetType, PluginType

    if not _RNG_READY:
        rng.init(0)
        _RNG_READY = True
    if not with_tokenizer:
        cls = plugins.get_class(
            PluginType.CUSTOM_DATASET_LOADER, CustomDatasetType(dataset_type)
        )
        meta = plugins.get_dataset_loader_metadata(CustomDatasetType(dataset_type))
        kw = {}
        if dataset_type == "mooncake_trace":
            kw["prompt_generator"] = None
        kw["default_block_size"] = meta.default_block_size
        return None, cls(filename=str(run.cfg.get_default_dataset().path), run=run, **kw)

    from aiperf.common.tokenizer import Tokenizer
    from aiperf.dataset.composer.custom import CustomDatasetComposer

    tok = Tokenizer.from_pretrained("builtin")
    comp = CustomDatasetComposer(run=run, tokenizer=tok)
    comp._create_loader_instance(CustomDatasetType(dataset_type))
    return comp, comp.loader


def finalize(comp, conversations):
    """Same post-processing as CustomDatasetComposer.create_dataset()."""
    for conv in conversations:
        for turn in conv.turns:
            comp._finalize_turn(turn)
    comp._finalize_conversations(conversations)


def first_line(e: BaseException, limit: int = 600) -> str:
    msg = f"{type(e).__name__}: {e}"
    return msg if len(msg) <= limit else msg[:limit] + " ...[truncated]"


# --------------------------------------------------------------------------
# weka
# --------------------------------------------------------------------------


def aiperf_inner_t(entry_t: float, inner_t: float) -> tuple[float, str]:
    """Mirror of weka_trace._subagent_request_absolute_t (used only for the
    explanation column; the numbers in the report come from AIPerf's turns)."""
    if inner_t + JOIN_EPSILON_SECONDS < entry_t:
        return entry_t + inner_t, "relative"
    return inner_t, "absolute"


def enumerate_like_aiperf(arg: Path) -> list[Path]:
    # WekaTraceLoader._enumerate_files
    if arg.is_dir():
        return sorted(arg.glob("*.json"))
    return [arg]


def analyze_weka_trace(trace, convs, inner_t_mode: str, verbose: bool) -> dict:
    from aiperf.dataset.loader.weka_trace_models import WekaSubagentEntry

    by_id = {c.session_id: c for c in convs}
    root = by_id.get(trace.id)
    stats = Counter()
    problems: list[str] = []

    parent_reqs = 0
    subagents: list[tuple[int, object]] = []
    for idx, r in enumerate(trace.requests):
        if isinstance(r, WekaSubagentEntry):
            subagents.append((idx, r))
            stats["inner_requests"] += len(r.requests)
        else:
            parent_reqs += 1
    stats["parent_requests"] = parent_reqs
    stats["subagents"] = len(subagents)
    stats["trace_requests"] = parent_reqs + stats["inner_requests"]

    kinds = Counter()
    turns_by_src: dict[tuple[int, int | None], list[tuple[str, int, object]]] = (
        defaultdict(list)
    )
    for c in convs:
        for ti, t in enumerate(c.turns):
            kinds[t.source_kind] += 1
            inner = t.source_inner_idx if t.source_kind == "weka_subagent" else None
            turns_by_src[(t.source_outer_idx, inner)].append((c.session_id, ti, t))
    stats["conversations"] = len(convs)
    stats["child_conversations"] = sum(1 for c in convs if not c.is_root)
    stats["turns_emitted"] = sum(kinds.values())
    stats["turns_main"] = kinds.get("weka_main", 0)
    stats["turns_subagent"] = kinds.get("weka_subagent", 0)
    stats["turns_flat_split"] = kinds.get("weka_flat", 0)
    stats["flat_chain_conversations"] = sum(
        1 for c in convs if c.turns and c.turns[0].source_kind == "weka_flat"
    )
    dropped = stats["trace_requests"] - stats["turns_emitted"]
    stats["requests_not_emitted"] = dropped
    if dropped:
        problems.append(f"{dropped} request(s) of the trace are not replayed")

    # branch -> spawn turn / join turn on the root conversation
    spawn_turn: dict[str, int] = {}
    join_turn: dict[str, int] = {}
    branch_of_child: dict[str, object] = {}
    if root is not None:
        for b in root.branches:
            for cid in b.child_conversation_ids:
                branch_of_child[cid] = b
        for ti, t in enumerate(root.turns):
            for bid in t.branch_ids:
                spawn_turn[bid] = ti
            for p in t.prerequisites:
                if getattr(p, "branch_id", None):
                    join_turn[p.branch_id] = ti

    # root turn -> trace request index (source_outer_idx)
    root_outer = [t.source_outer_idx for t in root.turns] if root is not None else []
    parents = [
        (idx, r)
        for idx, r in enumerate(trace.requests)
        if not isinstance(r, WekaSubagentEntry)
    ]

    # writer-side diagnostics that drive AIPerf's chain detection
    # (weka_agent_chains._find_extension_target): a request continues the
    # previous one only if prev.t + prev.api_time <= t (+1e-6), same model, and
    # prev.hash_ids is a prefix of hash_ids.
    def seq_diag(reqs, offset=0.0):
        overlap = breaks = models = 0
        for a, b in zip(reqs, reqs[1:]):
            ta, tb = a.t + offset, b.t + offset
            if ta + max(a.api_time or 0.0, 0.0) > tb + JOIN_EPSILON_SECONDS:
                overlap += 1
            if a.hash_ids and b.hash_ids[: len(a.hash_ids)] != a.hash_ids:
                breaks += 1
            if a.model != b.model:
                models += 1
        return overlap, breaks, models

    o, b_, m_ = seq_diag([r for _, r in parents])
    stats["parent_overlaps"] += o
    stats["parent_prefix_breaks"] += b_
    for _, e in subagents:
        o, b_, m_ = seq_diag(e.requests, e.t if inner_t_mode == "relative" else 0.0)
        stats["inner_overlaps"] += o
        stats["inner_prefix_breaks"] += b_

    details = []
    for sa_no, (outer_idx, e) in enumerate(subagents):
        # intended placement: spawn after the last parent request listed before
        # the entry; join at the first later parent request starting at/after
        # the sub-agent's end (same rule AIPerf applies, on intended times)
        want_spawn = max((i for i, _ in parents if i < outer_idx), default=None)
        if e.duration_ms is not None:
            sa_end = e.t + max(e.duration_ms, 0) / 1000.0
        elif e.requests:
            off = e.t if inner_t_mode == "relative" else 0.0
            sa_end = max(r.t + off + max(r.api_time or 0.0, 0.0) for r in e.requests)
        else:
            sa_end = e.t
        want_join = next(
            (
                i
                for i, r in parents
                if i > outer_idx and r.t + JOIN_EPSILON_SECONDS >= sa_end
            ),
            None,
        )
        child_ids = sorted(
            {
                sid
                for (oi, inner), lst in turns_by_src.items()
                if oi == outer_idx and inner is not None
                for sid, _, _ in lst
            }
        )
        placed = 0
        misplaced = 0
        read_rel = read_abs = 0
        reorder = 0
        rows = []
        for ii, req in enumerate(e.requests):
            emitted = turns_by_src.get((outer_idx, ii), [])
            intended_s = e.t + req.t if inner_t_mode == "relative" else req.t
            _, how = aiperf_inner_t(e.t, req.t)
            if how == "relative":
                read_rel += 1
            else:
                read_abs += 1
            if not emitted:
                rows.append((ii, req.t, None, intended_s, how, "NOT EMITTED"))
                continue
            placed += 1
            sid, ti, turn = emitted[0]
            got_s = None if turn.timestamp is None else turn.timestamp / 1000.0
            bad = got_s is not None and abs(got_s - intended_s) * 1000.0 > TIME_TOLERANCE_MS
            if bad:
                misplaced += 1
            rows.append((ii, req.t, got_s, intended_s, how, "MISPLACED" if bad else "ok"))
        for cid in child_ids:
            idxs = [t.source_inner_idx for t in by_id[cid].turns]
            reorder += sum(1 for a, b in zip(idxs, idxs[1:]) if b < a)
        stats["inner_emitted"] += placed
        stats["inner_misplaced"] += misplaced
        stats["inner_read_relative"] += read_rel
        stats["inner_read_absolute"] += read_abs
        stats["inner_out_of_order"] += reorder
        if len(child_ids) > 1:
            stats["subagents_split"] += 1
        if not child_ids:
            stats["subagents_dropped"] += 1
        branch = branch_of_child.get(child_ids[0]) if child_ids else None
        sp = spawn_turn.get(branch.branch_id) if branch is not None else None
        jn = join_turn.get(branch.branch_id) if branch is not None else None
        if branch is not None and branch.is_background:
            stats["subagents_background"] += 1
        got_spawn = root_outer[sp] if sp is not None else None
        got_join = root_outer[jn] if jn is not None else None
        moved = child_ids and (got_spawn != want_spawn or got_join != want_join)
        if moved:
            stats["subagents_moved"] += 1
        details.append(
            dict(
                outer_idx=outer_idx,
                agent_id=e.agent_id,
                entry_t=e.t,
                children=child_ids,
                spawn_root_turn=sp,
                join_root_turn=jn,
                spawn_after_request=got_spawn,
                join_at_request=got_join,
                intended_spawn_after_request=want_spawn,
                intended_join_at_request=want_join,
                moved=bool(moved),
                background=bool(branch is not None and branch.is_background),
                inner=len(e.requests),
                emitted=placed,
                misplaced=misplaced,
                read_relative=read_rel,
                read_absolute=read_abs,
                out_of_order=reorder,
                rows=rows if verbose else None,
            )
        )
    if stats["inner_misplaced"]:
        problems.append(
            f"{stats['inner_misplaced']} of {stats['inner_requests']} sub-agent "
            f"request(s) placed at a different time than intended "
            f"(--inner-t {inner_t_mode})"
        )
    if stats["subagents_moved"]:
        problems.append(
            f"{stats['subagents_moved']} sub-agent(s) spawned/joined at a different "
            "parent request than the trace order says"
        )
    if stats["turns_flat_split"]:
        problems.append(
            f"{stats['turns_flat_split']} parent request(s) were split off the root "
            "conversation into separate agent chains by AIPerf's hash-id/timing "
            "chain detection"
        )
    if stats["parent_overlaps"] or stats["inner_overlaps"]:
        problems.append(
            f"{stats['parent_overlaps']} parent / {stats['inner_overlaps']} sub-agent "
            "request(s) start before the previous one ends (t + api_time); AIPerf's "
            "chain detection (on by default) treats such a pair as two concurrent agents"
        )
    if stats["inner_out_of_order"]:
        problems.append(
            f"{stats['inner_out_of_order']} sub-agent turn(s) replayed out of "
            "recorded order"
        )
    return dict(stats=dict(stats), subagents=details, problems=problems)


def print_weka_report(path: Path, trace_id: str, rep: dict, verbose: bool) -> None:
    s = rep["stats"]
    print(
        f"  {path.name}: id={trace_id} requests={s.get('trace_requests', 0)} "
        f"(parent {s.get('parent_requests', 0)}, sub-agent {s.get('inner_requests', 0)} "
        f"in {s.get('subagents', 0)} sub-agent(s)) -> turns={s.get('turns_emitted', 0)} "
        f"in {s.get('conversations', 0)} conversation(s) "
        f"[main {s.get('turns_main', 0)}, sub-agent {s.get('turns_subagent', 0)}, "
        f"flat-split {s.get('turns_flat_split', 0)}]"
    )
    for d in rep["subagents"]:
        if not d["children"]:
            print(
                f"    sub-agent {d['agent_id']} @t={d['entry_t']}: DROPPED by AIPerf "
                f"(no parent request listed before it); {d['inner']} request(s) lost"
            )
            continue
        where = (
            "background (no join)"
            if d["background"]
            else f"join before root turn {d['join_root_turn']}"
        )
        where += (
            f" [trace request #{d['spawn_after_request']} -> #{d['join_at_request']}, "
            f"intended #{d['intended_spawn_after_request']} -> "
            f"#{d['intended_join_at_request']}{' MOVED' if d['moved'] else ''}]"
        )
        print(
            f"    sub-agent {d['agent_id']} @t={d['entry_t']}: spawn after root turn "
            f"{d['spawn_root_turn']}, {where}; {len(d['children'])} child conv(s); "
            f"{d['emitted']}/{d['inner']} emitted; inner t read as relative "
            f"{d['read_relative']} / absolute {d['read_absolute']}; "
            f"misplaced {d['misplaced']}; out-of-order {d['out_of_order']}"
        )
        if verbose and d["rows"]:
            for ii, t, got, want, how, verdict in d["rows"]:
                got_s = "-" if got is None else f"{got:.3f}"
                print(
                    f"      inner[{ii}] t={t} read {how} -> aiperf t={got_s}s, "
                    f"intended {want:.3f}s  {verdict}"
                )
    for p in rep["problems"]:
        print(f"    WARNING: {p}")


def check_weka(args) -> int:
    import_aiperf()
    if not args.schema_only:
        setup_offline_tokenizer(args.tiktoken_file)

    totals = Counter()
    all_reports = []
    for arg in args.paths:
        p = Path(arg)
        if not p.exists():
            raise Rejected(f"{arg}: no such file or directory")
        files = enumerate_like_aiperf(p)
        if not files:
            raise Rejected(f"{arg}: directory holds no *.json file (AIPerf reads only *.json)")
        if p.is_dir():
            ignored = [x.name for x in p.iterdir() if x.is_file() and x.suffix != ".json"]
            if ignored:
                print(f"note: {arg}: AIPerf ignores non-*.json files: {ignored[:5]}")
        print(f"{arg}: {len(files)} trace file(s)")

        run = build_run(str(p), "weka_trace", None)
        comp, loader = make_loader(run, "weka_trace", not args.schema_only)

        # phase 1: AIPerf's own parse (pydantic WekaTrace, duplicate ids)
        try:
            data = loader.load_dataset()
        except Exception as e:
            raise Rejected(f"schema: {e}") from e
        path_of = {}
        for f in files:  # same order as load_dataset; only used for messages
            try:
                path_of[json.loads(f.read_bytes())["id"]] = f
            except Exception:
                pass
        totals["files"] += len(files)
        if args.schema_only:
            print(f"  schema OK: {len(data)} trace(s)")
            continue

        # phase 2: conversations AIPerf would replay, one trace at a time so a
        # failure names its file (reconstruction is per trace in AIPerf too)
        for trace_id, wekas in data.items():
            f = path_of.get(trace_id, p)
            try:
                convs = loader.convert_to_conversations({trace_id: wekas})
                finalize(comp, convs)
            except Exception as e:
                if args.debug:
                    traceback.print_exc()
                raise Rejected(f"convert: {f}: {first_line(e)}") from e
            rep = analyze_weka_trace(wekas[0], convs, args.inner_t, args.verbose)
            print_weka_report(f, trace_id, rep, args.verbose)
            rep["file"] = str(f)
            rep["id"] = trace_id
            all_reports.append(rep)
            for k, v in rep["stats"].items():
                totals[k] += v

    print(
        "TOTAL: files={files} requests={req} -> turns={turns} conversations={convs}; "
        "parent requests split off root={flat}; "
        "sub-agents={sa} (split {split}, background {bg}, dropped {drop}, "
        "spawn/join moved {moved}); "
        "sub-agent requests={inner}: emitted {em}, misplaced {mis} "
        "(inner t read relative {rr} / absolute {ra}), out-of-order {ooo}; "
        "requests not emitted={ne}; overlapping t+api_time pairs parent {po} / "
        "sub-agent {io}; hash-prefix breaks parent {pb} / sub-agent {ib}".format(
            po=totals["parent_overlaps"],
            io=totals["inner_overlaps"],
            pb=totals["parent_prefix_breaks"],
            ib=totals["inner_prefix_breaks"],
            files=totals["files"],
            req=totals["trace_requests"],
            turns=totals["turns_emitted"],
            convs=totals["conversations"],
            flat=totals["turns_flat_split"],
            moved=totals["subagents_moved"],
            sa=totals["subagents"],
            split=totals["subagents_split"],
            bg=totals["subagents_background"],
            drop=totals["subagents_dropped"],
            inner=totals["inner_requests"],
            em=totals["inner_emitted"],
            mis=totals["inner_misplaced"],
            rr=totals["inner_read_relative"],
            ra=totals["inner_read_absolute"],
            ooo=totals["inner_out_of_order"],
            ne=totals["requests_not_emitted"],
        )
        if not args.schema_only
        else f"TOTAL: files={totals['files']} schema OK"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"totals": dict(totals), "traces": all_reports}, indent=1, default=str)
        )
    if args.strict and (
        totals["inner_misplaced"]
        or totals["subagents_moved"]
        or totals["requests_not_emitted"]
        or totals["inner_out_of_order"]
    ):
        print("FAIL (--strict): requests dropped, misplaced or reordered", file=sys.stderr)
        return 3
    print(
        "ACCEPTED by aiperf weka_trace loader"
        + (" (schema only; conversion not tried)" if args.schema_only else "")
    )
    return 0


# --------------------------------------------------------------------------
# mooncake
# --------------------------------------------------------------------------


def mooncake_precheck(path: Path, block_size: int) -> tuple[int, int]:
    """Line-numbered version of what AIPerf enforces (model + prompt synthesis)."""
    import orjson
    from pydantic import ValidationError

    from aiperf.dataset.loader.models import MooncakeTrace

    rows = 0
    with_hash = 0
    size_of: dict[int, tuple[int, int]] = {}  # hash_id -> (block tokens, first line)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            rows += 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise Rejected(f"{path}:{lineno}: invalid JSON: {e}") from e
            try:
                tr = MooncakeTrace.model_validate(obj)
            except ValidationError as e:
                raise Rejected(f"{path}:{lineno}: MooncakeTrace schema: {e}") from e
            if tr.input_length is None:
                continue
            # PromptGenerator._build_token_sequence rules
            if tr.input_length <= 0:
                raise Rejected(f"{path}:{lineno}: input_length must be > 0 (got {tr.input_length})")
            ids = tr.hash_ids or []
            if not ids:
                continue
            with_hash += 1
            m = len(ids)
            final = block_size
            if m * block_size > tr.input_length:
                final = tr.input_length - (m - 1) * block_size
                if not 0 < final <= block_size:
                    raise Rejected(
                        f"{path}:{lineno}: {m} hash_ids x block_size {block_size} does not fit "
                        f"input_length {tr.input_length}: the last block would hold {final} "
                        f"tokens (AIPerf needs 0 < last <= {block_size}); "
                        f"need (len(hash_ids)-1)*block_size < input_length"
                    )
            for i, h in enumerate(ids):
                want = final if i == m - 1 else block_size
                seen = size_of.get(h)
                if seen is None:
                    size_of[h] = (want, lineno)
                elif seen[0] != want:
                    raise Rejected(
                        f"{path}:{lineno}: hash_id {h} used as a {want}-token block, but line "
                        f"{seen[1]} used it as a {seen[0]}-token block (AIPerf: 'a hash_id must "
                        f"map to a single fixed block size'); a partial last block needs a hash_id "
                        f"of its own"
                    )
    return rows, with_hash


def check_mooncake(args) -> int:
    import_aiperf()
    path = Path(args.file)
    if not path.is_file():
        raise Rejected(f"{path}: not a file")
    run = build_run(str(path), "mooncake_trace", args.block_size)

    if args.schema_only:
        from aiperf.plugin import plugins
        from aiperf.plugin.enums import CustomDatasetType

        meta = plugins.get_dataset_loader_metadata(CustomDatasetType.MOONCAKE_TRACE)
        bs = args.block_size or meta.default_block_size
        # MooncakeTrace model per line + PromptGenerator._build_token_sequence rules
        rows, with_hash = mooncake_precheck(path, bs)
        print(f"{path}: {rows} row(s) OK for MooncakeTrace ({with_hash} with hash_ids, block size {bs})")
        print("ACCEPTED (schema only)")
        return 0

    setup_offline_tokenizer(args.tiktoken_file)
    comp, loader = make_loader(run, "mooncake_trace", True)
    bs = loader._block_size
    src = "--isl-block-size" if args.block_size else "mooncake_trace plugin default"
    print(f"{path}: block size {bs} tokens per hash_id ({src})")

    def locate(phase: str, e: Exception):
        # AIPerf's own error has no line number; find the offending line
        if args.debug:
            traceback.print_exc()
        where = ""
        try:
            mooncake_precheck(path, bs)
        except Rejected as r:
            where = f"\n  first offending line: {r}"
        return Rejected(f"{phase}: {first_line(e)}{where}")

    try:
        data = loader.load_dataset()  # MooncakeTrace.model_validate per line
    except Exception as e:
        raise locate("load", e) from e
    try:
        convs = loader.convert_to_conversations(data)  # prompt synthesis
        finalize(comp, convs)
    except Exception as e:
        raise locate("convert", e) from e
    rows, with_hash = mooncake_precheck(path, bs)
    turns = sum(len(c.turns) for c in convs)
    timed = sum(1 for c in convs for t in c.turns if t.timestamp is not None)
    delayed = sum(1 for c in convs for t in c.turns if t.delay is not None)
    print(
        f"  rows={rows} (with hash_ids {with_hash}) -> sessions/conversations={len(convs)} "
        f"turns={turns} (timestamp {timed}, delay {delayed}); "
        f"skipped by filters={getattr(loader, '_skipped_traces', 0)}"
    )
    if turns != rows:
        print(f"  WARNING: {rows - turns} row(s) not replayed")
    print("ACCEPTED by aiperf mooncake_trace loader")
    return 0


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--schema-only", action="store_true",
                        help="only AIPerf's parse/validation; no tokenizer, no conversations")
    common.add_argument("--tiktoken-file", help="path to o200k_base.tiktoken (offline tokenizer)")
    common.add_argument("--debug", action="store_true", help="print tracebacks")

    w = sub.add_parser("weka", parents=[common], help="check weka_trace JSON files/directories")
    w.add_argument("paths", nargs="+")
    w.add_argument("--inner-t", choices=["relative", "absolute"], default="relative",
                   help="what the writer means by a sub-agent request's t: seconds since "
                        "the sub-agent entry's t (relative, default) or since the trace "
                        "start (absolute); used to count misplaced requests")
    w.add_argument("--strict", action="store_true",
                   help="exit 3 if any request is not replayed, misplaced or reordered")
    w.add_argument("--no-split", action="store_true",
                   help="set AIPERF_DATASET_WEKA_SPLIT_FLATTENED_AGENTS=false (AIPerf's "
                        "switch that turns off hash-id chain detection at both layers)")
    w.add_argument("--verbose", "-v", action="store_true", help="per sub-agent request rows")
    w.add_argument("--json", help="write a JSON report here")

    m = sub.add_parser("mooncake", parents=[common], help="check a Mooncake JSONL file")
    m.add_argument("file")
    m.add_argument("--block-size", type=int, default=None,
                   help="tokens per hash_id (AIPerf --isl-block-size; default: 512)")

    args = ap.parse_args(argv)
    if getattr(args, "no_split", False):
        os.environ["AIPERF_DATASET_WEKA_SPLIT_FLATTENED_AGENTS"] = "false"
    # deterministic, single-process reconstruction (AIPerf says the parallel path
    # is byte-identical); respect an explicit setting
    os.environ.setdefault("AIPERF_DATASET_WEKA_PARALLEL_WORKERS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return check_weka(args) if args.cmd == "weka" else check_mooncake(args)
    except Rejected as e:
        print(f"REJECTED by aiperf: {e}", file=sys.stderr)
        return 1
    except EnvProblem as e:
        print(f"checker cannot run: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
