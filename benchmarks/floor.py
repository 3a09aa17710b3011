"""The floor: one round trip from Python to the same server, with redis-py (hiredis).

PING, and HSET of a 2 KB value (about what a checkpoint write carries), sync and async.
When the operation benchmark runs, it measures a batch of these between its rounds, so
the floor describes the same machine state as the savers' numbers; otherwise this phase
runs on its own at the start and again at the end of the suite, both halves pooled.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import redis
import redis.asyncio

from .context import Context
from .measure import OpRecord, gc_paused, now_ns

VALUE = b"x" * 2048


class FloorPhase:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.key = f"{ctx.run}-floor"
        self.records: dict[str, dict[str, OpRecord]] = {
            "sync": defaultdict(OpRecord),
            "async": defaultdict(OpRecord),
        }

    def units(self) -> int:
        return 2 * self.ctx.sizes.floor_rounds  # per half

    def run(self) -> None:
        """One half of the floor samples (call at the start and at the end)."""
        sizes = self.ctx.sizes
        rounds = sizes.floor_rounds
        client = redis.Redis.from_url(self.ctx.url)
        try:
            self.sync_batch(client, 50, record=False)
            for round_no in range(rounds):
                self.sync_batch(client, sizes.floor_batch)
                self.ctx.progress.set_description_str(f"floor sync {round_no + 1}/{rounds}")
                self.ctx.progress.update(1)
        finally:
            client.close()
        asyncio.run(self._async_rounds(rounds, sizes.floor_batch))

    def sync_batch(self, client: Any, n: int, *, record: bool = True) -> None:
        ping, hset = self.records["sync"]["ping"], self.records["sync"]["hset_2k"]
        with gc_paused():
            for i in range(n):
                t0 = now_ns()
                client.ping()
                t1 = now_ns()
                client.hset(self.key, str(i % 16), VALUE)
                t2 = now_ns()
                if record:
                    ping.samples.append(t1 - t0)
                    hset.samples.append(t2 - t1)

    async def async_batch(self, client: Any, n: int, *, record: bool = True) -> None:
        ping, hset = self.records["async"]["ping"], self.records["async"]["hset_2k"]
        with gc_paused():
            for i in range(n):
                t0 = now_ns()
                await client.ping()
                t1 = now_ns()
                await client.hset(self.key, str(i % 16), VALUE)
                t2 = now_ns()
                if record:
                    ping.samples.append(t1 - t0)
                    hset.samples.append(t2 - t1)

    async def _async_rounds(self, rounds: int, n: int) -> None:
        client = redis.asyncio.Redis.from_url(self.ctx.url)
        try:
            await self.async_batch(client, 50, record=False)
            for round_no in range(rounds):
                await self.async_batch(client, n)
                self.ctx.progress.set_description_str(f"floor async {round_no + 1}/{rounds}")
                self.ctx.progress.update(1)
        finally:
            await client.aclose()

    def finish(self) -> None:
        self.ctx.admin.delete(self.key)
        self.ctx.results["floor"] = {
            mode: {name: rec.summary() for name, rec in ops.items()}
            for mode, ops in self.records.items()
        }
