"""Store and cache benchmarks: PlainRedisStore beside InMemoryStore and
langgraph-checkpoint-aws's ValkeyStore (on a server without valkey-search), and
PlainRedisCache beside langgraph's RedisCache.

    python -m benchmarks.store [--quick]

Runs on an embedded Valkey (or REDIS_URL). Prints Markdown tables and writes
benchmarks/results/store.json (results/quick/store.json with --quick). The suite's
``python -m benchmarks.run`` runs the same as its ``store`` phase (:func:`run`).
Everything is written under one namespace root (the first label, and the key prefixes
derived from it) and deleted again, before each memory measurement too; ValkeyStore's
``list_namespaces`` still runs ``KEYS langgraph:*`` over the whole database.
Timings are medians of repeated calls on this machine, wall clock, client included;
round trips are counted on the wire (deterministic); server memory per item is
``used_memory`` after writing the items minus before, divided by their number.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from langgraph.cache.redis import RedisCache
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore

from plain_redis_saver import PlainRedisCache, PlainRedisStore
from plain_redis_saver.embedded import EmbeddedServer

from .measure import count_wire

DIMS = 1536
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class StoreSizes:
    """What one kind of run measures."""

    items: tuple[int, ...]  # store sizes of the operation table
    memory_items: int  # items written for the memory per item
    vector_items: int  # items written for the memory per item with a vector
    query_items: tuple[int, ...]  # items under the prefix of search(query=...)
    reps: int  # timed calls per operation (fewer for a slow one)


FULL = StoreSizes((1000, 100_000), 100_000, 1000, (1000, 2000, 5000, 10_000), 40)
QUICK = StoreSizes((1000, 10_000), 10_000, 500, (1000,), 10)


@dataclass(frozen=True)
class Root:
    """Where a run writes: the namespaces under ``name`` and the key prefixes from it."""

    name: str

    @property
    def ns(self) -> tuple[str, str]:
        return (self.name, "items")

    @property
    def cache_prefix(self) -> str:
        return f"{self.name}-lg:"

    def patterns(self) -> list[str]:
        """Every key the run writes (ours, ValkeyStore's and RedisCache's)."""
        return [
            f"{self.name}:*",
            f"{self.name}-m:*",
            f"langgraph:{self.name}/*",
            f"{self.name}-lg:*",
        ]

    def clear(self, admin: Any) -> None:
        """Deletes the run's keys, and waits until the server has freed them: Valkey 8
        frees what DEL removes in the background (lazyfree-lazy-user-del), and a memory
        measurement that follows must not count it."""
        for pattern in self.patterns():
            keys = list(admin.scan_iter(match=pattern, count=2000))
            for start in range(0, len(keys), 1000):
                admin.delete(*keys[start : start + 1000])
        deadline = time.monotonic() + 30
        while admin.info("memory").get("lazyfree_pending_objects", 0) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)


def value(i: int) -> dict[str, Any]:
    return {"i": i, "group": i % 100, "text": f"fact number {i} about user {i % 37}"}


def vector(text: str) -> list[float]:
    """A deterministic float32-exact unit-ish vector per text."""
    rng = random.Random(text)
    return list(
        struct.unpack(
            f"<{DIMS}f", struct.pack(f"<{DIMS}f", *(rng.gauss(0, 1) for _ in range(DIMS)))
        )
    )


def embed(texts: list[str]) -> list[list[float]]:
    return [vector(t) for t in texts]


def timed(call: Callable[[], Any], reps: int) -> float:
    """Median milliseconds of ``call`` over ``reps`` calls (after one warm-up call);
    fewer calls for one that takes long (a peer scanning 100,000 keys)."""
    start = time.perf_counter_ns()
    call()
    first = time.perf_counter_ns() - start
    samples = []
    for _ in range(max(3, min(reps, int(2e9 // max(first, 1))))):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def round_trips(call: Callable[[], Any]) -> int:
    call()
    with count_wire() as wire:
        call()
    return wire.round_trips


def fill(store: Any, root: Root, n: int, *, with_namespaces: bool = True) -> None:
    for start in range(0, n, 1000):
        ops = [PutOp(root.ns, f"k{i}", value(i)) for i in range(start, min(n, start + 1000))]
        store.batch(ops)
    if with_namespaces:
        store.batch([PutOp((root.name, f"user{u}", "facts"), "k", {"u": u}) for u in range(100)])


def memory(admin: Any, root: Root, build: Callable[[], Any], n: int) -> float:
    root.clear(admin)
    before = admin.info("memory")["used_memory"]
    build()
    return (admin.info("memory")["used_memory"] - before) / n


def store_rows(
    name: str, store: Any, root: Root, n: int, reps: int, counted: bool
) -> dict[str, Any]:
    mid = f"k{n // 2}"
    ns = root.ns
    ops: dict[str, Callable[[], Any]] = {
        "put": lambda: store.put(ns, mid, value(n // 2)),
        "get": lambda: store.get(ns, mid),
        "search(filter, limit=10)": lambda: store.search(ns, filter={"group": 7}, limit=10),
        "list_namespaces": lambda: store.list_namespaces(prefix=(root.name,), limit=100),
    }
    row: dict[str, Any] = {"store": name, "items": n}
    for op, call in ops.items():
        try:
            row[op] = round(timed(call, reps), 3)
            row[f"{op} round trips"] = round_trips(call) if counted else 0
        except Exception as exc:  # a peer that cannot do it is reported, not fatal
            row[op] = f"error: {type(exc).__name__}"
    return row


def _query_search(store: Any, root: Root) -> Callable[[], Any]:
    return lambda: store.search(root.ns, query="what do I know about user 3", limit=10)


def query_rows(
    admin: Any, url: str, root: Root, sizes: tuple[int, ...], reps: int
) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        root.clear(admin)
        client = redis.Redis.from_url(url)
        index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
        store = PlainRedisStore(client, key_prefix=root.name, index=index)
        reference = InMemoryStore(index=index)
        for start in range(0, n, 250):
            ops = [PutOp(root.ns, f"k{i}", value(i)) for i in range(start, min(n, start + 250))]
            store.batch(ops)
            reference.batch(ops)
        row: dict[str, Any] = {"items": n}
        for name, candidate in (("PlainRedisStore", store), ("InMemoryStore", reference)):
            search = _query_search(candidate, root)
            row[f"{name} ms"] = round(timed(search, reps), 2)
            if name == "PlainRedisStore":
                row[f"{name} round trips"] = round_trips(search)
        rows.append(row)
        client.close()
    return rows


def cache_rows(url: str, root: Root, reps: int) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    keys = [(("node", "n"), f"k{i}") for i in range(10)]
    pairs = {k: ({"answer": i, "text": "x" * 200}, 600) for i, k in enumerate(keys)}
    rows = []
    for name, cache in (
        ("PlainRedisCache", PlainRedisCache(client, key_prefix=root.name)),
        ("RedisCache (langgraph)", RedisCache(client, prefix=root.cache_prefix)),
    ):
        cache.set(pairs)
        rows.append(
            {
                "cache": name,
                "set 10 ms": round(timed(lambda c=cache: c.set(pairs), reps), 3),
                "get 10 ms": round(timed(lambda c=cache: c.get(keys), reps), 3),
                "set round trips": round_trips(lambda c=cache: c.set(pairs)),
                "get round trips": round_trips(lambda c=cache: c.get(keys)),
            }
        )
    client.close()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _valkey_store() -> Any:
    """ValkeyStore's class and a client factory, or None without the bench-peers extra."""
    try:
        from langgraph_checkpoint_aws.store.valkey import ValkeyStore
        from valkey import Valkey
    except ImportError:
        return None
    return lambda url: ValkeyStore(Valkey.from_url(url))


