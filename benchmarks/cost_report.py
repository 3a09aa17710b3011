"""The cost phase's tables, targets and plot (server CPU, bytes, ECPUs and memory).

Every number of the phase is kept per round in ``results["cost"]``; a cell shows the
median over the rounds and, when they differ, their range: ``median (min–max)``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .context import MODES
from .cost import COST_OPS
from .tables import OP_LABELS as ALL_OP_LABELS
from .tables import bytes_, num, table, us

#: Server memory of a 100-turn conversation (either chatbot, full history).
MEMORY_LIMIT = 1024 * 1024
MEMORY_TURNS = 100
#: 200 turns ÷ 100 turns: linear growth is 2, quadratic 4.
LINEAR_LIMIT = 2.3
#: Request bytes of turn 100 ÷ those of turn 10.
REQUEST_GROWTH_LIMIT = 2.0
#: Server CPU against the AWS saver's, same run: at most these ratios.
CPU_VS_AWS = {"turn": 0.8, "put": 1.0, "list": 2.0}
#: Client latency against the AWS saver's (its median ÷ ours): at least these ratios.
SPEED_VS_AWS = {"put": 1.0, "get_latest": 1.2}
TURNS_VS_AWS = 1.3
AWS = "aws"
OURS = "ours"

#: The operations of the cost phase, with their names in the tables.
OP_LABELS = {op: ALL_OP_LABELS[op] for op in COST_OPS}

# --------------------------------------------------------------------------- values


def spread(values: list[float]) -> tuple[float, float, float] | None:
    """(median, min, max), or None without values."""
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def _show(values: list[float], fmt: Any) -> str:
    s = spread(values)
    if s is None:
        return "–"
    mid, lo, hi = s
    low, high = fmt(lo), fmt(hi)
    if len(values) == 1 or low == high:
        return fmt(mid)
    unit = high.rpartition(" ")[2]
    if " " in high and low.endswith(" " + unit):
        low = low[: -len(unit) - 1]
    return f"{fmt(mid)} ({low}–{high})"


def _mid(values: list[float]) -> float | None:
    s = spread(values)
    return None if s is None else s[0]


def op_values(cost: dict[str, Any], key: str, op: str, field: str) -> list[float]:
    cells = cost.get("ops", {}).get(key, {}).get(op, [])
    return [c[field] for c in cells if c.get(field) is not None]


def _conversations(cost: dict[str, Any], style: str, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cost.get("turns", {}).get(style, {}).get(key, [])
    return found


def window_values(
    cost: dict[str, Any], style: str, key: str, window: str, field: str
) -> list[float]:
    out = []
    for conv in _conversations(cost, style, key):
        cell = conv.get("windows", {}).get(window) or {}
        if cell.get(field) is not None:
            out.append(cell[field])
    return out


def request_bytes(cost: dict[str, Any], style: str, key: str, turn: int) -> list[float]:
    out = []
    for conv in _conversations(cost, style, key):
        value = conv.get("request_bytes", {}).get(str(turn))
        if value:
            out.append(value)
    return out


def memory_values(cost: dict[str, Any], style: str, key: str, turns: int) -> list[float]:
    out = []
    for conv in _conversations(cost, style, key):
        cell = conv.get("memory", {}).get(str(turns)) or {}
        if cell.get("bytes"):
            out.append(cell["bytes"])
    return out


def _turns(window: str) -> str:
    return window.replace("-", "–")


def _ecpu(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def _ms(x: float) -> str:
    return us(x)


def _ratio(x: float) -> str:
    return f"{x:.2f}×"


# --------------------------------------------------------------------------- columns


def _label(results: dict[str, Any], key: str) -> str:
    saver = results["savers"].get(key)
    if saver is None:
        return str(results["cost"]["labels"].get(key, key))
    version = saver.get("version")
    return f"{saver['label']} {version}" if version and key != "inmemory" else saver["label"]


def _server_keys(results: dict[str, Any], *, extra: bool) -> list[str]:
    cost = results["cost"]
    keys = [k for k, in_server in cost.get("in_server", {}).items() if in_server]
    return keys if extra else [k for k in keys if k in results["savers"]]


# --------------------------------------------------------------------------- tables


def ops_tables(results: dict[str, Any]) -> list[str]:
    cost = results["cost"]
    keys = [k for k in _server_keys(results, extra=False) if k in cost.get("ops", {})]
    header = [_label(results, k) for k in keys]
    cpu_rows, byte_rows = [], []
    for op, label in OP_LABELS.items():
        cpu_rows.append([label, *[_show(op_values(cost, k, op, "cpu_us"), us) for k in keys]])
        cells = []
        for k in keys:
            bytes_in = bytes_(_mid(op_values(cost, k, op, "bytes_in")))
            bytes_out = bytes_(_mid(op_values(cost, k, op, "bytes_out")))
            units = _show(op_values(cost, k, op, "ecpu"), _ecpu)
            cells.append(f"{bytes_in} / {bytes_out} · {units}")
        byte_rows.append([label, *cells])
    return [
        table(["server CPU per call", *header], cpu_rows),
        "",
        table(["bytes in / out per call · ECPUs", *header], byte_rows),
    ]


def ops_detail_table(results: dict[str, Any]) -> str:
    """Process CPU, the main thread's CPU and time inside commands, side by side."""
    cost = results["cost"]
    keys = [k for k in _server_keys(results, extra=False) if k in cost.get("ops", {})]
    rows = []
    for op, label in OP_LABELS.items():
        cells = []
        for k in keys:
            parts = [
                _show(op_values(cost, k, op, field), us)
                for field in ("cpu_us", "main_cpu_us", "command_us")
            ]
            trips = _mid(op_values(cost, k, op, "round_trips"))
            commands = _mid(op_values(cost, k, op, "commands"))
            tail = (
                f" · {num(trips)} rt, {num(commands)} commands"
                if trips is not None and commands is not None
                else ""
            )
            cells.append(" / ".join(parts) + tail)
        rows.append([label, *cells])
    header = "process / main thread / inside commands"
    return table([header, *[_label(results, k) for k in keys]], rows)


