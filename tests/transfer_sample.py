"""A thread built the same way every time (fixed ids, times and versions), for the
export format's compatibility test: tests/data/export_v1.jsonl is its export as
written by the CLI before the format moved to plain_redis_saver.transfer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

SAMPLE_THREAD = "golden:{thread} %"
_TS = "2025-01-02T03:04:0{}.000000+00:00"


def _checkpoint(cid: str, second: int, values: dict[str, Any], versions: dict[str, str]) -> Any:
    return {
        "v": 4,
        "id": cid,
        "ts": _TS.format(second),
        "channel_values": values,
        "channel_versions": versions,
        "versions_seen": {"__input__": {}, "node": {"start": "1"}},
        "updated_channels": sorted(versions),
    }


def build_sample_thread(saver: Any, thread_id: str = SAMPLE_THREAD) -> None:
    """Two root checkpoints (the second changes one of two channels), a subgraph
    checkpoint, and pending writes of several tasks, special channels among them."""
    root: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    first_values = {"messages": [HumanMessage("hi", id="m1")], "tags": {"a"}}
    first = _checkpoint(
        "1f000000-0000-6000-8000-000000000001", 1, first_values, {"messages": "1", "tags": "1"}
    )
    meta = {"source": "input", "step": -1, "parents": {}, "run_id": "run-1"}
    saved = saver.put(root, first, meta, {"messages": "1", "tags": "1"})
    second_values = {
        "messages": [HumanMessage("hi", id="m1"), AIMessage("hello", id="m2")],
        "tags": {"a"},
    }
    second = _checkpoint(
        "1f000000-0000-6000-8000-000000000002", 2, second_values, {"messages": "2", "tags": "1"}
    )
    meta2 = {"source": "loop", "step": 0, "parents": {}, "amount": Decimal("2.50")}
    latest = saver.put(saved, second, meta2, {"messages": "2"})
    saver.put_writes(latest, [("messages", b"\x00raw"), ("__interrupt__", ["ask"])], "b-task")
    saver.put_writes(latest, [("tags", {"c"})], "a-task", "z-path")
    child: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "sub:1"}}
    inner = _checkpoint("1f000000-0000-6000-8000-000000000003", 3, {"x": 1}, {"x": "1"})
    saver.put(child, inner, {"source": "loop", "step": 1, "parents": {"": "x"}}, {"x": "1"})
