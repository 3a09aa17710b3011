"""Compare what a saver returns with what was put. Each check returns a problem or None.

Channel values are compared by a fingerprint (type, id and content of every message;
plain equality for the other channels), which is cheap enough to check every sample;
``deep=True`` compares whole messages (every field) and is used on the first sample of
each batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from . import workload
from .workload import Entry


def _fingerprint(value: Any) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], BaseMessage):
        return [(m.type, m.id, m.content) for m in value]
    return value


def _values_problem(values: Any, step: int, deep: bool) -> str | None:
    if not isinstance(values, dict):
        return f"channel_values is {type(values).__name__}"
    expected = workload.values_at(step)
    if deep:
        wrong = [c for c in expected if values.get(c, _MISSING) != expected[c]]
    else:
        wrong = [
            c
            for c in expected
            if _fingerprint(values.get(c, _MISSING)) != _fingerprint(expected[c])
        ]
    extra = sorted(set(values) - set(expected))
    if wrong or extra:
        return f"channel values differ: wrong/missing {wrong}, unexpected {extra}"
    return None


_MISSING = object()


def _writes_problem(pending: Any, expected: list[tuple[str, str, Any]], deep: bool) -> str | None:
    got = [tuple(w) for w in pending or []]
    if len(got) != len(expected):
        return f"{len(got)} pending writes, expected {len(expected)}"
    for (task, channel, value), (etask, echannel, evalue) in zip(got, expected, strict=True):
        if task != etask or channel != echannel:
            return f"pending write ({task!r}, {channel!r}), expected ({etask!r}, {echannel!r})"
        same = value == evalue if deep else _fingerprint(value) == _fingerprint(evalue)
        if not same:
            return f"pending write value of ({task!r}, {channel!r}) differs"
    return None


def check_tuple(tup: Any, entry: Entry | None, *, deep: bool = False) -> str | None:
    """A checkpoint tuple against the entry it should be (None: nothing expected)."""
    if entry is None:
        return None if tup is None else "returned a checkpoint where none exists"
    if tup is None:
        return f"returned None for checkpoint {entry.checkpoint_id}"
    try:
        cid = tup.config["configurable"]["checkpoint_id"]
        if cid != entry.checkpoint_id or tup.checkpoint.get("id") != entry.checkpoint_id:
            return f"returned checkpoint {cid}, expected {entry.checkpoint_id}"
        problem = _values_problem(tup.checkpoint.get("channel_values"), entry.step, deep)
        if problem:
            return f"checkpoint {cid}: {problem}"
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        if parent != entry.parent_id:
            return f"checkpoint {cid}: parent {parent}, expected {entry.parent_id}"
        meta = tup.metadata or {}
        if meta.get("step") != entry.step or meta.get("source") != workload.metadata(
            entry.step
        ).get("source"):
            return f"checkpoint {cid}: metadata {meta!r} differs"
        if entry.writes is not None:
            problem = _writes_problem(tup.pending_writes, entry.writes, deep)
            if problem:
                return f"checkpoint {cid}: {problem}"
    except (AttributeError, KeyError, TypeError) as exc:
        return f"malformed checkpoint tuple: {exc!r}"
    return None


def check_list(
    items: Sequence[Any], expected: Sequence[Entry], *, deep: bool = False
) -> str | None:
    """A list() result against the entries it should return, in order."""
    try:
        got_ids = [t.config["configurable"]["checkpoint_id"] for t in items]
    except (AttributeError, KeyError, TypeError) as exc:
        return f"malformed list item: {exc!r}"
    want_ids = [e.checkpoint_id for e in expected]
    if got_ids != want_ids:
        if sorted(got_ids) == sorted(want_ids):
            return f"list returned the right {len(got_ids)} checkpoints in the wrong order"
        return (
            f"list returned {len(got_ids)} checkpoints, expected {len(want_ids)}; "
            f"{len(set(got_ids) - set(want_ids))} unexpected, "
            f"{len(set(want_ids) - set(got_ids))} missing"
        )
    for i, (tup, entry) in enumerate(zip(items, expected, strict=True)):
        problem = check_tuple(tup, entry, deep=deep and i == 0)
        if problem:
            return f"list item {i}: {problem}"
    return None