def turn_tables(results: dict[str, Any]) -> list[str]:
    cost = results["cost"]
    keys = list(cost.get("labels", {}))
    server = set(_server_keys(results, extra=True))
    header = [_label(results, k) for k in keys]
    cpu_rows, byte_rows, time_rows = [], [], []
    for style, style_label in cost.get("styles", {}).items():
        for window in cost.get("windows", []):
            name = f"{style_label} · turns {_turns(window)}"
            cpu, moved, wall = [name], [name], [name]
            for k in keys:
                if k not in server:
                    cpu.append("–")
                    moved.append("–")
                else:
                    cpu.append(_show(window_values(cost, style, k, window, "cpu_us"), us))
                    bytes_in = bytes_(_mid(window_values(cost, style, k, window, "bytes_in")))
                    bytes_out = bytes_(_mid(window_values(cost, style, k, window, "bytes_out")))
                    units = _show(window_values(cost, style, k, window, "ecpu"), _ecpu)
                    moved.append(f"{bytes_in} / {bytes_out} · {units}")
                wall.append(_show(window_values(cost, style, k, window, "wall_us"), _ms))
            cpu_rows.append(cpu)
            byte_rows.append(moved)
            time_rows.append(wall)
    return [
        table(["server CPU per turn", *header], cpu_rows),
        "",
        table(["bytes in / out per turn · ECPUs", *header], byte_rows),
        "",
        table(["client time per turn (sync invoke)", *header], time_rows),
    ]


