"""How fast a ``get_tuple`` (latest) of a checkpoint the process holds could be, beside
the AWS saver's and this saver's.

``python -m benchmarks.get_bound [--threads 243] [--rounds 15] [--batch 40]`` (about a
minute): on an embedded Valkey, threads of 10 checkpoints per saver (the operation
benchmark's H = 10). Each round first puts a checkpoint and a task's three writes on
``batch`` threads of every saver (as that benchmark does between its reads), then times
``batch`` reads of each kind, in an order that rotates from round to round:

- **aws**: the AWS saver's ``get_tuple`` (two round trips);
- **ours**: this saver's, which the server confirms against the copy the process holds
  (one ``EVALSHA``);
- **bound-checks**: ``InMemorySaver.get_tuple`` (the decoding every saver does) plus one
  ``EVALSHA`` of a flat script making the calls this saver's read makes (the newest
  entry of the order index, the write generation, ``HEXISTS`` of the record and of the
  write index: the eviction checks), with the arguments this saver sends, hints included;
- **bound-min**: the same with a script that only reads the write generation.

Each row gives the median of the round medians, their range, and the AWS saver's median
divided by each (the issue's target is ≥ 1.2×). The distance from ``ours`` to
``bound-checks`` is what this saver's client and script add to a read that keeps the
same checks.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

from . import workload
from .cost import script_arguments
from .put_bound import table
from .savers import AwsValkeyAdapter

HISTORY = 10

#: One call: the write generation.
MIN_SCRIPT = "return redis.call('HGET', KEYS[3], '=g')"
#: The calls this saver's confirmed read makes, flat (ARGV as get_checkpoint.lua's:
#: expiry, namespace, id, hints, known id, generation, flag).
CHECKS_SCRIPT = r"""
local ns, cid = ARGV[2], ARGV[5]
redis.call('ZREVRANGEBYLEX', KEYS[2], '(' .. ns .. '\255', '(' .. ns, 'LIMIT', 0, 1)
redis.call('HGET', KEYS[3], '=g')
redis.call('HEXISTS', KEYS[1], ns .. cid)
redis.call('HEXISTS', KEYS[4], ns .. #cid .. ':' .. cid)
return {cid, '', {}, '', {}, {}}
"""


class _Reads:
    """Reads of one kind over threads in rotation; only the read is timed."""

    def __init__(self, logs: list[workload.ThreadLog], read: Callable[[Any], Any]) -> None:
        self.logs = itertools.cycle(logs)
        self.read = read

    def timed(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            config = workload.config(next(self.logs).thread_id)
            start = time.perf_counter()
            self.read(config)
            out.append((time.perf_counter() - start) * 1e6)
        return out


def run(threads: int, rounds: int, batch: int) -> dict[str, list[float]]:
    """Median µs per round of each kind of read."""
    from langgraph.checkpoint.memory import InMemorySaver

    with EmbeddedServer() as server:
        client = redis.Redis.from_url(server.url)
        savers: dict[str, Any] = {
            "ours": PlainRedisSaver(client, key_prefix="get-bound"),
            "inmemory": InMemorySaver(),
        }
        savers["ours"].setup()
        if AwsValkeyAdapter.missing() is None:
            savers["aws"] = AwsValkeyAdapter(server.url, "get-bound").sync()
        logs = {key: [workload.ThreadLog(f"{key}-{i}") for i in range(threads)] for key in savers}
        for key, saver in savers.items():
            for log in logs[key]:
                for _ in range(HISTORY):
                    workload.put_next(saver, log)
        writers = {key: itertools.cycle(logs[key]) for key in savers}
        task_ids = itertools.count(1)

        def write(key: str) -> None:
            saver = savers[key]
            for _ in range(batch):
                log = next(writers[key])
                workload.put_next(saver, log)
                task_id, writes = workload.writes(next(task_ids))
                target = workload.config(log.thread_id, log.latest.checkpoint_id)  # type: ignore[union-attr]
                saver.put_writes(target, writes, task_id, workload.TASK_PATH)

        # The arguments of this saver's confirmed reads, replayed by the bounds.
        write("ours")
        captured = []
        for log in logs["ours"][: 2 * batch]:
            config = workload.config(log.thread_id)
            sent = script_arguments(savers["ours"], lambda c=config: savers["ours"].get_tuple(c))
            assert sent is not None
            captured.append(sent)
        requests: Iterator[tuple[int, tuple[Any, ...]]] = itertools.cycle(captured)
        memory = savers["inmemory"]

        def bound(sha: str) -> Callable[[Any], Any]:
            def read(config: Any) -> None:
                numkeys, args = next(requests)
                memory.get_tuple(config)
                client.evalsha(sha, numkeys, *args)

            return read

        kinds = {
            "ours": _Reads(logs["ours"], savers["ours"].get_tuple),
            "bound-checks": _Reads(logs["inmemory"], bound(client.script_load(CHECKS_SCRIPT))),
            "bound-min": _Reads(logs["inmemory"], bound(client.script_load(MIN_SCRIPT))),
        }
        if "aws" in savers:
            kinds["aws"] = _Reads(logs["aws"], savers["aws"].get_tuple)
        medians: dict[str, list[float]] = {kind: [] for kind in kinds}
        order = list(kinds)
        gc.collect()
        gc.freeze()
        try:
            for r in range(rounds + 1):  # the first round warms up and is not kept
                for key in savers:
                    write(key)
                for kind in order[r % len(order) :] + order[: r % len(order)]:
                    gc.disable()
                    try:
                        times = kinds[kind].timed(batch)
                    finally:
                        gc.enable()
                    if r:
                        medians[kind].append(statistics.median(times))
        finally:
            gc.unfreeze()
        client.close()
        return medians


def report(medians: dict[str, list[float]]) -> str:
    kinds = ("aws", "ours", "bound-checks", "bound-min")
    return "\n".join(table("get_tuple (latest, sync, H = 10)", medians, kinds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.get_bound")
    parser.add_argument("--threads", type=int, default=243)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=40)
    args = parser.parse_args(argv)
    print(report(run(args.threads, args.rounds, args.batch)))


if __name__ == "__main__":
    main()
