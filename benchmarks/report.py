"""Results: one JSON document, markdown tables, PNG plots and the PASS/MISS targets."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .context import MODES, Context
from .cost_report import cost_markdown, cost_problems, cost_targets, memory_plot
from .savers import ADAPTERS, PEERS
from .store import markdown_tables
from .tables import OP_LABELS
from .tables import bytes_ as _bytes
from .tables import num as _num
from .tables import table as _table
from .tables import us as _us

OPS = tuple(OP_LABELS)
#: Operations with a round-trip target, and the target.
RT_TARGETS = {"put": 1, "put_writes": 1, "get_latest": 1, "get_by_id": 1, "list": 2}
LATENCY_OPS = ("put", "put_writes", "get_latest", "get_by_id", "list")
FLAT_OPS = ("put", "get_latest", "get_by_id", "list")
SPEEDUP = {"put": 1.5, "get_latest": 1.5, "get_by_id": 1.5, "list": 1.3}
E2E_SPEEDUP = 1.3
FLAT_RATIO = 1.25
FLOOR_FACTOR = 1.5
README_START = "<!-- summary:start -->"
README_END = "<!-- summary:end -->"

# --------------------------------------------------------------------------- assembling


def assemble(
    ctx: Context,
    *,
    env: dict[str, Any],
    quick: bool,
    phases: list[str],
    skipped: dict[str, str],
    e2e: dict[str, Any],
    conversation: dict[str, Any],
    cost: dict[str, Any] | None = None,
    store: dict[str, Any] | None = None,
    elapsed_s: float,
) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for key in ctx.adapters:
        for mode in MODES:
            levels = ctx.records.get(key, {}).get(mode, {})
            for level in ctx.sizes.levels:
                records = levels.get(level, {})
                counts = ctx.counts.get(key, {}).get(mode, {}).get(level, {})
                row: dict[str, Any] = {}
                for op in OPS:
                    if op not in records and op not in counts:
                        continue
                    cell = records[op].summary() if op in records else {}
                    cell.update(counts.get(op, {}))
                    row[op] = cell
                if row:
                    ops.setdefault(key, {}).setdefault(mode, {})[str(level)] = row
    savers = {}
    for key, adapter in ctx.adapters.items():
        dist = adapter.dist
        savers[key] = {
            "label": adapter.label,
            "package": dist,
            "version": env["packages"].get(dist) if dist else None,
            "in_server": adapter.in_server,
            "confinement": adapter.confinement,
        }
    results: dict[str, Any] = {
        "kind": "quick" if quick else "full",
        "date": env["date"],
        "elapsed_s": round(elapsed_s, 1),
        "environment": env,
        "sizes": asdict(ctx.sizes),
        "phases": phases,
        "savers": savers,
        "skipped": skipped,
        "notes": ctx.notes,
        "floor": ctx.results.get("floor", {}),
        "ops": ops,
        "history_memory": ctx.results.get("history_memory", {}),
        "build_failures": ctx.results.get("build_failures", {}),
        "e2e": e2e.get("turns", {}),
        "concurrency": e2e.get("concurrency", {}),
        "conversation_memory": conversation,
        "cost": cost or {},
        "store": store or {},
    }
    results["problems"] = problems(results)
    results["targets"] = targets(results)
    results["cost_targets"] = cost_targets(results)
    return results


def problems(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every error and wrong answer, one row per saver/mode/level/operation."""
    rows = []

    def add(key: str, where: str, cell: dict[str, Any]) -> None:
        if cell.get("errors") or cell.get("wrong"):
            rows.append(
                {
                    "saver": key,
                    "where": where,
                    "errors": cell.get("errors", 0),
                    "wrong": cell.get("wrong", 0),
                    "examples": cell.get("error_examples", []) + cell.get("wrong_examples", []),
                }
            )

    for key, by_mode in results["ops"].items():
        for mode, by_level in by_mode.items():
            for level, by_op in by_level.items():
                for op, cell in by_op.items():
                    add(key, f"{op} {mode} H={level}", cell)
    for key, by_mode in results["e2e"].items():
        for mode, cell in by_mode.items():
            add(key, f"chatbot turns {mode}", cell)
    for key, by_threads in results["concurrency"].items():
        for threads, cell in by_threads.items():
            add(key, f"{threads} concurrent threads", cell)
    for key, cell in results["conversation_memory"].items():
        add(key, "100-turn conversation", cell)
    for key, by_level in results.get("build_failures", {}).items():
        for level, message in by_level.items():
            add(key, f"building H={level}", {"errors": 1, "error_examples": [message]})
    return rows + cost_problems(results)