def request_table(results: dict[str, Any]) -> str:
    cost = results["cost"]
    keys = _server_keys(results, extra=True)
    rows = []
    for style, style_label in cost.get("styles", {}).items():
        cells = []
        for k in keys:
            early = request_bytes(cost, style, k, 10)
            late = request_bytes(cost, style, k, 100)
            if not early or not late:
                cells.append("–")
                continue
            a, b = _mid(early) or 1, _mid(late) or 0
            cells.append(f"{bytes_(a)} / {bytes_(b)} ({_ratio(b / a)})")
        rows.append([style_label, *cells])
    header = "request bytes, turn 10 / turn 100"
    return table([header, *[_label(results, k) for k in keys]], rows)


def memory_table(results: dict[str, Any]) -> str:
    cost = results["cost"]
    keys = _server_keys(results, extra=True)
    rows = []
    for style, style_label in cost.get("styles", {}).items():
        for turns in cost.get("memory_turns", []):
            cells = [_show(memory_values(cost, style, k, turns), bytes_) for k in keys]
            rows.append([f"{style_label} · {turns} turns", *cells])
    return table(["server memory of one conversation", *[_label(results, k) for k in keys]], rows)


def reference_line(results: dict[str, Any]) -> str:
    cost = results["cost"]
    cpu = op_values(cost, "get_1k", "get", "cpu_us")
    bytes_in = op_values(cost, "get_1k", "get", "bytes_in")
    bytes_out = op_values(cost, "get_1k", "get", "bytes_out")
    return (
        f"Reference, a plain GET of a 1 KB value (redis-py): server CPU {_show(cpu, us)}, "
        f"{bytes_(_mid(bytes_in))} in / {bytes_(_mid(bytes_out))} out. ECPU estimate: the higher "
        f"of 1 per command, 1 per KB ({cost.get('ecpu_kb', 1024)} B) in and out, and the "
        f"server CPU ÷ {num(cost.get('ecpu_cpu_us', 0))} µs (the assumed CPU of one ECPU; "
        "see the README)." + floor_sentence(results)
    )


def floor_sentence(results: dict[str, Any]) -> str:
    """The floor of this saver's put (see cost.FLOOR), or "" when it was not measured."""
    cost = results["cost"]
    cpu = op_values(cost, "put_floor", "evalsha", "cpu_us")
    if not cpu:
        return ""
    bytes_in = op_values(cost, "put_floor", "evalsha", "bytes_in")
    return (
        f" Floor of this saver's put: a script that returns at once (`EVALSHA` of "
        f"`return 1`), sent the keys and arguments of one of its puts "
        f"({bytes_(_mid(bytes_in))} in): server CPU {_show(cpu, us)}; a put made of one "
        "atomic request pays at least this to receive and parse them."
    )


def cost_markdown(results: dict[str, Any], *, detail: bool = False) -> list[str]:
    """The phase's sections, as lines of markdown (empty if it did not run)."""
    cost = results.get("cost") or {}
    if not cost:
        return []
    ops_rounds = results["sizes"].get("cost_rounds")
    conversations = results["sizes"].get("cost_conversations")
    parts = [
        "",
        "### Server cost (sync, one call at a time)",
        "",
        f"Median over {ops_rounds} interleaved rounds of operations and {conversations} "
        "of conversations (min–max when they differ). Server CPU: used_cpu_sys + "
        "used_cpu_user of the server process (INFO cpu), bytes: total_net_input_bytes / "
        "total_net_output_bytes (INFO stats), each around the batch, minus an idle interval "
        "of the same length. " + reference_line(results),
        "",
    ]
    if cost.get("ops"):
        h = results["sizes"].get("cost_history")
        parts += [f"Per operation, threads of {h} checkpoints:", "", *ops_tables(results), ""]
        if detail:
            parts += ["Server CPU per call in detail:", "", ops_detail_table(results), ""]
    if cost.get("turns"):
        chars = cost.get("user_chars")
        parts += [
            f"Per chatbot turn ({chars}-character user messages, 200-character replies, the "
            "whole history kept):",
            "",
            *turn_tables(results),
            "",
            request_table(results),
            "",
            "Server memory: MEMORY USAGE (SAMPLES 0) summed over the conversation's keys.",
            "",
            memory_table(results),
            "",
        ]
    return parts


