"""Realistic, deterministic checkpoints and pending writes, and what a saver must answer.

Step ``i`` of a benchmark thread is a checkpoint with ten channels, shaped like a chat
agent's state: a 20-message conversation (about 4 KB serialized), a summary, retrieved
context, tool calls, routing and a few counters. Channels change at different rates, so
``put`` carries new values for 4 to 10 of them (the conversation every step), as
LangGraph's ``new_versions`` does. Every value is a pure function of (channel, version
number): what a saver returns is compared with what was put without keeping copies.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

#: Messages in the conversation channel of every checkpoint.
CONVERSATION = 20
#: Distinct messages the conversations are cut from (prime: windows rarely repeat).
_POOL_SIZE = 97
#: channel -> a new value every that many steps (0: set at step 0, never changed).
CHANNELS: dict[str, int] = {
    "messages": 1,
    "step": 1,
    "route": 1,
    "remaining_steps": 1,
    "tool_calls": 2,
    "scratchpad": 3,
    "context": 5,
    "summary": 10,
    "user_profile": 0,
    "flags": 0,
}
#: Metadata filter of the ``list_filter`` operation: every third checkpoint matches.
FILTER = {"source": "input"}
#: Writes of one ``put_writes`` call.
WRITES_PER_TASK = 3
TASK_PATH = "~__pregel_pull, agent"

_SENTENCES = (
    "the order shipped yesterday and the tracking number should arrive by email soon",
    "can you check whether my refund went through for the blue jacket I returned",
    "sure here is what I found in your account history for the last three months",
    "please summarise the policy on exchanges and tell me the deadline for mine",
)
_WORDS = [word for sentence in _SENTENCES for word in sentence.split()]


def _text(seed: int, chars: int) -> str:
    """Deterministic English-looking text of exactly ``chars`` characters."""
    words: list[str] = []
    size = 0
    i = seed
    while size < chars:
        word = _WORDS[(i * 7 + 3) % len(_WORDS)]
        words.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(words)[:chars]


def _pool() -> list[BaseMessage]:
    pool: list[BaseMessage] = []
    for k in range(_POOL_SIZE):
        content = _text(k, 20 + (k * 37) % 50)  # 20..69 characters, 45 on average
        cls = HumanMessage if k % 2 == 0 else AIMessage
        pool.append(cls(content=content, id=f"msg-{k:04d}"))
    return pool


_POOL = _pool()


def version_number(channel: str, step: int) -> int:
    period = CHANNELS[channel]
    return 1 if period == 0 else step // period + 1


def version(channel: str, step: int) -> str:
    """LangGraph's version format (``<counter:032>.<fraction>``), deterministic."""
    n = version_number(channel, step)
    return f"{n:032}.{(n * 7919 + len(channel)) % 99991 / 99991:.16f}"


def changed(step: int) -> list[str]:
    """Channels with a new value at ``step``."""
    return [c for c, p in CHANNELS.items() if step == 0 or (p and step % p == 0)]


@functools.lru_cache(maxsize=4096)
def value(channel: str, n: int) -> Any:
    """The value of ``channel`` at its version number ``n`` (cached: shared, not mutated)."""
    if channel == "messages":
        return [_POOL[(n + j) % _POOL_SIZE] for j in range(CONVERSATION)]
    if channel == "step":
        return n - 1
    if channel == "route":
        return "agent" if n % 2 else "tools"
    if channel == "remaining_steps":
        return 25 - n % 25
    if channel == "tool_calls":
        return [{"name": "search_orders", "args": {"query": _text(n, 30)}, "id": f"call-{n}"}]
    if channel == "scratchpad":
        return f"thought {n}: " + _text(n, 80)
    if channel == "context":
        return [{"source": f"kb/doc-{n}-{j}", "text": _text(n + j, 150)} for j in range(3)]
    if channel == "summary":
        return f"Summary v{n}: " + _text(n, 300)
    if channel == "user_profile":
        return {"name": "Bob", "locale": "en-GB", "plan": "pro", "tags": ["returns", "vip"]}
    if channel == "flags":
        return {"streaming": True, "debug": False}
    raise KeyError(channel)


