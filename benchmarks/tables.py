"""Operation names, number formats and markdown tables shared by the reports."""

from __future__ import annotations

import math

#: Every measured operation, in the reports' order, with its name in the tables.
OP_LABELS = {
    "put": "put",
    "put_writes": "put_writes (3 writes)",
    "get_latest": "get_tuple (latest)",
    "get_by_id": "get_tuple (by id)",
    "list": "list(limit=10)",
    "list_filter": "list(filter, limit=10)",
    "delete_thread": "delete_thread",
}


def num(x: float) -> str:
    return f"{x:g}" if x < 1000 else f"{x:,.0f}"


def us(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x >= 10_000:
        return f"{x / 1000:,.1f} ms"
    if x >= 100:
        return f"{x:,.0f} µs"
    return f"{x:.1f} µs"


def bytes_(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 1024 * 1024:
        return f"{x / 1024 / 1024:,.2f} MiB"
    if x >= 10 * 1024:
        return f"{x / 1024:,.1f} KiB"
    return f"{x:,.0f} B"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
