"""Per-operation latency, round trips and server commands, on threads of H checkpoints.

For each history length H every saver gets its own threads of H checkpoints (built with
``put`` in a loop). Then, sync and async in turn: a warm-up, a counted pass (round trips
on the wire, commands in ``INFO commandstats``) and the timed rounds, each round running
one batch of every operation for every history length and every saver, in an order
that rotates from round to round. ``delete_thread`` is measured on extra threads of H
checkpoints that are built for it and deleted one per round (counted while timed: the
counter adds a microsecond or two). Every answer is checked against what was put.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import math
import random
from collections.abc import Generator, Iterator
from typing import Any

import redis
import redis.asyncio

from . import workload
from .context import MODES, Context
from .driver import FAILED, Call, Counting, Plan, run_async, run_sync
from .floor import FloorPhase
from .measure import count_wire, delete_keys, gc_freeze, gc_paused, memory_usage, scan_keys
from .validate import check_list, check_tuple
from .workload import Entry, ThreadLog

OPS = ("put", "put_writes", "get_latest", "get_by_id", "list", "list_filter", "delete_thread")
LIST_LIMIT = 10
#: A put sample may grow its thread by at most this share of H (more threads otherwise).
GROWTH = 0.25
#: The floor (PING, HSET 2 KB) is measured between the rounds: samples per round.
FLOOR = "floor"
FLOOR_PER_ROUND = 100
FLOOR_WARMUP = 50


class History:
    """The threads of one saver at one history length; writers and readers rotate."""

    def __init__(self, logs: list[ThreadLog]) -> None:
        self.logs = logs
        self._writers = itertools.cycle(logs)
        self._readers = itertools.cycle(logs)

    def writer(self) -> ThreadLog:
        return next(self._writers)

    def reader(self) -> ThreadLog:
        return next(self._readers)


def _checkpoint_id(config: Any) -> Any:
    try:
        return config["configurable"]["checkpoint_id"]
    except (KeyError, TypeError):
        return None


def plan_put(log: ThreadLog, records: dict[str, Any]) -> Generator[Call, Any, Entry | None]:
    """One put on ``log``; the entry it added, or None if the call raised."""
    config, cp, meta, versions, step = workload.put_args(log)
    out = yield Call("put", "put", (config, cp, meta, versions))
    if out is FAILED:
        return None
    entry = log.add(cp["id"], step)
    if _checkpoint_id(out) != entry.checkpoint_id:
        records["put"].mismatch(f"put returned config {out!r}, expected {entry.checkpoint_id}")
    return entry


def plan_put_writes(
    log: ThreadLog, entry: Entry, records: dict[str, Any], task_ids: Iterator[int]
) -> Plan:
    """The pending writes of one task on ``entry``, remembered for the reads' checks."""
    task_id, writes = workload.writes(next(task_ids))
    target = workload.config(log.thread_id, entry.checkpoint_id)
    done = yield Call("put_writes", "put_writes", (target, writes, task_id, workload.TASK_PATH))
    entry.writes = None if done is FAILED else [(task_id, c, v) for c, v in writes]


def plan_ops(
    hist: History,
    sizes: dict[str, int],
    records: dict[str, Any],
    rng: random.Random,
    task_ids: Iterator[int],
) -> Plan:
    """put (+ put_writes on the new checkpoint), get_tuple latest and by id, list and
    list with a metadata filter; ``sizes`` calls of each."""
    for _ in range(sizes.get("put", 0)):
        log = hist.writer()
        entry = yield from plan_put(log, records)
        if entry is not None:
            yield from plan_put_writes(log, entry, records, task_ids)
    for i in range(sizes.get("get_latest", 0)):
        log = hist.reader()
        tup = yield Call("get_latest", "get_tuple", (workload.config(log.thread_id),))
        if tup is not FAILED and (problem := check_tuple(tup, log.latest, deep=i == 0)):
            records["get_latest"].mismatch(problem)
    for i in range(sizes.get("get_by_id", 0)):
        log = hist.reader()
        entry = rng.choice(log.entries)
        config = workload.config(log.thread_id, entry.checkpoint_id)
        tup = yield Call("get_by_id", "get_tuple", (config,))
        if tup is not FAILED and (problem := check_tuple(tup, entry, deep=i == 0)):
            records["get_by_id"].mismatch(problem)
    for i in range(sizes.get("list", 0)):
        log = hist.reader()
        kwargs = {"limit": LIST_LIMIT}
        items = yield Call("list", "list", (workload.config(log.thread_id),), kwargs, many=True)
        if items is not FAILED and (
            problem := check_list(items, log.newest(LIST_LIMIT), deep=i == 0)
        ):
            records["list"].mismatch(problem)
    for i in range(sizes.get("list_filter", 0)):
        log = hist.reader()
        kwargs = {"filter": dict(workload.FILTER), "limit": LIST_LIMIT}
        config = workload.config(log.thread_id)
        items = yield Call("list_filter", "list", (config,), kwargs, many=True)
        if items is not FAILED and (
            problem := check_list(items, log.newest_matching(LIST_LIMIT), deep=i == 0)
        ):
            records["list_filter"].mismatch(problem)


