"""What a thread's reference counts cost in memory: groundwork for collecting unreferenced
values instead of counting on every write (issue 12; see ``benchmarks/COLLECTION.md``).

``python -m benchmarks.collection [--turns 100] [--history 100]`` (about half a minute;
one embedded Valkey). It writes the benchmark's thread of ``--history`` checkpoints and
the cost phase's two chatbots for ``--turns`` turns, then reports for each thread: the
fields of its channel-values hash, how many of them are reference counts (fields
starting with ``#``: a blob's count ``#<NS><ref>`` or a piece of content's ``#*<digest>``),
and ``MEMORY USAGE`` of the thread's keys with and without those fields (measured on a
copy of the values hash with the counts deleted).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from langchain_core.messages import HumanMessage

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

from . import workload
from .cost import STYLES, chatbot
from .e2e import StandInChatModel, user_text
from .measure import memory_usage

#: Every reference count field starts with this byte (see ``adjust`` and ``CONTENT_COUNT``
#: in ``lua/includes/common.lua``); no other field of the values hash does.
COUNT = b"#"
#: Suffix of the scratch copy of a values hash measured without its counts.
SCRATCH = ":without-counts"


def count_fields(values: Mapping[bytes, bytes]) -> list[bytes]:
    """The reference count fields of a thread's channel-values hash."""
    return [field for field in values if field.startswith(COUNT)]


@dataclass(frozen=True)
class CountShare:
    """One thread's reference counts against the whole thread, in fields and bytes."""

    label: str
    fields: int
    counts: int
    thread_bytes: int
    values_bytes: int
    values_without_counts: int

    @property
    def saved_share(self) -> float:
        """The share of the thread's memory its counts take."""
        return (self.values_bytes - self.values_without_counts) / self.thread_bytes


def count_share(admin: Any, saver: PlainRedisSaver, thread_id: str, label: str) -> CountShare:
    """Measures ``thread_id``'s counts on the server ``admin`` talks to (the saver's own
    client may lack the ACL for ``COPY`` and ``MEMORY``)."""
    keys = saver._core.keys.thread(thread_id)
    values = admin.hgetall(keys.blobs)
    counts = count_fields(values)
    thread_bytes = memory_usage(admin, [k.encode() for k in keys if admin.exists(k)])
    values_bytes = memory_usage(admin, [keys.blobs.encode()])
    scratch = keys.blobs + SCRATCH  # same hash tag: one slot, as the thread's keys
    admin.copy(keys.blobs, scratch, replace=True)
    try:
        if counts:
            admin.hdel(scratch, *counts)
        without = memory_usage(admin, [scratch.encode()])
    finally:
        admin.delete(scratch)
    if thread_bytes is None or values_bytes is None or without is None:
        raise RuntimeError("the server refused MEMORY USAGE")
    return CountShare(label, len(values), len(counts), thread_bytes, values_bytes, without)


def measure(url: str, turns: int, history: int) -> list[CountShare]:
    """The benchmark's thread and both chatbots, written with this saver at ``url``."""
    admin = redis.Redis.from_url(url)
    # Counted threads: what the counts cost is what this measures.
    saver = PlainRedisSaver(
        redis.Redis.from_url(url), key_prefix="collection", reference_counts=True
    )
    saver.setup()
    log = workload.ThreadLog("benchmark")
    for _ in range(history):
        workload.put_next(saver, log)
    out = [count_share(admin, saver, log.thread_id, f"benchmark thread, {history} checkpoints")]
    for style in STYLES:
        bot = chatbot(style.key, saver, StandInChatModel())
        thread_id = f"chatbot-{style.key}"
        for turn in range(turns):
            bot.invoke([HumanMessage(user_text(turn))], {"configurable": {"thread_id": thread_id}})
        out.append(count_share(admin, saver, thread_id, f"{style.label}, {turns} turns"))
    return out


def report(rows: list[CountShare]) -> str:
    lines = [
        "| thread | values-hash fields | of them counts | thread memory | values hash | "
        "values hash without counts | counts' share of the thread |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.fields:,} | {r.counts:,} | {r.thread_bytes:,} B | "
            f"{r.values_bytes:,} B | {r.values_without_counts:,} B | {r.saved_share:.0%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collection")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--history", type=int, default=100)
    args = parser.parse_args(argv)
    with EmbeddedServer("valkey") as server:
        print(report(measure(server.url, args.turns, args.history)))


if __name__ == "__main__":
    main()
