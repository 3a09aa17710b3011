"""Rendering for people and scripts: stored values as JSON, tables, sizes and times."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol


def _type_name(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def render(value: Any, serde: SerializerProtocol, depth: int = 0) -> Any:
    """A JSON-compatible view of a stored value, for reading (not for round trips):
    JSON types as they are, pydantic models (LangChain messages) by ``model_dump()``,
    dataclasses, named tuples, enums, dates and UUIDs by their parts, and anything
    else by type and serialized size."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 50:
        return {"__type__": _type_name(value), "note": "nested too deeply"}
    if isinstance(value, (bytes, bytearray)):
        return {"__type__": _type_name(value), "size": len(value)}
    if isinstance(value, Mapping):
        return {str(k): render(v, serde, depth + 1) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"__type__": _type_name(value)} | {
            f: render(getattr(value, f), serde, depth + 1) for f in value._fields
        }
    if isinstance(value, (list, tuple)):
        return [render(v, serde, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [render(v, serde, depth + 1) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, enum.Enum):
        return render(value.value, serde, depth + 1)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    dump = getattr(value, "model_dump", None) or getattr(value, "dict", None)
    if callable(dump) and not isinstance(value, type):
        try:
            dumped = dump()
        except Exception:
            dumped = None
        if isinstance(dumped, Mapping):
            return render(dumped, serde, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": _type_name(value)} | {
            f.name: render(getattr(value, f.name), serde, depth + 1)
            for f in dataclasses.fields(value)
        }
    try:
        size: int | None = len(serde.dumps_typed(value)[1])
    except Exception:
        size = None
    return {"__type__": _type_name(value), "size": size}


def show_document(tup: CheckpointTuple, serde: SerializerProtocol) -> dict[str, Any]:
    """The JSON view of a checkpoint printed by ``show``."""
    conf = tup.config["configurable"]
    checkpoint = {k: v for k, v in tup.checkpoint.items() if k != "channel_values"}
    parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    return {
        "thread_id": conf["thread_id"],
        "checkpoint_ns": conf["checkpoint_ns"],
        "checkpoint_id": conf["checkpoint_id"],
        "parent_checkpoint_id": parent,
        "checkpoint": render(checkpoint, serde),
        "metadata": render(tup.metadata, serde),
        "channel_values": render(tup.checkpoint.get("channel_values", {}), serde),
        "pending_writes": [
            {"task_id": task_id, "channel": channel, "value": render(value, serde)}
            for task_id, channel, value in tup.pending_writes or ()
        ],
    }


def short_time(ts: str | None) -> str:
    if not ts:
        return "-"
    try:
        moment = datetime.datetime.fromisoformat(ts)
    except ValueError:
        return ts
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if moment.tzinfo else "")


def human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"  # pragma: no cover


def human_ttl(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms // 1000
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def table(out: IO[str], headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    text_rows = [[str(c) for c in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in text_rows) for i in range(len(headers))]
    for row in text_rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        # Control characters would break the table; ids may contain anything.
        return value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value
    return str(value)


def json_out(out: IO[str], data: Any) -> None:
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
