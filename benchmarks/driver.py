"""Run a plan of saver calls, sync or async, timing each call and checking its answer.

A plan is a generator that yields :class:`Call` steps and is sent each call's result
(or :data:`FAILED` when the call raised). It decides what to call and checks the answers
itself, so the sync and async drivers share every line of benchmark logic; the drivers
only time the call itself (``perf_counter_ns`` around it, nothing else).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from .measure import OpRecord, WireCounter, commandstats, now_ns, stats_delta

FAILED: Any = object()


@dataclass(frozen=True)
class Call:
    """One saver call. ``op`` None: not measured (e.g. reading back after a delete).
    ``many``: the method returns an iterator (``list``), consumed inside the timing."""

    op: str | None
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    many: bool = False


Plan = Generator[Call, Any, None]


@dataclass
class OpCounts:
    """Round trips and commands of the counted calls of one operation."""

    calls: int = 0
    round_trips: int = 0
    top: Counter[str] = field(default_factory=Counter)
    server: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        n = max(self.calls, 1)

        def per(x: float) -> float:
            return round(x / n, 2)

        return {
            "counted_calls": self.calls,
            "round_trips": per(self.round_trips),
            "commands_top": per(sum(self.top.values())),
            "commands_total": per(sum(self.server.values())) if self.server else None,
            "top_by_command": {k: per(v) for k, v in sorted(self.top.items())},
            "server_by_command": {k: per(v) for k, v in sorted(self.server.items())},
        }


class Counting:
    """Wire and ``INFO commandstats`` accounting for the calls of a driver run."""

    def __init__(self, wire: WireCounter, admin: Any) -> None:
        self.wire = wire
        self.admin = admin
        self.ops: defaultdict[str, OpCounts] = defaultdict(OpCounts)
        self._before: dict[str, int] | None = None

    def start(self) -> None:
        self._before = commandstats(self.admin) if self.admin is not None else None
        self.wire.reset()

    def stop(self, op: str) -> None:
        round_trips, top = self.wire.round_trips, self.wire.commands.copy()
        after = commandstats(self.admin) if self.admin is not None else None
        counts = self.ops[op]
        counts.calls += 1
        counts.round_trips += round_trips
        counts.top.update(top)
        counts.server.update(stats_delta(self._before, after))


def _finish(
    records: dict[str, OpRecord], step: Call, t0: int, t1: int, result: Any, timed: bool
) -> None:
    if step.op is not None and timed and result is not FAILED:
        records[step.op].samples.append(t1 - t0)


def run_sync(
    saver: Any,
    plan: Plan,
    records: dict[str, OpRecord],
    *,
    counting: Counting | None = None,
    timed: bool = True,
) -> None:
    try:
        step = next(plan)
    except StopIteration:
        return
    while True:
        method = getattr(saver, step.method)
        measured = step.op is not None
        if counting is not None and measured:
            counting.start()
        t0 = now_ns()
        try:
            if step.many:
                result = list(method(*step.args, **step.kwargs))
            else:
                result = method(*step.args, **step.kwargs)
        except Exception as exc:
            result = FAILED
            if measured:
                records[step.op].error(exc)  # type: ignore[index]
        t1 = now_ns()
        if counting is not None and measured:
            counting.stop(step.op)  # type: ignore[arg-type]
        _finish(records, step, t0, t1, result, timed)
        try:
            step = plan.send(result)
        except StopIteration:
            return


async def run_async(
    saver: Any,
    plan: Plan,
    records: dict[str, OpRecord],
    *,
    counting: Counting | None = None,
    timed: bool = True,
) -> None:
    try:
        step = next(plan)
    except StopIteration:
        return
    while True:
        method = getattr(saver, "a" + step.method)
        measured = step.op is not None
        if counting is not None and measured:
            counting.start()
        t0 = now_ns()
        try:
            if step.many:
                result = [item async for item in method(*step.args, **step.kwargs)]
            else:
                result = await method(*step.args, **step.kwargs)
        except Exception as exc:
            result = FAILED
            if measured:
                records[step.op].error(exc)  # type: ignore[index]
        t1 = now_ns()
        if counting is not None and measured:
            counting.stop(step.op)  # type: ignore[arg-type]
        _finish(records, step, t0, t1, result, timed)
        try:
            step = plan.send(result)
        except StopIteration:
            return