# --------------------------------------------------------------------------- targets


def cost_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of {target, cells: {saver: {status, value}}}, like ``report.targets``."""
    cost = results.get("cost") or {}
    if not cost:
        return []
    keys = _server_keys(results, extra=False)
    rows: list[dict[str, Any]] = []

    def row(target: str, cells: dict[str, tuple[bool | None, str]]) -> None:
        rows.append(
            {
                "target": target,
                "cells": {
                    k: {"status": "n/a" if ok is None else ("PASS" if ok else "MISS"), "value": v}
                    for k, (ok, v) in cells.items()
                },
            }
        )

    styles = cost.get("styles", {})
    for style, style_label in styles.items():
        cells: dict[str, tuple[bool | None, str]] = {}
        aws = _mid(memory_values(cost, style, AWS, MEMORY_TURNS))
        for k in keys:
            mine = _mid(memory_values(cost, style, k, MEMORY_TURNS))
            if mine is None:
                cells[k] = (None, "not measured")
                continue
            text = bytes_(mine) + (f", {_ratio(mine / aws)} AWS" if aws and k != AWS else "")
            cells[k] = (mine <= MEMORY_LIMIT, text)
        row(f"{style_label}: memory at {MEMORY_TURNS} turns ≤ 1.0 MiB", cells)

    def growth(values: Any, style: str, small: int, large: int, limit: float, what: str) -> None:
        cells: dict[str, tuple[bool | None, str]] = {}
        for k in keys:
            a, b = _mid(values(cost, style, k, small)), _mid(values(cost, style, k, large))
            cells[k] = (None, "not measured") if not a or not b else (b / a <= limit, _ratio(b / a))
        row(f"{styles[style]}: {what.format(small=small, large=large, limit=limit)}", cells)

    for style in styles:
        text = "memory at {large} turns ≤ {limit:g}× at {small}"
        growth(memory_values, style, MEMORY_TURNS, 2 * MEMORY_TURNS, LINEAR_LIMIT, text)
    for style in styles:
        text = "request bytes of turn {large} ≤ {limit:g}× turn {small}'s"
        growth(request_bytes, style, 10, 100, REQUEST_GROWTH_LIMIT, text)
    if OURS not in keys:
        return rows

    def versus(
        mine: float | None, aws: float | None, limit: float, unit: Any
    ) -> tuple[bool | None, str]:
        if mine is None or not aws:
            return None, "no AWS saver measured" if not aws else "not measured"
        ratio = mine / aws
        return ratio <= limit, f"{_ratio(ratio)} ({unit(mine)} vs {unit(aws)})"

    for style, style_label in styles.items():
        for window in cost.get("windows", []):
            mine = _mid(window_values(cost, style, OURS, window, "cpu_us"))
            aws = _mid(window_values(cost, style, AWS, window, "cpu_us"))
            limit = CPU_VS_AWS["turn"]
            row(
                f"{style_label}: server CPU per turn, turns {_turns(window)}, ≤ {limit:g}× AWS",
                {OURS: versus(mine, aws, limit, us)},
            )
    for op in ("put", "list"):
        mine = _mid(op_values(cost, OURS, op, "cpu_us"))
        aws = _mid(op_values(cost, AWS, op, "cpu_us"))
        limit = CPU_VS_AWS[op]
        met, text = versus(mine, aws, limit, us)
        floor = _mid(op_values(cost, "put_floor", "evalsha", "cpu_us"))
        if op == "put" and floor is not None and aws:
            text += f"; floor of one atomic request with its arguments: {_ratio(floor / aws)}"
        row(f"server CPU per {OP_LABELS[op]}: ≤ {limit:g}× AWS", {OURS: (met, text)})
    for op, factor in SPEED_VS_AWS.items():
        for mode in MODES:
            row(
                f"client latency, {OP_LABELS[op]} {mode}: ≥ {factor:g}× AWS (AWS median ÷ ours)",
                {OURS: _speed(results, op, mode, factor)},
            )
    for mode in MODES:
        e2e = results.get("e2e", {})
        mine = e2e.get(OURS, {}).get(mode, {}).get("turns_per_s")
        aws = e2e.get(AWS, {}).get(mode, {}).get("turns_per_s")
        if not mine or not aws:
            cell: tuple[bool | None, str] = (None, "not measured")
        else:
            cell = (mine / aws >= TURNS_VS_AWS, _ratio(mine / aws))
        row(f"chatbot turns/s {mode}: ≥ {TURNS_VS_AWS}× AWS", {OURS: cell})
    return rows


def _speed(results: dict[str, Any], op: str, mode: str, factor: float) -> tuple[bool | None, str]:
    """The worst ratio over the history lengths of the operation benchmark."""
    worst: tuple[float, str] | None = None
    for level, row in results.get("ops", {}).get(OURS, {}).get(mode, {}).items():
        mine = row.get(op, {}).get("median_us")
        aws = results["ops"].get(AWS, {}).get(mode, {}).get(level, {}).get(op, {}).get("median_us")
        if mine and aws and (worst is None or aws / mine < worst[0]):
            worst = (aws / mine, level)
    if worst is None:
        return None, "not measured"
    return worst[0] >= factor, f"{_ratio(worst[0])} (worst, H={int(worst[1]):,})"


def cost_problems(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, by_where in (results.get("cost") or {}).get("errors", {}).items():
        for where, cell in by_where.items():
            rows.append(
                {
                    "saver": key,
                    "where": f"cost phase, {where}",
                    "errors": cell.get("errors", 0),
                    "wrong": cell.get("wrong", 0),
                    "examples": cell.get("error_examples", []) + cell.get("wrong_examples", []),
                }
            )
    return rows


# --------------------------------------------------------------------------- plot


def memory_plot(
    results: dict[str, Any], out: Path, plt: Any, colors: dict[str, str]
) -> Path | None:
    cost = results.get("cost") or {}
    if not cost.get("turns"):
        return None
    styles = cost.get("styles", {})
    marks = cost.get("memory_turns", [])
    fig, axes = plt.subplots(1, len(styles), figsize=(7 * len(styles), 5), squeeze=False)
    for ax, (style, style_label) in zip(axes[0], styles.items(), strict=True):
        for k in _server_keys(results, extra=True):
            points = []
            for turns in marks:
                s = spread(memory_values(cost, style, k, turns))
                if s:
                    points.append((turns, *s))
            if not points:
                continue
            base = k.split("_")[0]
            ax.errorbar(
                [p[0] for p in points],
                [p[1] / 2**20 for p in points],
                yerr=[
                    [(p[1] - p[2]) / 2**20 for p in points],
                    [(p[3] - p[1]) / 2**20 for p in points],
                ],
                fmt=":o" if k != base else "-o",
                color=colors.get(base),
                capsize=3,
                label=_label(results, k),
            )
        ax.axhline(MEMORY_LIMIT / 2**20, color="#2ca02c", linestyle="--", linewidth=1)
        ax.annotate(
            "target at 100 turns: 1 MiB",
            (marks[0] if marks else 10, MEMORY_LIMIT / 2**20),
            fontsize=8,
            va="bottom",
            color="#2ca02c",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(marks)
        ax.set_xticklabels([str(m) for m in marks])
        ax.set_xlabel("turns in the conversation")
        ax.set_ylabel("server memory (MiB, MEMORY USAGE)")
        ax.set_title(style_label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Server memory of one conversation ({results['kind']} run, {results['date']})")
    fig.tight_layout()
    path = out / "memory_vs_turns.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