def values_at(step: int) -> dict[str, Any]:
    return {c: value(c, version_number(c, step)) for c in CHANNELS}


def checkpoint(step: int, checkpoint_id: str) -> Checkpoint:
    cp = empty_checkpoint()
    cp["id"] = checkpoint_id
    cp["ts"] = datetime.now(timezone.utc).isoformat()
    cp["channel_values"] = values_at(step)
    cp["channel_versions"] = {c: version(c, step) for c in CHANNELS}
    cp["versions_seen"] = {
        "__input__": {},
        "agent": {"messages": version("messages", max(step - 1, 0))},
    }
    cp["updated_channels"] = changed(step)
    return cp


def new_versions(step: int) -> dict[str, str]:
    return {c: version(c, step) for c in changed(step)}


def metadata(step: int) -> dict[str, Any]:
    return {
        "source": "input" if step % 3 == 0 else "loop",
        "step": step,
        "parents": {},
        "user_id": "bench-user",
    }


def matches_filter(step: int) -> bool:
    return step % 3 == 0


def writes(sample: int) -> tuple[str, list[tuple[str, Any]]]:
    """Task id and the (channel, value) writes of one ``put_writes`` call."""
    task_id = f"{sample:08x}-5bd2-4c1e-9a57-{sample * 2654435761 % 16**12:012x}"
    reply = AIMessage(content=_text(sample, 200), id=f"run-{task_id}")
    return task_id, [
        ("messages", [reply]),
        ("route", "tools"),
        ("scratchpad", f"tool result {sample}: " + _text(sample + 1, 60)),
    ]


def config(thread_id: str, checkpoint_id: str | None = None) -> Any:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Entry:
    """What was put: a checkpoint (by its step) and the pending writes put on it.

    ``writes`` is None when a ``put_writes`` on it failed (its state is then unknown)."""

    checkpoint_id: str
    step: int
    parent_id: str | None
    writes: list[tuple[str, str, Any]] | None = field(default_factory=list)


class ThreadLog:
    """The checkpoints put on one thread, oldest first."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.entries: list[Entry] = []
        self.matching: list[int] = []  # indexes of entries that match FILTER

    @property
    def latest(self) -> Entry | None:
        return self.entries[-1] if self.entries else None

    @property
    def next_step(self) -> int:
        return len(self.entries)

    def new_id(self) -> str:
        """A checkpoint id that sorts after every id of the thread, as LangGraph's do."""
        cid = str(uuid6(clock_seq=self.next_step))
        latest = self.latest
        while latest is not None and cid <= latest.checkpoint_id:
            cid = str(uuid6(clock_seq=self.next_step))
        return cid

    def add(self, checkpoint_id: str, step: int) -> Entry:
        latest = self.latest
        entry = Entry(checkpoint_id, step, latest.checkpoint_id if latest else None)
        if matches_filter(step):
            self.matching.append(len(self.entries))
        self.entries.append(entry)
        return entry

    def newest(self, n: int) -> list[Entry]:
        return self.entries[: -n - 1 : -1]

    def newest_matching(self, n: int) -> list[Entry]:
        return [self.entries[i] for i in self.matching[: -n - 1 : -1]]

    def parent_config(self) -> Any:
        latest = self.latest
        return config(self.thread_id, latest.checkpoint_id if latest else None)


def put_args(log: ThreadLog) -> tuple[Any, Checkpoint, dict[str, Any], dict[str, str], int]:
    """(config, checkpoint, metadata, new_versions, step) of the next put on ``log``."""
    step = log.next_step
    cid = log.new_id()
    return log.parent_config(), checkpoint(step, cid), metadata(step), new_versions(step), step


def put_next(saver: Any, log: ThreadLog) -> None:
    """Puts the next checkpoint of ``log``'s thread with ``saver`` (sync) and records it."""
    config, cp, meta, versions, step = put_args(log)
    saver.put(config, cp, meta, versions)
    log.add(cp["id"], step)


def thread_cycle(logs: list[ThreadLog]) -> Iterator[ThreadLog]:
    while True:
        yield from logs