# --------------------------------------------------------------------------- targets


def _cell(results: dict[str, Any], key: str, mode: str, level: Any, op: str) -> dict[str, Any]:
    return results["ops"].get(key, {}).get(mode, {}).get(str(level), {}).get(op, {})


def _levels(results: dict[str, Any]) -> list[int]:
    return sorted(results["sizes"]["levels"])


def _median(results: dict[str, Any], key: str, mode: str, level: Any, op: str) -> float | None:
    cell = _cell(results, key, mode, level, op)
    if cell.get("errors") and not cell.get("n"):
        return None
    return cell.get("median_us")


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, evaluated per saver: rows of {target, cells: {saver: ...}}."""
    savers = [k for k, s in results["savers"].items() if s["in_server"]]
    peers = [k for k in savers if k in PEERS]
    levels = _levels(results)
    rows: list[dict[str, Any]] = []

    def row(target: str, cells: dict[str, tuple[bool | None, str]]) -> None:
        rows.append(
            {
                "target": target,
                "cells": {k: {"status": _status(ok), "value": v} for k, (ok, v) in cells.items()},
            }
        )

    # round trips
    for op, limit in RT_TARGETS.items():
        cells: dict[str, tuple[bool | None, str]] = {}
        for key in savers:
            seen = [
                _cell(results, key, mode, level, op).get("round_trips")
                for mode in MODES
                for level in levels
            ]
            seen = [x for x in seen if x is not None]
            if not seen:
                cells[key] = (None, "not measured")
                continue
            worst = max(seen)
            text = _num(worst) if min(seen) == worst else f"{_num(min(seen))}–{_num(worst)}"
            cells[key] = (worst <= limit, text)
        bound = "1 round trip" if limit == 1 else f"≤ {limit} round trips"
        row(f"{OP_LABELS[op]}: {bound}", cells)

    # latency against InMemorySaver + 1.5 round trips
    for op in LATENCY_OPS:
        for mode in MODES:
            ping = _ping(results, mode)
            cells = {}
            for key in savers:
                worst: tuple[float, int, float] | None = None
                for level in levels:
                    mine = _median(results, key, mode, level, op)
                    base = _median(results, "inmemory", mode, level, op)
                    if mine is None or base is None or ping is None:
                        continue
                    bound = base + FLOOR_FACTOR * ping
                    excess = mine - bound
                    if worst is None or excess > worst[0]:
                        worst = (excess, level, mine)
                if worst is None:
                    cells[key] = (None, "not measured")
                    continue
                excess, level, mine = worst
                text = (
                    f"{_us(mine)} at H={level:,} ({'+' if excess > 0 else '−'}{_us(abs(excess))})"
                )
                cells[key] = (excess <= 0, text)
            row(f"{OP_LABELS[op]} {mode}: median ≤ InMemorySaver + 1.5 × PING", cells)

    # flat in history
    if len(levels) > 1:
        lo, hi = levels[0], levels[-1]
        for op in FLAT_OPS:
            for mode in MODES:
                cells = {}
                for key in savers:
                    a = _median(results, key, mode, lo, op)
                    b = _median(results, key, mode, hi, op)
                    if not a or not b:
                        cells[key] = (None, "not measured")
                        continue
                    cells[key] = (b / a <= FLAT_RATIO, f"{b / a:.2f}×")
                row(f"{OP_LABELS[op]} {mode}: H={hi:,} ÷ H={lo:,} ≤ {FLAT_RATIO}", cells)

    # ours against the fastest peer; the ceiling is the ratio a saver would reach if a
    # call cost only InMemorySaver's work plus its round trips (PING each). InMemorySaver
    # is taken at its fastest H: its own list sorts the whole thread, so it is no floor
    # at large H, and the cheapest cost gives the highest (most generous) ceiling.
    if "ours" in savers:
        for op, factor in SPEEDUP.items():
            for mode in MODES:
                ping = _ping(results, mode)
                bases = [_median(results, "inmemory", mode, lvl, op) for lvl in levels]
                base = min((b for b in bases if b), default=None)
                worst_ratio: tuple[float, int, float | None] | None = None
                for level in levels:
                    mine = _median(results, "ours", mode, level, op)
                    theirs = [_median(results, p, mode, level, op) for p in peers]
                    theirs = [t for t in theirs if t]
                    if not mine or not theirs:
                        continue
                    ratio = min(theirs) / mine
                    trips = _cell(results, "ours", mode, level, op).get("round_trips") or 1
                    ceiling = min(theirs) / (base + trips * ping) if base and ping else None
                    if worst_ratio is None or ratio < worst_ratio[0]:
                        worst_ratio = (ratio, level, ceiling)
                if worst_ratio is None:
                    cell = (None, "no peer measured")
                else:
                    ratio, level, ceiling = worst_ratio
                    text = f"{ratio:.2f}× (worst, H={level:,})"
                    if ceiling is not None:
                        text += f"; ceiling {ceiling:.2f}×"
                    cell = (ratio >= factor, text)
                row(
                    f"{OP_LABELS[op]} {mode}: ≥ {factor}× faster than the fastest peer",
                    {"ours": cell},
                )
        for mode in MODES:
            mine = results["e2e"].get("ours", {}).get(mode, {}).get("turns_per_s")
            theirs = [results["e2e"].get(p, {}).get(mode, {}).get("turns_per_s") for p in peers]
            theirs = [t for t in theirs if t]
            if not mine or not theirs:
                cell = (None, "no peer measured")
            else:
                text = f"{mine / max(theirs):.2f}×"
                ceiling = _e2e_ceiling(results, mode, max(theirs))
                if ceiling is not None:
                    text += f"; ceiling {ceiling:.2f}×"
                cell = (mine / max(theirs) >= E2E_SPEEDUP, text)
            row(f"chatbot turns/s {mode}: ≥ {E2E_SPEEDUP}× the fastest peer", {"ours": cell})

    # concurrency
    top = max((int(t) for c in results["concurrency"].values() for t in c), default=None)
    if top is not None:
        cells = {}
        for key in savers:
            cell = results["concurrency"].get(key, {}).get(str(top))
            if not cell:
                cells[key] = (None, "not measured")
                continue
            bad = cell.get("errors", 0) + cell.get("wrong", 0)
            cells[key] = (
                bad == 0,
                f"{cell.get('errors', 0)} errors, {cell.get('wrong', 0)} wrong",
            )
        row(f"{top} concurrent threads: no failure", cells)

    # memory per checkpoint
    memory = results.get("history_memory", {})
    mem_level = _memory_level(results)
    if "ours" in savers and mem_level is not None:
        mine = memory.get("ours", {}).get(str(mem_level), {}).get("bytes_per_checkpoint")
        if mine is None:
            mine = memory.get("ours", {}).get(mem_level, {}).get("bytes_per_checkpoint")
        theirs = [_memory(memory, p, mem_level) for p in peers]
        theirs = [t for t in theirs if t]
        if not mine or not theirs:
            cell = (None, "no peer measured")
        else:
            cell = (mine <= min(theirs), f"{_bytes(mine)} vs {_bytes(min(theirs))}")
        row(f"server memory per checkpoint (H={mem_level:,}) ≤ the smallest peer's", {"ours": cell})

    # wrong answers, all savers
    cells = {}
    for key in savers:
        bad = [p for p in results["problems"] if p["saver"] == key]
        wrong = sum(p["wrong"] for p in bad)
        errors = sum(p["errors"] for p in bad)
        cells[key] = (wrong == 0 and errors == 0, f"{wrong} wrong, {errors} errors")
    row("every answer right, no call raised", cells)
    return rows


def _ping(results: dict[str, Any], mode: str) -> float | None:
    """Median of one PING in ``mode``: the round trip the targets count in."""
    median: float | None = results.get("floor", {}).get(mode, {}).get("ping", {}).get("median_us")
    return median


def _e2e_ceiling(results: dict[str, Any], mode: str, peer_tps: float) -> float | None:
    """Turns/s ratio to the peer if each of our round trips per turn cost one PING and
    nothing else beyond the InMemorySaver turn."""
    e2e = results["e2e"]
    base = e2e.get("inmemory", {}).get(mode, {}).get("turns_per_s")
    ours = e2e.get("ours", {}).get(mode, {})
    trips = (ours.get("round_trips_per_turn") or {}).get("round_trips")
    ping = _ping(results, mode)
    if not base or not trips or not ping:
        return None
    turn_s = 1 / base + trips * ping / 1e6
    return (1 / turn_s) / peer_tps


def _memory(memory: dict[str, Any], key: str, level: int) -> float | None:
    by_level = memory.get(key, {})
    cell = by_level.get(str(level)) or by_level.get(level) or {}
    return cell.get("bytes_per_checkpoint")


def _memory_level(results: dict[str, Any]) -> int | None:
    levels = _levels(results)
    if not results.get("history_memory"):
        return None
    return 1000 if 1000 in levels else levels[-1]


# --------------------------------------------------------------------------- formatting


def _label(results: dict[str, Any], key: str) -> str:
    label = results["savers"][key]["label"]
    version = results["savers"][key].get("version")
    return f"{label} {version}" if version and key != "inmemory" else label


def _flag(cell: dict[str, Any]) -> str:
    marks = []
    if cell.get("errors"):
        marks.append(f"{cell['errors']} errors")
    if cell.get("wrong"):
        marks.append(f"{cell['wrong']} wrong")
    return f" ⚠ {', '.join(marks)}" if marks else ""


def _latency_cell(cell: dict[str, Any]) -> str:
    if not cell or cell.get("median_us") is None:
        return "fails" + _flag(cell) if cell.get("errors") else "–"
    return f"{_us(cell['median_us'])} ({_us(cell['p99_us'])})" + _flag(cell)


def _header_lines(results: dict[str, Any]) -> list[str]:
    env = results["environment"]
    server = env["server"]
    version = server.get("valkey_version") or server.get("redis_version")
    name = "Valkey" if server.get("valkey_version") else "Redis"
    pk = env["packages"]
    lines = [
        f"- **Date**: {results['date']} ({results['kind']} run, {results['elapsed_s']:.0f} s)",
        f"- **Machine**: {env['machine']['cpu_model']}, {env['machine']['cores']} cores, "
        f"{env['machine']['system']} {env['machine']['arch']}",
        f"- **Server**: {name} {version}, {server['kind']}",
        f"- **Python** {env['python']}; redis-py {pk.get('redis')} "
        f"(parser: {env['redis_py_parser']}), valkey-py {pk.get('valkey')} "
        f"(parser: {env['valkey_py_parser']}); langgraph {pk.get('langgraph')}, "
        f"langgraph-checkpoint {pk.get('langgraph-checkpoint')}",
        f"- **Measured commit**: {env.get('source_commit') or 'unknown'}",
        "- **Savers**: "
        + "; ".join(
            f"{s['label']}" + (f" {s['version']}" if s.get("version") else "")
            for s in results["savers"].values()
        ),
    ]
    for key, reason in results.get("skipped", {}).items():
        lines.append(f"- **Skipped**: {ADAPTERS[key].label}: {reason}")
    return lines


def _floor_line(results: dict[str, Any]) -> str:
    floor = results.get("floor", {})
    if not floor:
        return "Floor not measured."
    parts = []
    for mode in MODES:
        ping = floor.get(mode, {}).get("ping", {})
        hset = floor.get(mode, {}).get("hset_2k", {})
        parts.append(
            f"{mode}: PING {_us(ping.get('median_us'))} (p99 {_us(ping.get('p99_us'))}), "
            f"HSET 2 KB {_us(hset.get('median_us'))} (p99 {_us(hset.get('p99_us'))})"
        )
    return "One round trip (redis-py, median): " + "; ".join(parts) + "."


def _headline_level(results: dict[str, Any]) -> int:
    levels = _levels(results)
    return 1000 if 1000 in levels else levels[-1]


def latency_table(results: dict[str, Any], level: int, modes: tuple[str, ...] = MODES) -> str:
    keys = list(results["savers"])
    rows = []
    for op in OPS:
        for mode in modes:
            cells = [_latency_cell(_cell(results, k, mode, level, op)) for k in keys]
            if all(c == "–" for c in cells):
                continue
            rows.append([f"{OP_LABELS[op]} · {mode}", *cells])
    return _table(["operation", *[_label(results, k) for k in keys]], rows)


def _counts_cell(cell: dict[str, Any]) -> str:
    rt = cell.get("round_trips")
    if rt is None:
        return "–"
    top = cell.get("commands_top")
    total = cell.get("commands_total")
    tail = f" · {_num(top)} / {_num(total)}" if top is not None and total is not None else ""
    return f"**{_num(rt)}**{tail}"


def counts_table(results: dict[str, Any], level: int, mode: str = "sync") -> str:
    keys = [k for k, s in results["savers"].items() if s["in_server"]]
    rows = []
    for op in OPS:
        cells = [_counts_cell(_cell(results, k, mode, level, op)) for k in keys]
        if all(c == "–" for c in cells):
            continue
        rows.append([OP_LABELS[op], *cells])
    rt = {k: results["e2e"].get(k, {}).get(mode, {}).get("round_trips_per_turn") for k in keys}
    if any(rt.values()):
        rows.append(["chatbot turn", *[_counts_cell(rt[k] or {}) for k in keys]])
    return _table(["per call", *[_label(results, k) for k in keys]], rows)


def history_table(results: dict[str, Any], mode: str = "sync") -> str:
    keys = list(results["savers"])
    levels = _levels(results)
    rows = []
    for op in OPS:
        cells = []
        for k in keys:
            values = [_median(results, k, mode, level, op) for level in levels]
            cells.append(" / ".join(_us(v) for v in values))
        rows.append([OP_LABELS[op], *cells])
    header = [f"median, H = {' / '.join(f'{lv:,}' for lv in levels)}"]
    return _table(header + [_label(results, k) for k in keys], rows)


def e2e_table(results: dict[str, Any]) -> str:
    keys = list(results["savers"])
    rows = []
    for mode in MODES:
        cells = []
        for k in keys:
            cell = results["e2e"].get(k, {}).get(mode)
            if not cell:
                cells.append("–")
                continue
            share = cell.get("checkpointer_share")
            text = f"{cell['turns_per_s']:,.0f} turns/s" if cell.get("turns_per_s") else "fails"
            if share is not None:
                text += f", share {share * 100:.0f}%"
            cells.append(text + _flag(cell))
        rows.append([f"chatbot, one turn at a time · {mode}", *cells])
    levels = sorted({int(t) for c in results["concurrency"].values() for t in c})
    for threads in levels:
        cells = []
        for k in keys:
            cell = results["concurrency"].get(k, {}).get(str(threads))
            if not cell:
                cells.append("–")
                continue
            text = f"{cell['turns_per_s']:,.0f} turns/s" if cell.get("turns_per_s") else "0"
            text += f", p99 {_us(cell.get('p99_us'))}"
            text += f", {cell.get('errors', 0)} errors, {cell.get('wrong', 0)} wrong"
            cells.append(text)
        rows.append([f"{threads} concurrent threads · async", *cells])
    return _table(["end to end", *[_label(results, k) for k in keys]], rows)


def memory_table(results: dict[str, Any]) -> str:
    keys = [k for k, s in results["savers"].items() if s["in_server"]]
    memory = results.get("history_memory", {})
    rows = []
    for level in _levels(results):
        cells = []
        for k in keys:
            value = _memory(memory, k, level)
            cells.append(_bytes(value) if value else "–")
        if any(c != "–" for c in cells):
            rows.append([f"per checkpoint (thread of H={level:,})", *cells])
    conv = results.get("conversation_memory", {})
    if conv:
        turns = next(iter(conv.values()))["turns"]
        cells = []
        for k in keys:
            cell = conv.get(k)
            if not cell or not cell.get("bytes"):
                cells.append("–")
                continue
            cells.append(
                f"{_bytes(cell['bytes'])} ({cell['checkpoints']} checkpoints, {cell['keys']} keys)"
            )
        rows.append([f"{turns}-turn chatbot conversation, 200-char replies", *cells])
    return _table(["server memory", *[_label(results, k) for k in keys]], rows)


def targets_table(results: dict[str, Any], which: str = "targets") -> str:
    keys = [k for k, s in results["savers"].items() if s["in_server"]]
    rows = []
    for target in results.get(which, []):
        cells = []
        for k in keys:
            cell = target["cells"].get(k)
            cells.append("" if cell is None else f"{cell['status']} ({cell['value']})")
        rows.append([target["target"], *cells])
    return _table(["target", *[_label(results, k) for k in keys]], rows)


def problems_section(results: dict[str, Any]) -> str:
    rows = results["problems"]
    if not rows:
        return "No saver raised and every answer matched what was put."
    lines = []
    for p in rows:
        label = results["savers"][p["saver"]]["label"]
        examples = "; ".join(p["examples"][:2])
        lines.append(
            f"- **{label}**, {p['where']}: {p['wrong']} wrong, {p['errors']} errors"
            + (f" — e.g. {examples}" if examples else "")
        )
    return "\n".join(lines)


def summary_markdown(results: dict[str, Any], *, detail: bool = False) -> str:
    level = _headline_level(results)
    parts = [
        f"## Results ({results['kind']} run)",
        "",
        *_header_lines(results),
        "",
        _floor_line(results),
    ]
    if results["ops"]:
        parts += [
            "",
            f"### Latency per call at H = {level:,} checkpoints: median (p99)",
            "",
            latency_table(results, level),
            "",
            f"### Round trips · top-level / total server commands per call (H = {level:,})",
            "",
            counts_table(results, level),
        ]
    if results["e2e"] or results["concurrency"]:
        parts += ["", "### End to end (functional-API chatbot)", "", e2e_table(results)]
    if results.get("history_memory") or results.get("conversation_memory"):
        parts += ["", "### Server memory", "", memory_table(results)]
    parts += cost_markdown(results, detail=detail)
    if results.get("store"):
        parts += [
            "",
            "### Store and cache: PlainRedisStore beside InMemoryStore and ValkeyStore",
            "",
            "Medians in ms and round trips per call; memory in bytes per item "
            "(`benchmarks/store.py`, its tables explained in `benchmarks/STORE.md`).",
            "",
            markdown_tables(results["store"]),
            "",
        ]
    if results.get("cost_targets"):
        parts += [
            "### Targets of the storage redesign, against the AWS saver",
            "",
            targets_table(results, "cost_targets"),
        ]
    parts += [
        "",
        "### Targets",
        "",
        targets_table(results),
        "",
        "### Errors and wrong answers",
        "",
        problems_section(results),
    ]
    if results["notes"]:
        parts += ["", "### Notes", "", *[f"- {n}" for n in results["notes"]]]
    return "\n".join(parts) + "\n"


def full_markdown(results: dict[str, Any]) -> str:
    summary = summary_markdown(results, detail=True)
    parts = [summary.replace("## Results", "# Benchmark results", 1)]
    if results["ops"]:
        parts.append("## Median latency against history length\n")
        for mode in MODES:
            parts += [f"### {mode}\n", history_table(results, mode), ""]
        for level in _levels(results):
            parts += [
                f"## H = {level:,}: median (p99)\n",
                latency_table(results, level),
                "",
                f"Round trips · top-level / total server commands (sync, H = {level:,}):\n",
                counts_table(results, level, "sync"),
                "",
                f"Round trips · top-level / total server commands (async, H = {level:,}):\n",
                counts_table(results, level, "async"),
                "",
            ]
        parts += ["## Commands per call (sync, largest H)\n", commands_detail(results), ""]
    return "\n".join(parts)


def commands_detail(results: dict[str, Any]) -> str:
    level = _levels(results)[-1]
    rows = []
    for key, s in results["savers"].items():
        if not s["in_server"]:
            continue
        for op in OPS:
            cell = _cell(results, key, "sync", level, op)
            if not cell.get("top_by_command"):
                continue
            top = ", ".join(f"{k} {_num(v)}" for k, v in cell["top_by_command"].items())
            server = ", ".join(
                f"{k} {_num(v)}" for k, v in cell.get("server_by_command", {}).items()
            )
            rows.append([s["label"], OP_LABELS[op], top, server or "–"])
    return _table(["saver", "operation", "sent (top level)", "executed (INFO commandstats)"], rows)


def console(results: dict[str, Any]) -> str:
    return "\n" + summary_markdown(results)


# --------------------------------------------------------------------------- plots

_COLORS = {"inmemory": "#7f7f7f", "ours": "#d62728", "plainredis": "#1f77b4", "aws": "#ff7f0e"}


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    from matplotlib.ticker import FuncFormatter

    _plain = FuncFormatter(lambda v, _: f"{v:g}")
    _minor = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "25" else "")
    written = []
    keys = list(results["savers"])
    levels = _levels(results)

    if results["ops"]:
        fig, axes = plt.subplots(2, 4, figsize=(18, 8.5))
        for ax, op in zip(axes.flat, OPS, strict=False):
            for key in keys:
                for mode, style in (("sync", "-"), ("async", "--")):
                    ys = [_median(results, key, mode, lv, op) for lv in levels]
                    pts = [(x, y) for x, y in zip(levels, ys, strict=True) if y]
                    if pts:
                        ax.plot(
                            [p[0] for p in pts],
                            [p[1] / 1000 for p in pts],
                            style,
                            marker="o",
                            color=_COLORS.get(key),
                            label=f"{results['savers'][key]['label']} · {mode}",
                        )
            ax.set_title(OP_LABELS[op])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_plain)
            ax.yaxis.set_minor_formatter(_minor)
            ax.set_xlabel("checkpoints in the thread (H)")
            ax.set_ylabel("median latency (ms)")
            ax.grid(True, which="both", alpha=0.3)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        axes.flat[-1].axis("off")
        axes.flat[-1].legend(handles, labels, loc="center", fontsize=9)
        fig.suptitle(f"Latency against history length ({results['kind']} run, {results['date']})")
        fig.tight_layout()
        path = out / "latency_vs_history.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

        level = levels[-1]
        server_keys = [k for k in keys if results["savers"][k]["in_server"]]
        fig, ax = plt.subplots(figsize=(12, 5))
        width = 0.8 / max(len(server_keys), 1)
        for i, key in enumerate(server_keys):
            ys = [_cell(results, key, "sync", level, op).get("round_trips") or 0 for op in OPS]
            xs = [j + i * width for j in range(len(OPS))]
            bars = ax.bar(
                xs, ys, width, color=_COLORS.get(key), label=results["savers"][key]["label"]
            )
            for bar, y in zip(bars, ys, strict=True):
                if y:
                    ax.annotate(
                        _num(y),
                        (bar.get_x() + bar.get_width() / 2, y),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                    )
        ax.set_xticks([j + width * (len(server_keys) - 1) / 2 for j in range(len(OPS))])
        ax.set_xticklabels([OP_LABELS[op] for op in OPS], rotation=15)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_plain)
        ax.set_ylabel("round trips per call (log)")
        ax.set_title(f"Round trips per operation, counted on the wire (sync, H = {level:,})")
        ax.legend()
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        path = out / "round_trips.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    if results["e2e"] or results["concurrency"]:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5))
        width = 0.8 / max(len(keys), 1)
        for i, key in enumerate(keys):
            ys = [results["e2e"].get(key, {}).get(m, {}).get("turns_per_s") or 0 for m in MODES]
            ax1.bar(
                [j + i * width for j in range(len(MODES))],
                ys,
                width,
                color=_COLORS.get(key),
                label=results["savers"][key]["label"],
            )
        ax1.set_xticks([j + width * (len(keys) - 1) / 2 for j in range(len(MODES))])
        ax1.set_xticklabels([f"{m}, one turn at a time" for m in MODES])
        ax1.set_ylabel("turns per second")
        ax1.set_title("Chatbot turns per second")
        ax1.legend(fontsize=8)
        ax1.grid(True, axis="y", alpha=0.3)
        conc = sorted({int(t) for c in results["concurrency"].values() for t in c})
        for i, key in enumerate(keys):
            ys = [
                results["concurrency"].get(key, {}).get(str(t), {}).get("turns_per_s") or 0
                for t in conc
            ]
            xs = [j + i * width for j in range(len(conc))]
            ax2.bar(xs, ys, width, color=_COLORS.get(key), label=results["savers"][key]["label"])
            for x, y, t in zip(xs, ys, conc, strict=True):
                cell = results["concurrency"].get(key, {}).get(str(t), {})
                bad = cell.get("errors", 0) + cell.get("wrong", 0)
                if bad:
                    ax2.annotate(
                        f"{bad} failed" if y else "all failed",
                        (x, y),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        rotation=90,
                        color=_COLORS.get(key),
                    )
        ax2.set_xticks([j + width * (len(keys) - 1) / 2 for j in range(len(conc))])
        ax2.set_xticklabels([f"{t} concurrent threads" for t in conc])
        ax2.set_ylabel("turns per second")
        ax2.set_title("Concurrency (async)")
        ax2.grid(True, axis="y", alpha=0.3)
        fig.suptitle(f"End to end ({results['kind']} run, {results['date']})")
        fig.tight_layout()
        path = out / "e2e_turns.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    path = memory_plot(results, out, plt, _COLORS)
    if path is not None:
        written.append(path)
    return written


# --------------------------------------------------------------------------- writing


def write(results: dict[str, Any], out: Path, *, update_readme: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    paths.append(json_path)
    summary = summary_markdown(results)
    summary_path = out / "summary.md"
    summary_path.write_text(summary, encoding="utf-8")
    paths.append(summary_path)
    full_path = out / "results.md"
    full_path.write_text(full_markdown(results), encoding="utf-8")
    paths.append(full_path)
    paths += plots(results, out)
    if update_readme and results["kind"] == "full":
        readme = Path(__file__).resolve().parent / "README.md"
        if readme.exists():
            text = readme.read_text(encoding="utf-8")
            pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
            if pattern.search(text):
                body = summary.replace("## Results", "### Results", 1).replace("\n### ", "\n#### ")
                block = f"{README_START}\n{body}{README_END}"
                readme.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")
                paths.append(readme)
    return paths