def run(url: str, admin: Any, root: Root, sizes: StoreSizes) -> dict[str, Any]:
    """Every table, on the server at ``url``, writing only under ``root`` (deleted
    again at the end)."""
    valkey_store = _valkey_store()
    results: dict[str, Any] = {"stores": [], "memory": [], "query": [], "cache": []}

    def ours(prefix: str, **options: Any) -> PlainRedisStore:
        return PlainRedisStore(redis.Redis.from_url(url), key_prefix=prefix, **options)

    try:
        for n in sizes.items:
            root.clear(admin)
            candidates: list[tuple[str, Any, bool]] = [
                ("PlainRedisStore", ours(root.name), True),
                ("InMemoryStore", InMemoryStore(), False),
            ]
            if valkey_store is not None:
                candidates.append(("ValkeyStore (no valkey-search)", valkey_store(url), True))
            for name, store, counted in candidates:
                fill(store, root, n)
                results["stores"].append(store_rows(name, store, root, n, sizes.reps, counted))
        builders: list[tuple[str, Callable[[], Any], int]] = [
            ("PlainRedisStore", lambda: ours(f"{root.name}-m"), sizes.memory_items)
        ]
        if valkey_store is not None:
            builders.append(
                ("ValkeyStore (no valkey-search)", lambda: valkey_store(url), sizes.memory_items)
            )
        index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
        builders.append(
            (
                f"PlainRedisStore, one {DIMS}-dim vector per item",
                lambda: ours(f"{root.name}-m", index=index),
                sizes.vector_items,
            )
        )
        for name, build, n in builders:
            write = lambda b=build, k=n: fill(b(), root, k, with_namespaces=False)  # noqa: E731
            per_item = memory(admin, root, write, n)
            results["memory"].append({"store": name, "items": n, "bytes per item": round(per_item)})
        results["query"] = query_rows(admin, url, root, sizes.query_items, max(5, sizes.reps // 3))
        root.clear(admin)
        results["cache"] = cache_rows(url, root, sizes.reps)
    finally:
        root.clear(admin)
    return results


def markdown_tables(results: dict[str, Any]) -> str:
    return "\n\n".join(
        f"#### {title}\n\n{markdown(rows)}" for title, rows in results.items() if rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 items")
    args = parser.parse_args()
    server = None
    url = os.environ.get("REDIS_URL")
    root = Root(f"storebench-{secrets.token_hex(4)}" if url else "bench")
    if not url:
        server = EmbeddedServer("valkey").start()
        url = server.url
    admin = redis.Redis.from_url(url)
    try:
        results = run(url, admin, root, QUICK if args.quick else FULL)
    finally:
        admin.close()
        if server is not None:
            server.stop()
    target = RESULTS / "quick" / "store.json" if args.quick else RESULTS / "store.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2))
    print(markdown_tables(results))


if __name__ == "__main__":
    main()
