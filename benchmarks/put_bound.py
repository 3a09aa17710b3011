"""The least client latency a put can have that serializes like InMemorySaver and makes
one atomic request doing the least a put must do, beside the AWS saver's put.

``python -m benchmarks.put_bound [--rounds 15] [--batch 40]`` (about a minute): on an
embedded Valkey, interleaved rounds of sync puts on threads of 10 checkpoints:

- **aws**: the AWS saver's ``put`` (when installed);
- **ours**: this saver's ``put``;
- **inmemory**: ``InMemorySaver.put``, the serializing every saver does;
- **bound**: ``InMemorySaver.put`` followed by one ``EVALSHA`` of the lean put of
  :mod:`.lean_bounds` (the record, its order entry, the new values and content, one
  ``HMGET`` checking the content left out; none of this saver's other checks) carrying
  the keys and arguments this saver sent for the same put. The arguments are made
  beforehand, so the bound pays nothing for cutting and digesting values: it is what a
  put would cost whose composing were free. The lean puts replay this saver's puts in
  order on a second server, so the content each one leaves out is there.

Each row gives the median per round, then the median and spread over rounds, and the
AWS saver's median divided by each (the issue's target is ``put`` ≥ 1.0× the AWS saver).
A bound below 1.0× means no design with one request per put of this saver's arguments,
doing at least the lean script's work, can meet the target on this machine, whatever its
client costs beyond InMemorySaver's serializing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

from . import lean_bounds, workload
from .cost import script_arguments
from .savers import AwsValkeyAdapter

HISTORY = 10


def _capture(saver: PlainRedisSaver, log: workload.ThreadLog) -> tuple[int, tuple[Any, ...]]:
    """This saver's put of the next checkpoint of ``log``'s thread, and the EVALSHA
    arguments (numkeys, keys and arguments) it sent."""
    sent = script_arguments(saver, lambda: workload.put_next(saver, log))
    assert sent is not None, "the put sent no script"
    return sent


class Bound:
    """InMemorySaver's put plus the lean put of the captured arguments, one per call."""

    def __init__(self, shadow: Any, sha: str, calls: list[tuple[int, tuple[Any, ...]]]) -> None:
        from langgraph.checkpoint.memory import InMemorySaver

        self.memory = InMemorySaver()
        self.shadow = shadow
        self.sha = sha
        self.calls = iter(calls)

    def put(self, config: Any, cp: Any, meta: Any, versions: Any) -> None:
        numkeys, args = next(self.calls)
        self.memory.put(config, cp, meta, versions)
        self.shadow.evalsha(self.sha, numkeys, *args)


class Puts:
    """Puts of one kind on threads of HISTORY checkpoints in rotation; only the call
    is timed, not the making of its arguments (as in the operation benchmark)."""

    def __init__(self, name: str, put: Callable[..., Any]) -> None:
        self.put = put
        self.logs = self._rotation(name)

    @staticmethod
    def _rotation(name: str) -> Any:
        t = 0
        while True:
            log = workload.ThreadLog(f"{name}-{t}")
            for _ in range(HISTORY):
                yield log
            t += 1

    def timed(self, n: int) -> list[float]:
        out = []
        for _ in range(n):
            log = next(self.logs)
            config, cp, meta, versions, step = workload.put_args(log)
            start = time.perf_counter()
            self.put(config, cp, meta, versions)
            out.append((time.perf_counter() - start) * 1e6)
            log.add(cp["id"], step)
        return out


def run(rounds: int, batch: int) -> dict[str, list[float]]:
    """Median µs per round of each kind of put."""
    with EmbeddedServer() as main_server, EmbeddedServer() as shadow_server:
        client = redis.Redis.from_url(main_server.url)
        shadow = redis.Redis.from_url(shadow_server.url)
        puts = (rounds + 1) * batch
        # The captured puts: threads of HISTORY checkpoints, as the operation benchmark's
        # H = 10, each put's arguments with the content it leaves out appended.
        source = PlainRedisSaver(client, key_prefix="bound-source")
        calls: list[tuple[int, tuple[Any, ...]]] = []
        for t in range(puts // HISTORY + 1):
            log = workload.ThreadLog(f"t{t}")
            for _ in range(HISTORY):
                numkeys, args = _capture(source, log)
                keys, argv = list(args[:numkeys]), list(args[numkeys:])
                argv.append(lean_bounds.unsent_references("put_checkpoint", argv))
                calls.append((numkeys, (*keys, *argv)))
        sha = shadow.script_load(lean_bounds.LEAN["put_checkpoint"])
        bound = Bound(shadow, sha, calls)
        ours = PlainRedisSaver(client, key_prefix="bound-ours")
        ours.setup()
        kinds = {
            "bound": Puts("bound", bound.put),
            "ours": Puts("ours", ours.put),
            "inmemory": Puts("inmemory", bound.memory.put),
        }
        if AwsValkeyAdapter.missing() is None:
            aws = AwsValkeyAdapter(main_server.url, "bound").sync()
            kinds["aws"] = Puts("aws", aws.put)
        for puts_of in kinds.values():  # warm-up: one batch each, not kept
            puts_of.timed(batch)
        medians: dict[str, list[float]] = {kind: [] for kind in kinds}
        order = list(kinds)
        gc.collect()
        gc.freeze()
        try:
            for r in range(rounds):
                for kind in order[r % len(order) :] + order[: r % len(order)]:
                    gc.disable()
                    try:
                        medians[kind].append(statistics.median(kinds[kind].timed(batch)))
                    finally:
                        gc.enable()
        finally:
            gc.unfreeze()
        client.close()
        shadow.close()
        return medians


def table(title: str, medians: dict[str, list[float]], kinds: tuple[str, ...]) -> list[str]:
    """Rows of ``kinds`` (those measured): the median of the round medians, their range,
    and the AWS saver's median divided by it."""
    lines = [
        f"| {title} | median of round medians | spread over rounds | the AWS saver's ÷ this |",
        "|---|---|---|---|",
    ]
    aws = statistics.median(medians["aws"]) if "aws" in medians else None
    for kind in kinds:
        if kind not in medians:
            continue
        values = medians[kind]
        mid = statistics.median(values)
        ratio = f"{aws / mid:.2f}×" if aws else "–"
        spread = f"{min(values):.1f}–{max(values):.1f} µs"
        lines.append(f"| {kind} | {mid:.1f} µs | {spread} | {ratio} |")
    return lines


def report(medians: dict[str, list[float]]) -> str:
    lines = table(
        "put (sync, threads of 10 checkpoints)", medians, ("aws", "ours", "inmemory", "bound")
    )
    if "aws" in medians:
        per_round = [a / b for a, b in zip(medians["aws"], medians["bound"], strict=True)]
        lines.append(
            f"\nThe bound per round: {min(per_round):.2f}–{max(per_round):.2f}× the AWS "
            "saver's put of the same round."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.put_bound")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=40)
    args = parser.parse_args(argv)
    print(report(run(args.rounds, args.batch)))


if __name__ == "__main__":
    main()