def plan_delete(log: ThreadLog, records: dict[str, Any]) -> Plan:
    done = yield Call("delete_thread", "delete_thread", (log.thread_id,))
    if done is FAILED:
        return
    back = yield Call(None, "get_tuple", (workload.config(log.thread_id),))
    if back is not FAILED and back is not None:
        records["delete_thread"].mismatch(
            f"get_tuple after delete_thread({log.thread_id!r}) still returns a checkpoint"
        )


class OpsPhase:
    def __init__(self, ctx: Context, floor: FloorPhase | None = None) -> None:
        self.ctx = ctx
        #: Measures the one-round-trip floor between the rounds, if given.
        self.floor = floor
        self.sizes = ctx.sizes
        self.rng = random.Random(1234)
        self.task_ids = itertools.count(1)
        self.memory: dict[str, dict[int, Any]] = {}
        self.failed_builds: dict[str, dict[int, str]] = {}

    # ---- progress

    def units(self) -> int:
        n = len(self.ctx.adapters)
        total = 0
        for level in self.sizes.levels:
            total += 2 * n + len(MODES) * n * (1 + self.sizes.rounds)
            if self.sizes.victims.get(level):
                total += n + len(MODES) * self.sizes.victims[level]
        return total

    def _tick(self, text: str | None = None) -> None:
        if text:
            self.ctx.progress.set_description_str(text)
        self.ctx.progress.update(1)

    # ---- building

    def _threads_for(self, level: int) -> int:
        puts = len(MODES) * self.sizes.put_samples()
        return max(1, math.ceil(puts / max(level * GROWTH, 10)))

    def _build(self, key: str, logs: list[ThreadLog], level: int) -> bool:
        saver = self.ctx.adapters[key].sync()
        try:
            for log in logs:
                for _ in range(level):
                    config, cp, meta, versions, step = workload.put_args(log)
                    saver.put(config, cp, meta, versions)
                    log.add(cp["id"], step)
        except Exception as exc:
            message = f"building H={level} failed: {type(exc).__name__}: {exc}"[:300]
            self.failed_builds.setdefault(key, {})[level] = message
            self.ctx.notes.append(f"{self.ctx.adapters[key].label}: {message}")
            return False
        return True

    def _thread_memory(self, key: str, logs: list[ThreadLog], level: int) -> None:
        adapter = self.ctx.adapters[key]
        if not adapter.in_server or not logs:
            return
        keys = scan_keys(self.ctx.admin, adapter.thread_patterns(logs[0].thread_id))
        total = memory_usage(self.ctx.admin, keys)
        checkpoints = len(logs[0].entries)
        self.memory.setdefault(key, {})[level] = {
            "checkpoints": checkpoints,
            "keys": len(keys),
            "bytes": total,
            "bytes_per_checkpoint": round(total / checkpoints, 1) if total else None,
        }

    # ---- the phase

    def run(self) -> None:
        ctx = self.ctx
        hist: dict[int, dict[str, History]] = {}
        for level in self.sizes.levels:
            n_threads = self._threads_for(level)
            hist[level] = {}
            for key in ctx.adapters:
                self._tick(f"H={level}: building {n_threads}x{level} checkpoints ({key})")
                logs = [ThreadLog(ctx.thread(f"h{level}-t{j}")) for j in range(n_threads)]
                if self._build(key, logs, level):
                    self._thread_memory(key, logs, level)
                    hist[level][key] = History(logs)
        gc_freeze()
        for mode in MODES:
            if mode == "sync":
                self._sync_rounds(hist)
            else:
                asyncio.run(self._async_rounds(hist))
        for level in self.sizes.levels:
            self._deletes(level, list(hist[level]))
        for level in self.sizes.levels:
            for key in ctx.adapters:
                self._tick(f"H={level}: dropping the threads ({key})")
                self._drop(key, hist[level].get(key), f"h{level}-t*")
        gc.unfreeze()
        ctx.results["history_memory"] = self.memory
        ctx.results["build_failures"] = self.failed_builds

    def _count_sizes(self) -> dict[str, int]:
        return {op: self.sizes.count_calls for op in self.sizes.batch}

    def _warm_sizes(self) -> dict[str, int]:
        return {op: self.sizes.warmup for op in self.sizes.batch}

    def _schedule(self, hist: dict[int, dict[str, History]]) -> Iterator[tuple[int, int, str]]:
        """(round, level, saver) of the timed batches: every round visits every level and
        every saver, in an order that rotates, so slow drifts of the machine fall on all
        savers and all history lengths alike."""
        levels = list(hist)
        for round_no in range(self.sizes.rounds):
            shift = round_no % len(levels)
            for i, level in enumerate(levels[shift:] + levels[:shift]):
                for key in self.ctx.order(round_no + i, list(hist[level])):
                    yield round_no, level, key
            yield round_no, 0, FLOOR

    def _sync_rounds(self, hist: dict[int, dict[str, History]]) -> None:
        ctx = self.ctx
        savers = {key: adapter.sync() for key, adapter in ctx.adapters.items()}
        for level, by_key in hist.items():
            for key, history in by_key.items():
                self._tick(f"H={level} sync: warm-up and counting ({key})")
                records = ctx.ops_records(key, "sync", level)
                plan = plan_ops(history, self._warm_sizes(), records, self.rng, self.task_ids)
                run_sync(savers[key], plan, records, timed=False)
                with count_wire() as wire:
                    counting = Counting(wire, ctx.admin if ctx.adapters[key].in_server else None)
                    sizes = self._count_sizes()
                    plan = plan_ops(history, sizes, records, self.rng, self.task_ids)
                    run_sync(savers[key], plan, records, counting=counting, timed=False)
                self._store_counts(key, "sync", level, counting)
        client = redis.Redis.from_url(ctx.url) if self.floor else None
        try:
            if self.floor:
                self.floor.sync_batch(client, FLOOR_WARMUP, record=False)
            for round_no, level, key in self._schedule(hist):
                if key == FLOOR:
                    if self.floor:
                        self.floor.sync_batch(client, FLOOR_PER_ROUND)
                    continue
                records = ctx.ops_records(key, "sync", level)
                history = hist[level][key]
                plan = plan_ops(history, self.sizes.batch, records, self.rng, self.task_ids)
                with gc_paused():
                    run_sync(savers[key], plan, records)
                self._tick(f"sync: round {round_no + 1}/{self.sizes.rounds}, H={level}")
        finally:
            if client is not None:
                client.close()

    async def _async_rounds(self, hist: dict[int, dict[str, History]]) -> None:
        ctx = self.ctx
        keys = list(ctx.adapters)
        savers = {key: await ctx.adapters[key].open_async() for key in keys}
        client: Any = None
        try:
            for level, by_key in hist.items():
                for key, history in by_key.items():
                    self._tick(f"H={level} async: warm-up and counting ({key})")
                    records = ctx.ops_records(key, "async", level)
                    sizes = self._warm_sizes()
                    plan = plan_ops(history, sizes, records, self.rng, self.task_ids)
                    await run_async(savers[key], plan, records, timed=False)
                    with count_wire() as wire:
                        admin = ctx.admin if ctx.adapters[key].in_server else None
                        counting = Counting(wire, admin)
                        sizes = self._count_sizes()
                        plan = plan_ops(history, sizes, records, self.rng, self.task_ids)
                        await run_async(savers[key], plan, records, counting=counting, timed=False)
                    self._store_counts(key, "async", level, counting)
            if self.floor:
                client = redis.asyncio.Redis.from_url(ctx.url)
                await self.floor.async_batch(client, FLOOR_WARMUP, record=False)
            for round_no, level, key in self._schedule(hist):
                if key == FLOOR:
                    if self.floor:
                        await self.floor.async_batch(client, FLOOR_PER_ROUND)
                    continue
                records = ctx.ops_records(key, "async", level)
                history = hist[level][key]
                plan = plan_ops(history, self.sizes.batch, records, self.rng, self.task_ids)
                with gc_paused():
                    await run_async(savers[key], plan, records)
                self._tick(f"async: round {round_no + 1}/{self.sizes.rounds}, H={level}")
        finally:
            for key in keys:
                await ctx.adapters[key].close_async()
            if client is not None:
                await client.aclose()

    def _store_counts(self, key: str, mode: str, level: int, counting: Counting) -> None:
        by_level = self.ctx.counts.setdefault(key, {}).setdefault(mode, {})
        stored = by_level.setdefault(level, {})
        for op, counts in counting.ops.items():
            stored[op] = counts.summary()

    # ---- delete_thread

    def _deletes(self, level: int, keys: list[str]) -> None:
        ctx = self.ctx
        n = self.sizes.victims.get(level, 0)
        if not n:
            return
        victims: dict[str, dict[str, list[ThreadLog]]] = {}
        for key in list(keys):
            self._tick(f"H={level}: building {2 * n}x{level} checkpoints to delete ({key})")
            by_mode = {
                mode: [ThreadLog(ctx.thread(f"d{level}-{mode}-{j}")) for j in range(n)]
                for mode in MODES
            }
            if self._build(key, [log for logs in by_mode.values() for log in logs], level):
                victims[key] = by_mode
            else:
                self._drop(key, None, f"d{level}-*")
        gc_freeze()
        keys = list(victims)
        for mode in MODES:
            if mode == "sync":
                self._sync_deletes(level, keys, victims, n)
            else:
                asyncio.run(self._async_deletes(level, keys, victims, n))
        for key in keys:
            self._leftovers(key, level, victims[key])

    def _sync_deletes(self, level: int, keys: list[str], victims: dict[str, Any], n: int) -> None:
        ctx = self.ctx
        countings = {}
        with count_wire() as wire:
            for j in range(n):
                for key in ctx.order(j, keys):
                    records = ctx.ops_records(key, "sync", level)
                    admin = ctx.admin if ctx.adapters[key].in_server else None
                    counting = countings.setdefault(key, Counting(wire, admin))
                    plan = plan_delete(victims[key]["sync"][j], records)
                    with gc_paused():
                        run_sync(ctx.adapters[key].sync(), plan, records, counting=counting)
                self._tick(f"H={level} sync: delete_thread {j + 1}/{n}")
        for key, counting in countings.items():
            self._store_counts(key, "sync", level, counting)

    async def _async_deletes(
        self, level: int, keys: list[str], victims: dict[str, Any], n: int
    ) -> None:
        ctx = self.ctx
        savers = {key: await ctx.adapters[key].open_async() for key in keys}
        countings = {}
        try:
            with count_wire() as wire:
                for j in range(n):
                    for key in ctx.order(j, keys):
                        records = ctx.ops_records(key, "async", level)
                        admin = ctx.admin if ctx.adapters[key].in_server else None
                        counting = countings.setdefault(key, Counting(wire, admin))
                        plan = plan_delete(victims[key]["async"][j], records)
                        with gc_paused():
                            await run_async(savers[key], plan, records, counting=counting)
                    self._tick(f"H={level} async: delete_thread {j + 1}/{n}")
        finally:
            for key in keys:
                await ctx.adapters[key].close_async()
        for key, counting in countings.items():
            self._store_counts(key, "async", level, counting)

    def _leftovers(self, key: str, level: int, by_mode: dict[str, list[ThreadLog]]) -> None:
        """Keys a deleted thread left in the server count as a wrong answer."""
        adapter = self.ctx.adapters[key]
        if not adapter.in_server:
            return
        keys = scan_keys(self.ctx.admin, adapter.thread_patterns(self.ctx.thread(f"d{level}-*")))
        if not keys:
            return
        for mode, logs in by_mode.items():
            records = self.ctx.ops_records(key, mode, level)
            for log in logs:
                tid = log.thread_id.encode()
                left = [k for k in keys if tid + b"}" in k or tid + b":" in k]
                if left:
                    records["delete_thread"].mismatch(
                        f"delete_thread({log.thread_id!r}) left {len(left)} keys, e.g. {left[0]!r}"
                    )
        delete_keys(self.ctx.admin, adapter.thread_patterns(self.ctx.thread(f"d{level}-*")))

    def _drop(self, key: str, hist: History | None, thread_glob: str) -> None:
        """Free the level's threads: through the saver, then any key it left behind."""
        adapter = self.ctx.adapters[key]
        if hist is not None:
            saver = adapter.sync()
            for log in hist.logs:
                # failures are reported by the delete_thread samples, not here
                with contextlib.suppress(Exception):
                    saver.delete_thread(log.thread_id)
        if adapter.in_server:
            delete_keys(self.ctx.admin, adapter.thread_patterns(self.ctx.thread(thread_glob)))
