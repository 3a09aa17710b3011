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
    ``many``: the method returns an iterator (``list``), consumed inside the timing.
    ``timed`` False: its errors count against ``op`` but its time does not (a check
    made after the measured calls)."""

    op: str | None
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    many: bool = False
    timed: bool = True


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


class _Steps:
    """What both drivers do around a call: walk the plan, count, time, record errors."""

    def __init__(
        self, plan: Plan, records: dict[str, OpRecord], counting: Counting | None, timed: bool
    ) -> None:
        self.plan = plan
        self.records = records
        self.counting = counting
        self.timed = timed

    def first(self) -> Call | None:
        return next(self.plan, None)

    def begin(self, step: Call) -> int:
        if self.counting is not None and step.op is not None:
            self.counting.start()
        return now_ns()

    def failed(self, step: Call, exc: Exception) -> Any:
        if step.op is not None:
            self.records[step.op].error(exc)
        return FAILED

    def end(self, step: Call, t0: int, t1: int, result: Any) -> Call | None:
        """Books the call; the plan's next step, or None when it is done."""
        if step.op is not None:
            if self.counting is not None:
                self.counting.stop(step.op)
            if self.timed and step.timed and result is not FAILED:
                self.records[step.op].samples.append(t1 - t0)
        try:
            return self.plan.send(result)
        except StopIteration:
            return None


def run_sync(
    saver: Any,
    plan: Plan,
    records: dict[str, OpRecord],
    *,
    counting: Counting | None = None,
    timed: bool = True,
) -> None:
    steps = _Steps(plan, records, counting, timed)
    step = steps.first()
    while step is not None:
        method = getattr(saver, step.method)
        t0 = steps.begin(step)
        try:
            call = method(*step.args, **step.kwargs)
            result = list(call) if step.many else call
        except Exception as exc:
            result = steps.failed(step, exc)
        step = steps.end(step, t0, now_ns(), result)


async def run_async(
    saver: Any,
    plan: Plan,
    records: dict[str, OpRecord],
    *,
    counting: Counting | None = None,
    timed: bool = True,
) -> None:
    steps = _Steps(plan, records, counting, timed)
    step = steps.first()
    while step is not None:
        method = getattr(saver, "a" + step.method)
        t0 = steps.begin(step)
        try:
            call = method(*step.args, **step.kwargs)
            result = [item async for item in call] if step.many else await call
        except Exception as exc:
            result = steps.failed(step, exc)
        step = steps.end(step, t0, now_ns(), result)
