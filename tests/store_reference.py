"""InMemoryStore as the reference for PlainRedisStore, with what it lacks added from
outside: a clock both read, TTL, kept created_at, and namespaces that exist while
they hold items.

InMemoryStore differs from the documented store contract (and PostgresStore) in three
places, which this wrapper normalises and the README states:
- it has no TTL: here an item expires at ``now >= expiry``, and reads restart the TTL
  of what they return (refresh_ttl);
- a put that updates an item resets created_at: here the first put's is kept;
- a put with index=False keeps the item's previous vectors there: here they go;
- a get of an absent namespace, and a namespace whose items are all deleted, stay in
  its namespace list: here a namespace is listed while it holds items (its place in
  the search order is taken by the first op of a batch that touches it, as there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pytest
from langgraph.store.base import GetOp, Item, ListNamespacesOp, Op, PutOp, Result, SearchOp
from langgraph.store.memory import InMemoryStore


class Clock:
    """Fake time in whole microseconds, shared by the store and the reference."""

    def __init__(self) -> None:
        self.us = 1_800_000_000 * 1_000_000

    def __call__(self) -> float:
        return self.us / 1_000_000

    @property
    def ms(self) -> int:
        return self.us // 1000

    def advance(self, minutes: float) -> None:
        self.us += round(minutes * 60_000_000)

    def now(self) -> dt.datetime:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=self.us)


def patch_clock(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    """InMemoryStore reads datetime.now(timezone.utc); make it read ``clock``."""
    import langgraph.store.memory as memory

    class FakeDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return clock.now()

    monkeypatch.setattr(memory, "datetime", FakeDatetime)


class Reference:
    def __init__(self, clock: Clock, index: Any = None) -> None:
        self.clock = clock
        self.store = InMemoryStore(index=index)
        self.expiry: dict[tuple[tuple[str, ...], str], tuple[int, int]] = {}  # ttl, at
        self.created: dict[tuple[tuple[str, ...], str], dt.datetime] = {}

    def _expire(self) -> None:
        for ident, (_, at) in list(self.expiry.items()):
            if at <= self.clock.ms:
                ns, key = ident
                self.store._data[ns].pop(key, None)
                self.store._vectors[ns].pop(key, None)
                del self.expiry[ident]
                self.created.pop(ident, None)
        self._prune()

    def _prune(self) -> None:
        for ns in [ns for ns, items in self.store._data.items() if not items]:
            del self.store._data[ns]

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        self._expire()
        # Listed before the batch runs: its gets would add empty namespaces to the list.
        listed = {
            i: self.store._handle_list_namespaces(op)
            for i, op in enumerate(ops)
            if isinstance(op, ListNamespacesOp)
        }
        results = self.store.batch(ops)
        for i, namespaces in listed.items():
            results[i] = namespaces
        for op, result in zip(ops, results, strict=True):
            refresh = isinstance(op, GetOp | SearchOp) and op.refresh_ttl
            returned = [result] if isinstance(result, Item) else result
            if refresh and isinstance(returned, list):
                for item in returned:
                    ident = (item.namespace, item.key)
                    if ident in self.expiry:
                        ttl = self.expiry[ident][0]
                        self.expiry[ident] = (ttl, self.clock.ms + ttl)
        puts = {(op.namespace, op.key): op for op in ops if isinstance(op, PutOp)}
        for ident, op in puts.items():
            if op.index is False:  # InMemoryStore keeps the old vectors; a put replaces
                self.store._vectors[ident[0]].pop(ident[1], None)
            if op.value is None:
                self.expiry.pop(ident, None)
                self.created.pop(ident, None)
                continue
            self.created.setdefault(ident, self.clock.now())
            self.store._data[ident[0]][ident[1]].created_at = self.created[ident]
            if op.ttl is None:
                self.expiry.pop(ident, None)
            else:
                ttl = max(1, round(op.ttl * 60_000))
                self.expiry[ident] = (ttl, self.clock.ms + ttl)
        self._prune()
        return results
